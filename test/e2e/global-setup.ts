import { execFileSync } from 'node:child_process';

/**
 * Brings the local control plane up (idempotent: a running one is reused) before any e2e test.
 * Fails loudly when it cannot: the e2e suite is never skipped silently.
 *
 * Then empties it of Sand Store: a run stopped half-way (a failed test, a killed jest) can leave a
 * profile deployed, which the next run's up.sh keeps (the cluster's state survives), and every
 * deploy of the next run would then be refused (one profile at a time). The cluster is the suite's
 * own, so whatever of Sand Store is on it is a leftover of an earlier run. Done with the kubectl
 * the local cluster built (jest runs this file outside its module mapping, so the project's own
 * client cannot be imported here); deleting a namespace deletes its claims, and their volumes go
 * with them (reclaim policy Delete). `--wait` waits until the namespaces are gone.
 */
export default function globalSetup(): void {
  const name = process.env.SANDSTORE_E2E_CLUSTER ?? 'sandstore-local';
  execFileSync('bash', ['scripts/local-cluster/up.sh', '--name', name], { stdio: 'inherit' });
  const selector = 'app.kubernetes.io/managed-by=sandstore-deploy';
  const script = `set -euo pipefail
source scripts/local-cluster/lib.sh
kc() { "$KUBE_BIN_DIR/kubectl" --context "$0" "$@"; }
left=$(kc get namespace,storageclass -l "$1" -o name 2>/dev/null; kc get lease -n default -l "$1" -o name 2>/dev/null)
[[ -z $left ]] && exit 0
echo "[e2e] removing what an earlier run left on $0:" $left >&2
kc delete namespace,storageclass -l "$1" --wait=true --timeout=180s >&2
kc delete lease -n default -l "$1" >&2`;
  execFileSync('bash', ['-c', script, name, selector], { stdio: ['ignore', 'inherit', 'inherit'] });
}
