import { execFileSync } from 'node:child_process';
import { LabelKeys, MANAGED_BY } from '../../lib/labels.js';
import { LOCK_NAMESPACE } from '../../lib/runner/lock.js';
import { objectsOf, waitFor } from '../../lib/runner/watch.js';
import { kubeFor } from './harness.js';

/**
 * Brings the local control plane up (idempotent: a running one is reused) before any e2e test.
 * Fails loudly when it cannot: the e2e suite is never skipped silently.
 *
 * Then empties it of Sand Store: a run stopped half-way (a failed test, a killed jest) can leave a
 * profile deployed on the cluster, which the up.sh of the next run keeps (its state survives), and
 * every deploy of the next run would be refused (one profile at a time). The cluster is the
 * suite's own, so whatever of Sand Store is on it is a leftover of an earlier run.
 */
export default async function globalSetup(): Promise<void> {
  const name = process.env.SANDSTORE_E2E_CLUSTER ?? 'sandstore-local';
  execFileSync('bash', ['scripts/local-cluster/up.sh', '--name', name], { stdio: 'inherit' });

  const kube = kubeFor(name);
  const selector = `${LabelKeys.managedBy}=${MANAGED_BY}`;
  const leftovers = (await Promise.all([
    kube.list('Namespace', { labelSelector: selector }),
    kube.list('StorageClass', { labelSelector: selector }),
    kube.list('Lease', { namespace: LOCK_NAMESPACE, labelSelector: selector }),
  ])).flatMap((l) => l.items);
  if (leftovers.length === 0) return;
  process.stderr.write(`[e2e] removing what an earlier run left on ${name}: ${leftovers.map((o) => `${o.kind}/${o.metadata.name} (profile ${o.metadata.labels?.[LabelKeys.profile] ?? '?'})`).join(', ')}\n`);
  await Promise.all(leftovers.map((o) => kube.delete(o.kind!, o.metadata.name, o.metadata.namespace)));
  // Deleting a namespace deletes its claims, and their volumes go with them (reclaim policy Delete).
  await waitFor(kube, [
    { key: 'namespaces', kind: 'Namespace', labelSelector: selector },
    { key: 'claims', kind: 'PersistentVolumeClaim', labelSelector: selector },
  ], {
    what: 'the leftovers of an earlier run to be gone',
    timeoutSeconds: 180,
    check: (s) => (objectsOf(s, 'namespaces').length + objectsOf(s, 'claims').length === 0 ? true : undefined),
  });
}
