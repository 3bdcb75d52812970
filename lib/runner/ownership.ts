import { FailedError } from '../errors.js';
import { LabelKeys, MANAGED_BY } from '../labels.js';
import type { Manifest } from '../synth.js';
import { RESOURCES, type Kube, type KubeObject } from './kube.js';

/**
 * Deploy and update apply dist/ with the runner's field manager and force, which would take over an
 * object of the same name that already exists (its labels become the profile's), and destroy then
 * deletes everything carrying those labels: a profile with `namespace: 'monitoring'` or
 * `storage.className: 'local-path'` (k3s's default StorageClass) would take them over and, on the
 * next destroy, delete them. So before its first change a deploy or update looks up every object of
 * dist/ that is not inside the profile's namespace (the namespace itself and the cluster-scoped
 * ones; if the namespace is not the profile's, nothing in it is) and refuses if one exists without
 * the profile's labels.
 */

/** The objects of dist/ to look up: the namespace and the cluster-scoped ones. */
export function objectsToClaim(manifests: readonly Manifest[]): Manifest[] {
  return manifests.filter((m) => RESOURCES[m.kind] !== undefined && !RESOURCES[m.kind].namespaced);
}

/** Whether a live object carries the labels the profile's objects carry (it is the profile's own). */
export function isProfiles(live: KubeObject, profileName: string): boolean {
  const labels = live.metadata.labels ?? {};
  return labels[LabelKeys.managedBy] === MANAGED_BY && labels[LabelKeys.profile] === profileName;
}

/** What to change in the profile so that it makes an object of its own instead. */
const FIELD_OF_KIND: Readonly<Record<string, string>> = { Namespace: 'namespace', StorageClass: 'storage.className' };

/** Who a live object seems to belong to, from its labels, for messages. */
function ownerOf(live: KubeObject): string {
  const labels = live.metadata.labels ?? {};
  if (labels[LabelKeys.managedBy] === MANAGED_BY && labels[LabelKeys.profile])
    return `belongs to Sand Store profile ${labels[LabelKeys.profile]}`;
  if (labels[LabelKeys.managedBy]) return `is managed by ${labels[LabelKeys.managedBy]}`;
  return 'was not made by sandstore-deploy';
}

/**
 * The decision: one line per object of `wanted` that exists (in `live`, by kind and name) without
 * the profile's labels, saying whose it seems to be and what to change in the profile. Empty when
 * the deploy may go on.
 */
export function takeovers(
  profileName: string,
  wanted: readonly Manifest[],
  live: readonly (KubeObject | undefined)[],
): string[] {
  return wanted.flatMap((m, i) => {
    const found = live[i];
    if (found === undefined || isProfiles(found, profileName)) return [];
    const field = FIELD_OF_KIND[m.kind];
    const change = field
      ? `set \`${field}\` in profiles/${profileName}.ts to a name of its own`
      : `rename it in profiles/${profileName}.ts`;
    return [`${m.kind} ${m.metadata.name} already exists and ${ownerOf(found)}: ${change}`];
  });
}

/** An object dist/ would apply exists and is not the profile's (exit code 1): nothing was changed. */
export class TakeoverRefusedError extends FailedError {}

/** Looks up the objects to claim and refuses, naming each, if one is someone else's. */
export async function refuseTakeovers(
  kube: Kube,
  profileName: string,
  context: string,
  manifests: readonly Manifest[],
  command: string,
): Promise<void> {
  const wanted = objectsToClaim(manifests);
  const live = await Promise.all(wanted.map((m) => kube.find(m.kind, m.metadata.name)));
  const problems = takeovers(profileName, wanted, live);
  if (problems.length === 0) return;
  throw new TakeoverRefusedError(
    `${context} already has ${problems.length === 1 ? 'an object' : 'objects'} that profile ` +
      `${profileName} would take over, and a later destroy would delete: ` +
      `${command} applies only objects the profile made itself (labels ` +
      `${LabelKeys.managedBy}=${MANAGED_BY}, ${LabelKeys.profile}=${profileName}); profile ` +
      `${profileName} was not ${command === 'deploy' ? 'deployed' : 'updated'} and nothing was changed`,
    problems,
  );
}
