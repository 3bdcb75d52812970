import { execFileSync } from 'node:child_process';
import { LabelKeys, MANAGED_BY } from '../../lib/labels.js';
import globalSetup, { refuseForeignDeployments, removeLeftovers, SUITE_MARK } from './global-setup.js';
import type { Kube } from '../../lib/runner/kube.js';
import { CONTEXT, expectExit, kubeFor, root, runCli } from './harness.js';

/**
 * npm test never touches what a user deployed. A stand-in for the user's cluster (a local cluster of
 * its own name, kwok nodes only, as `npm start` makes `sandstore-local`) holds a live profile; the
 * suite's set-up runs as npm test runs it; the user's objects are read back from that cluster's
 * API server with their uids and resourceVersions, unchanged. Pointed at the user's cluster by
 * mistake, the set-up refuses; the control shows that the same set-up, once the cluster is marked
 * as the suite's, deletes the profile: the guard is what kept it.
 */
const USER = `${CONTEXT}-user`;
let user: Kube;

beforeAll(async () => {
  execFileSync('bash', ['scripts/local-cluster/up.sh', '--name', USER, '--no-node'], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  user = kubeFor(USER); // once up.sh has added its context to the kubeconfig
  expectExit(await runCli(['deploy', '--profile=local', `--context=${USER}`, '--timeout=120']), 0);
});
afterAll(() => {
  execFileSync('bash', ['scripts/local-cluster/down.sh', '--name', USER], { cwd: root, stdio: 'inherit' });
});

/** The Sand Store objects of the user's cluster a deletion would change: kind/namespace/name@uid@resourceVersion. */
async function userObjects(): Promise<string[]> {
  const lists = await Promise.all([
    user.list('Namespace', { labelSelector: `${LabelKeys.managedBy}=${MANAGED_BY}` }),
    ...['Pod', 'PersistentVolumeClaim', 'StatefulSet'].map((kind) => user.list(kind, { namespace: 'sandstore-local' })),
    user.list('PersistentVolume'),
  ]);
  return lists
    .flatMap((l) =>
      l.items.map(
        (o) =>
          `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}@${o.metadata.uid}@${o.metadata.resourceVersion}`,
      ),
    )
    .sort();
}

/** Runs `body` with SANDSTORE_E2E_CLUSTER set to `value` (unset when undefined), restoring it after. */
function withSuiteCluster<T>(value: string | undefined, body: () => T): T {
  const before = process.env.SANDSTORE_E2E_CLUSTER;
  if (value === undefined) delete process.env.SANDSTORE_E2E_CLUSTER;
  else process.env.SANDSTORE_E2E_CLUSTER = value;
  try {
    return body();
  } finally {
    if (before === undefined) delete process.env.SANDSTORE_E2E_CLUSTER;
    else process.env.SANDSTORE_E2E_CLUSTER = before;
  }
}

test("the suite's set-up, as npm test runs it, leaves a live profile on the user's cluster as it was", async () => {
  const before = await userObjects();
  // A live profile: its data plane, etcd and their four claims.
  for (const pod of ['etcd-0', 'sandstore-0', 'sandstore-1', 'sandstore-2'])
    expect(before).toContainEqual(expect.stringMatching(new RegExp(`^Pod/sandstore-local/${pod}@`)));
  expect(before.filter((o) => o.startsWith('PersistentVolumeClaim/')).length).toBe(4);
  // The suite's cluster by default (a developer's run may name another with SANDSTORE_E2E_CLUSTER).
  withSuiteCluster(process.env.SANDSTORE_E2E_CLUSTER, globalSetup);
  expect(await userObjects()).toEqual(before);
  expect((await kubeFor(CONTEXT).get('ConfigMap', SUITE_MARK.configMap, SUITE_MARK.namespace)).data).toBeDefined();
});

test("pointed at the user's cluster, the set-up refuses and deletes nothing; without that guard (the cluster marked as the suite's) it deletes the profile", async () => {
  const before = await userObjects();
  expect(() => withSuiteCluster(USER, globalSetup)).toThrow(
    new RegExp(
      `the e2e suite's cluster ${USER} holds Sand Store that the suite did not deploy \\(.*namespace/sandstore-local.*\\), so the suite will not start there`,
    ),
  );
  expect(await userObjects()).toEqual(before);
  await expect(user.get('ConfigMap', SUITE_MARK.configMap, SUITE_MARK.namespace)).rejects.toThrow();

  // The control: the cluster marked as the suite's, the same steps remove the profile, claims and all.
  await user.apply({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: SUITE_MARK.configMap, namespace: SUITE_MARK.namespace },
  });
  refuseForeignDeployments(USER);
  removeLeftovers(USER);
  expect((await userObjects()).filter((o) => !o.startsWith('PersistentVolume/'))).toEqual([]);
});
