import { LabelKeys, otherProfilesSelector } from '../labels.js';
import { listProfiles } from '../profiles.js';
import { FailedError } from '../errors.js';
import type { Kube, KubeObject } from './kube.js';
import { holderOf, LOCK_NAMESPACE, type LockHolder } from './lock.js';
import { countByKind } from './report.js';

/**
 * The seed's Flow 3 pre-flight: the cluster must be empty of Sand Store before a deploy, so that two
 * benchmark set-ups never share the node's SSD, CPU or memory. A profile is live while any of its
 * objects that run or hold data exists (a controller, a pod, a claim; terminating ones too, they
 * still hold the disk), or while a runner holds its lock (a deploy of it may be creating them).
 *
 * Deploy refuses rather than removing the other profile: destroying is the other profile's own
 * flow, under its own lock, with its own pinned context; a deploy of profile A that silently wiped
 * profile B's data would break "only what we wrote".
 */
const LIVE_KINDS = ['StatefulSet', 'Job', 'Pod', 'PersistentVolumeClaim'] as const;

export interface LiveProfile {
  readonly name: string;
  readonly namespaces: readonly string[];
  /** Live objects by kind, e.g. "3 Pod"; terminating ones counted apart. */
  readonly objects: string;
  /** A runner holding the profile's lock now (a deploy, update or destroy of it under way). */
  readonly runner?: LockHolder;
}

/**
 * The profile label of an object listed by `selector`, which requires it: an answer without it
 * broke the selector it was asked for, so what answered is not a Kubernetes API server.
 */
function profileLabelOf(o: KubeObject, selector: string): string {
  const name = o.metadata.labels?.[LabelKeys.profile];
  if (typeof name === 'string') return name;
  throw new FailedError(
    `the list for label selector ${selector} holds ${o.kind ?? 'an object'} ${o.metadata.name} without ` +
      `label ${LabelKeys.profile}; is that a Kubernetes API server?`,
  );
}

/** Every Sand Store profile but `profileName` that is live on the cluster, by name. */
export async function otherLiveProfiles(kube: Kube, profileName: string): Promise<LiveProfile[]> {
  const selector = otherProfilesSelector(profileName);
  const [leases, ...lists] = await Promise.all([
    kube.list('Lease', { namespace: LOCK_NAMESPACE, labelSelector: selector }),
    ...LIVE_KINDS.map((kind) => kube.list(kind, { labelSelector: selector })),
  ]);
  const byProfile = new Map<string, KubeObject[]>();
  for (const o of lists.flatMap((l) => l.items)) {
    const name = profileLabelOf(o, selector);
    byProfile.set(name, [...(byProfile.get(name) ?? []), o]);
  }
  const runners = new Map<string, LockHolder>();
  for (const lease of leases.items) {
    const holder = holderOf(lease, kube.serverNow());
    if (!holder.expired) runners.set(profileLabelOf(lease, selector), holder);
  }
  return [...new Set([...byProfile.keys(), ...runners.keys()])].sort().map((name) => {
    const objects = byProfile.get(name) ?? [];
    return {
      name,
      namespaces: [...new Set(objects.map((o) => o.metadata.namespace!))].sort(),
      objects: countByKind(objects, { terminating: true }),
      runner: runners.get(name),
    };
  });
}

/** Another profile is live on the target cluster (exit code 1): nothing was changed. */
class OtherProfileLiveError extends FailedError {}

/**
 * The refusal: which profiles, what of them runs, and how to remove each. The npm command when this
 * project has the profile's file (destroy acts on its own pinned context; --context points it at
 * this one), else kubectl on the profile's namespaces, whose deletion takes its claims and data.
 */
export function otherProfileLiveError(
  live: readonly LiveProfile[],
  opts: { profileName: string; context: string; profilesDir?: string },
): OtherProfileLiveError {
  const known = new Set(listProfiles(opts.profilesDir));
  const names = live.map((p) => p.name).join(', ');
  const details = live.flatMap((p) => {
    const what = [
      p.objects ? `${p.objects}${p.namespaces.length ? ` in namespace ${p.namespaces.join(', ')}` : ''}` : '',
      p.runner ? `its runner ${p.runner.identity} runs \`${p.runner.command}\` since ${p.runner.since}` : '',
    ]
      .filter(Boolean)
      .join('; ');
    const remove =
      p.runner && !p.objects
        ? 'wait for that runner to finish, then remove the profile:'
        : 'to remove it (this deletes its claims and their data):';
    const commands = known.has(p.name)
      ? [`npm run destroy -- --profile=${p.name} --context=${opts.context}`]
      : p.namespaces.length
        ? [
            `kubectl --context ${opts.context} delete namespace ${p.namespaces.join(' ')}  (no ` +
              `profiles/${p.name}.ts in this project)`,
          ]
        : [
            `kubectl --context ${opts.context} delete statefulset,job,pod,pvc --all-namespaces -l ` +
              `${LabelKeys.profile}=${p.name}`,
          ];
    return [`profile ${p.name}: ${what}`, `  ${remove}`, ...commands.map((c) => `    ${c}`)];
  });
  return new OtherProfileLiveError(
    `${opts.context} already runs Sand Store profile ${names}; one profile at a time, so ` +
      `that benchmarks never share the node's disk, CPU or memory: profile ` +
      `${opts.profileName} was not deployed and nothing was changed`,
    details,
  );
}
