import type { Manifest } from '../synth.js';
import type { Kube, KubeObject } from './kube.js';

/**
 * Server-side applies objects with the runner's field manager. Cluster-scoped objects and the
 * namespace go first, one at a time (everything else lives in them); the rest in parallel.
 */
export async function applyAll(
  kube: Kube,
  manifests: readonly Manifest[],
  opts: { dryRun?: boolean } = {},
): Promise<KubeObject[]> {
  const first = manifests.filter((m) => m.kind === 'Namespace' || m.kind === 'StorageClass');
  const rest = manifests.filter((m) => !first.includes(m));
  const results: KubeObject[] = [];
  for (const m of first) results.push(await kube.apply(m, opts));
  results.push(...(await Promise.all(rest.map((m) => kube.apply(m, opts)))));
  return results;
}
