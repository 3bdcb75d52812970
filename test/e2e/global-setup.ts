import { execFileSync } from 'node:child_process';

/**
 * The e2e suite's own local cluster: `sandstore-test` (or SANDSTORE_E2E_CLUSTER), never the
 * `sandstore-local` that `npm start` deploys to, so that a user's live profile, its claims and data
 * survive `npm test`. Brought up (idempotent: a running one is reused) before any test; fails
 * loudly when it cannot: the e2e suite is never skipped silently.
 *
 * Then emptied of Sand Store: a run stopped half-way (a failed test, a killed jest) can leave a
 * profile deployed, which the next run's up.sh keeps (the cluster's state survives), and every
 * deploy of the next run would then be refused (one profile at a time). Only on a cluster marked
 * as the suite's (a ConfigMap the set-up writes when it first finds the cluster empty): a cluster
 * that holds Sand Store and carries no mark is someone's deployment, and the suite refuses to start
 * on it rather than delete it. Done with the kubectl the local cluster built (jest runs this file
 * outside its module mapping, so the project's own client cannot be imported here); deleting a
 * namespace deletes its claims, and their volumes go with them (reclaim policy Delete).
 */
export default function globalSetup(): void {
  const name = suiteClusterName();
  if (clusterAnswers(name)) refuseForeignDeployments(name);
  execFileSync('bash', ['scripts/local-cluster/up.sh', '--name', name], { stdio: ['ignore', 'ignore', 'inherit'] });
  refuseForeignDeployments(name);
  removeLeftovers(name);
}

/** The cluster (and kube context) the suite runs on. */
export const suiteClusterName = (env: NodeJS.ProcessEnv = process.env) => env.SANDSTORE_E2E_CLUSTER ?? 'sandstore-test';

/** What marks a cluster as the suite's own: its leftovers are the suite's to remove. */
export const SUITE_MARK = { namespace: 'kube-system', configMap: 'sandstore-e2e-suite' } as const;

const SELECTOR = 'app.kubernetes.io/managed-by=sandstore-deploy';

/** Runs `script` with kubectl on context `name` as `kc`; returns its stdout. */
function withKubectl(name: string, script: string, args: readonly string[] = []): string {
  const prelude = `set -euo pipefail
source scripts/local-cluster/lib.sh
kc() { "$KUBE_BIN_DIR/kubectl" --context "$0" --request-timeout=10s "$@"; }
`;
  return execFileSync('bash', ['-c', prelude + script, name, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

/** The cluster is up: its API server answers on its context. */
function clusterAnswers(name: string): boolean {
  try {
    withKubectl(name, 'kc get --raw /readyz >/dev/null 2>&1');
    return true;
  } catch {
    return false;
  }
}

/** The Sand Store namespaces, StorageClasses and locks on the cluster, as `kind/name` lines. */
const sandstoreObjects = (name: string) =>
  withKubectl(name, 'kc get namespace,storageclass -l "$1" -o name; kc get lease -n default -l "$1" -o name', [
    SELECTOR,
  ])
    .split('\n')
    .filter(Boolean);

/**
 * Refuses (throws, having changed nothing) when the cluster holds Sand Store and is not marked as
 * the suite's; marks an empty one as the suite's.
 */
export function refuseForeignDeployments(name: string): void {
  const marked = withKubectl(name, 'kc get configmap -n "$1" "$2" -o name --ignore-not-found', [
    SUITE_MARK.namespace,
    SUITE_MARK.configMap,
  ]).trim();
  if (marked !== '') return;
  const objects = sandstoreObjects(name);
  if (objects.length > 0) {
    throw new Error(
      `the e2e suite's cluster ${name} holds Sand Store that the suite did not deploy (${objects.join(', ')}), ` +
        'so the suite will not start there: it would delete them. npm test runs on its own cluster, sandstore-test, unless ' +
        `SANDSTORE_E2E_CLUSTER names another; unset it, or name a cluster of the suite's, or destroy what ${name} runs first ` +
        `(npm run destroy -- --profile=<name> --context=${name}).`,
    );
  }
  withKubectl(
    name,
    'kc create configmap -n "$1" "$2" --from-literal=purpose="the sandstore-deploy e2e suite\'s cluster: its set-up removes Sand Store left here" >/dev/null',
    [SUITE_MARK.namespace, SUITE_MARK.configMap],
  );
}

/** Deletes every Sand Store namespace, StorageClass and lock on the (suite's) cluster; waits until they are gone. */
export function removeLeftovers(name: string): void {
  const left = sandstoreObjects(name);
  if (left.length === 0) return;
  process.stderr.write(`[e2e] removing what an earlier run left on ${name}: ${left.join(' ')}\n`);
  withKubectl(
    name,
    `kc delete namespace,storageclass -l "$1" --wait=true --timeout=180s >&2
kc delete lease -n default -l "$1" >&2`,
    [SELECTOR],
  );
}
