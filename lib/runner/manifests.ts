import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DEPLOY_PHASE_ANNOTATION, DeployPhase, LabelKeys, type DeployPhase as Phase } from '../labels.js';
import type { Profile } from '../profile.js';
import { filesOnDisk, knownFresh, outputDigest, keepParsed, parsedBefore, recordRender } from '../freshness.js';
import type { Manifest } from '../synth.js';
import { isManifestOf, type KindName, type ManifestOf } from '../k8s-types.js';
import { RESOURCES } from './kube.js';
import { mark } from './trace.js';
import { RefusedError } from '../errors.js';

/** dist/ cannot be deployed as it is (exit code 2, nothing sent). */
export class ManifestsRefusedError extends RefusedError {}

/**
 * Reads dist/<profile>/, the reviewed YAML, which is all the runner ever applies. Refuses a missing
 * or empty directory (an empty set must never be mistaken for "delete everything") and a stale one
 * (what would be deployed is not what the code and profile say; the reviewer saw something else).
 */
export async function readManifests(
  outDir: string,
  profile: Profile,
  opts: { allowStale?: boolean } = {},
): Promise<Manifest[]> {
  const dir = join(outDir, profile.name);
  const synth = `npm run synth -- --profile=${profile.name}`;
  if (!existsSync(dir))
    throw new ManifestsRefusedError(`dist/${profile.name}/ does not exist; run \`${synth}\` first. Nothing was sent.`);
  const onDisk = filesOnDisk(outDir, profile.name);
  if (onDisk.size === 0)
    throw new ManifestsRefusedError(`dist/${profile.name}/ holds no manifests; run \`${synth}\`. Nothing was sent.`);
  const digest = outputDigest(onDisk);
  if (!opts.allowStale && !knownFresh(profile, digest)) {
    // Not known fresh: render and compare. cdk8s is loaded only here (a separate chunk of the
    // bundle), so a command on an unchanged project never pays for it.
    const { renderProfile, staleFiles } = await import('../synth.js');
    let rendered: Map<string, string> | ReadonlyMap<string, string>;
    try {
      rendered = renderProfile(profile);
    } catch (err) {
      // A construct's own check refused a value the schema let through: nothing to compare with.
      throw new ManifestsRefusedError(
        `profile "${profile.name}" cannot be synthesized: ${(err as Error).message}. Nothing was sent.`,
      );
    }
    const stale = staleFiles(outDir, profile.name, rendered);
    if (stale.length === 0) recordRender(profile, rendered);
    else {
      throw new ManifestsRefusedError(
        `dist/${profile.name}/ is stale (it is not what the code and profile synthesize ` +
          `now):\n${stale.map((s) => `  - ${s}`).join('\n')}\n` +
          `Run \`${synth}\`, review the YAML diff, and deploy again. Nothing was sent.`,
      );
    }
  }
  let manifests = parsedBefore<Manifest>(digest);
  if (!manifests) {
    // Loaded on demand; `default` is the CommonJS module itself, under Node and in the bundle alike.
    const { parse } = (await import('yaml')).default;
    manifests = [...onDisk]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([f, text]) => {
        const m = parse(text) as Manifest;
        if (!m?.kind || !m.metadata?.name)
          throw new ManifestsRefusedError(`dist/${profile.name}/${f} is not a Kubernetes object. Nothing was sent.`);
        // The runner addresses objects by a fixed table of kinds (kube.ts): one it does not know would
        // fail half-way through a deploy, so it is refused before the first request.
        if (!(m.kind in RESOURCES)) {
          throw new ManifestsRefusedError(
            `dist/${profile.name}/${f} holds an object of kind ${m.kind}, which the runner cannot ` +
              `apply (it knows ${Object.keys(RESOURCES).join(', ')}); add it to RESOURCES in ` +
              `lib/runner/kube.ts. Nothing was sent.`,
          );
        }
        return m;
      });
    keepParsed(digest, manifests);
  }
  mark('dist read');
  return manifests;
}

export function phaseOf(m: Manifest): Phase {
  const phase = m.metadata.annotations?.[DEPLOY_PHASE_ANNOTATION] as Phase | undefined;
  return phase ?? DeployPhase.base;
}

/**
 * Objects of one phase in apply order: the namespace and cluster-scoped objects before anything
 * that lives in the namespace.
 */
export function manifestsOfPhase(manifests: readonly Manifest[], phase: Phase): Manifest[] {
  const rank = (m: Manifest) => (m.kind === 'Namespace' ? 0 : m.kind === 'StorageClass' ? 1 : 2);
  return manifests.filter((m) => phaseOf(m) === phase).sort((a, b) => rank(a) - rank(b));
}

export function findManifest<K extends KindName>(
  manifests: readonly Manifest[],
  kind: K,
  component: string,
): ManifestOf<K> | undefined {
  return manifests.find(
    (m): m is ManifestOf<K> => isManifestOf(m, kind) && m.metadata.labels?.[LabelKeys.component] === component,
  );
}
