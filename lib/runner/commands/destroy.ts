import { Component, componentSelector, LabelKeys, profileSelector } from '../../labels.js';
import type { Manifest } from '../../synth.js';
import { isKind, RESOURCES, type KubeObject, type PersistentVolume } from '../kube.js';
import { FailedError } from '../../errors.js';
import type { WaitContext } from '../waits.js';
import { objectsOf, waitFor, WaitTimeoutError, type Snapshot, type WatchSource } from '../watch.js';
import { waitContext, type CommandContext } from './context.js';
import type { ClusterCommand } from './command.js';
import { readManifests } from '../manifests.js';
import { countByKind } from '../report.js';
import { KEEP_NAMESPACE_ANNOTATION } from '../rbac.js';

/**
 * Destroy (Flow 2): everything of a profile, found by its labels, deleted, then waited for by watch
 * until no pod, claim or volume of it remains. Only objects carrying the profile's labels are
 * touched: an object in dist/ that exists without them (someone else's) is left alone.
 */

/**
 * The kinds a profile makes, whatever dist/ says: the chart's kinds plus pods and claims, and what
 * `conformance` writes for any profile (its tests' ServiceAccount, Role and binding), should a run
 * be killed before it removes them.
 */
export const PROFILE_KINDS = [
  'StatefulSet',
  'Job',
  'Service',
  'ConfigMap',
  'PodDisruptionBudget',
  'NetworkPolicy',
  'RoleBinding',
  'Role',
  'ServiceAccount',
  'PersistentVolumeClaim',
  'Pod',
  'StorageClass',
  'Namespace',
] as const;

/**
 * A data-plane pod's time to stop in a destroy: Sand Store deregisters from etcd within it (seen
 * on the real node: under a second). Nothing is kept of a destroyed profile, so a stop cut short
 * loses nothing.
 */
export const STOP_GRACE_SECONDS = 1;

/** Deletion order: controllers first (so they stop re-creating pods), then the rest, namespace last. */
const ORDER = [
  'StatefulSet',
  'Job',
  'Pod',
  'Service',
  'ConfigMap',
  'PodDisruptionBudget',
  'NetworkPolicy',
  'RoleBinding',
  'Role',
  'ServiceAccount',
  'PersistentVolumeClaim',
  'StorageClass',
  'Namespace',
];

export function kindsToSweep(manifests: readonly Manifest[] | undefined): string[] {
  const kinds = new Set<string>(PROFILE_KINDS);
  for (const m of manifests ?? []) if (m.kind in RESOURCES) kinds.add(m.kind);
  return [...kinds];
}

/**
 * What to delete, in order, from the live objects carrying the profile's labels. Pods owned by a
 * controller are left to the garbage collector (deleting them would only make the controller
 * re-create them); claims go explicitly, since StatefulSets never delete them.
 */
export function deletionPlan(live: readonly KubeObject[]): KubeObject[] {
  return live
    .filter((o) => !(o.kind === 'Pod' && (o.metadata.ownerReferences ?? []).length > 0))
    .filter((o) => !o.metadata.deletionTimestamp || o.kind === 'PersistentVolumeClaim')
    .sort((a, b) => ORDER.indexOf(a.kind!) - ORDER.indexOf(b.kind!) || a.metadata.name.localeCompare(b.metadata.name));
}

/** Volumes bound to one of the claims: what "the SSD is wiped" waits for. */
export function volumesOfClaims(volumes: readonly PersistentVolume[], claims: ReadonlySet<string>): PersistentVolume[] {
  return volumes.filter((pv) => {
    const ref = pv.spec?.claimRef;
    return ref !== undefined && claims.has(`${ref.namespace}/${ref.name}`);
  });
}

/** Destroy's deadline passed with objects left (exit code 1): what is stuck, why, and how to force it. */
class DestroyStuckError extends FailedError {
  public constructor(
    message: string,
    public readonly stuck: readonly string[],
    public readonly forceCommands: readonly string[],
  ) {
    super(message, [
      ...stuck,
      'to force (this deletes data and skips clean-up):',
      ...forceCommands.map((c) => `  ${c}`),
    ]);
  }
}

/** What destroy's waits need: the profile's name (its label selector) and the context (for hints). */
export type DestroyContext = WaitContext & { readonly profileName: string; readonly context: string };

export interface DestroyOptions {
  /**
   * What happens to the profile's namespace once it is empty:
   * - 'keep' (deploy's clean slate): an active namespace stays, deploy re-applies it at once; one
   *   already terminating is waited for, since nothing can be created in it.
   * - 'delete' (destroy): deleted, and left to the namespace controller to finalize (~5 s even for
   *   an empty one, which no client can shorten). Nothing of the profile runs or holds data by then;
   *   the next deploy of the profile waits for the namespace to be gone, others need not.
   * - 'delete-and-wait' (destroy --wait-namespace): deleted and waited for, for scripts that apply
   *   into the namespace with another tool next.
   * @default 'delete'
   */
  readonly namespace?: 'keep' | 'delete' | 'delete-and-wait';
  /**
   * Whether destroy returns before the claims' volumes are wiped:
   * - 'wait' (destroy): only once every volume is gone, its directory wiped by the provisioner.
   * - 'return' (deploy's clean slate): once pods and claims are gone, with the volumes still being
   *   wiped (local-path's teardown helper pods, ~3.5 s). New claims of the same names cannot bind
   *   them: a released volume stays bound to its old claim's uid. The caller gets the volumes and
   *   waits for them with `awaitVolumesWiped` before it reports success.
   * @default 'wait'
   */
  readonly volumes?: 'wait' | 'return';
}

/** What destroy left behind on purpose: volumes the provisioner is still wiping (`volumes: 'return'`). */
export interface DestroyResult {
  readonly wiping: readonly PersistentVolume[];
}

export async function destroyProfile(
  ctx: DestroyContext,
  manifests?: readonly Manifest[],
  opts: DestroyOptions = {},
): Promise<DestroyResult> {
  const { kube, report } = ctx;
  const selector = profileSelector(ctx.profileName);
  const lists = await Promise.all(kindsToSweep(manifests).map((kind) => kube.list(kind, { labelSelector: selector })));
  const live = lists.flatMap((l) => l.items);
  const namespacePolicy = opts.namespace ?? 'delete';
  // A namespace an admin made for the profile holds the teammate's access (rbac.ts): emptied, kept.
  const kept = (o: KubeObject) =>
    o.kind === 'Namespace' && o.metadata.annotations?.[KEEP_NAMESPACE_ANNOTATION] !== undefined;
  const keptNamespaces = live.filter(kept).map((n) => n.metadata.name);
  const plan = deletionPlan(live).filter((o) => !(namespacePolicy === 'keep' && o.kind === 'Namespace') && !kept(o));
  const claims = new Set(
    live.filter((o) => o.kind === 'PersistentVolumeClaim').map((c) => `${c.metadata.namespace}/${c.metadata.name}`),
  );
  const namespaces = plan.filter((o) => o.kind === 'Namespace').map((n) => n.metadata.name);

  const contents = plan.filter((o) => o.kind !== 'Namespace');
  const namespaceObjects = plan.filter((o) => o.kind === 'Namespace');
  if (plan.length === 0) {
    const finalizing = live
      .filter((o) => o.kind === 'Namespace' && o.metadata.deletionTimestamp)
      .map((n) => n.metadata.name);
    report.step(
      'destroy',
      `nothing of profile ${ctx.profileName} on the ` +
        `cluster${finalizing.length ? ` (namespace ${finalizing.join(', ')} still being finalized by the cluster)` : ''}`,
    );
  } else {
    report.step('destroy', `deleting ${plan.length} objects (${countByKind(plan)})`);
    // Controllers first, so no new pods appear; the data plane before the control plane: a Sand
    // Store node deregisters from etcd when it stops, and with etcd already gone it hangs there for
    // its whole grace period (30 s, seen on the real node), where with etcd up it stops in ~1 s.
    const controllers = contents.filter((o) => o.kind === 'StatefulSet' || o.kind === 'Job');
    const controlPlane = (o: KubeObject) => o.metadata.labels?.[LabelKeys.component] === Component.controlPlane;
    await Promise.all(
      controllers
        .filter((o) => !controlPlane(o))
        .map((o) => kube.delete(o.kind!, o.metadata.name, o.metadata.namespace)),
    );
    // With their controllers gone, the data plane's pods are not re-created: each is deleted again
    // with a short grace, since every member is stopping and no peer needs a stopping pod's address
    // kept (the leader handover's linger, 2 s, which made every destroy wait for it).
    await Promise.all(
      live
        .filter((o) => o.kind === 'Pod' && o.metadata.labels?.[LabelKeys.component] === Component.dataPlane)
        .map((o) =>
          kube.delete('Pod', o.metadata.name, o.metadata.namespace, { gracePeriodSeconds: STOP_GRACE_SECONDS }),
        ),
    );
    await waitGone(
      ctx,
      `profile ${ctx.profileName}'s data-plane pods to stop`,
      [{ key: 'pods', kind: 'Pod', labelSelector: componentSelector(ctx.profileName, Component.controlPlane, '!=') }],
      (s) => objectsOf(s, 'pods'),
    );
    await Promise.all(
      controllers.filter(controlPlane).map((o) => kube.delete(o.kind!, o.metadata.name, o.metadata.namespace)),
    );
    await Promise.all(
      contents
        .filter((o) => !controllers.includes(o))
        .map((o) => kube.delete(o.kind!, o.metadata.name, o.metadata.namespace)),
    );
  }

  // Claims and volumes may also be left from an earlier run whose namespace is already gone, so the
  // wait always looks at the cluster, not only at what this run deleted.
  const waitForVolumes = (opts.volumes ?? 'wait') === 'wait';
  const volumesLeft = (s: Snapshot) => volumesOfClaims(objectsOf(s, 'volumes', 'PersistentVolume'), claims);
  const remaining = (s: Snapshot) => {
    for (const c of objectsOf(s, 'claims')) claims.add(`${c.metadata.namespace}/${c.metadata.name}`);
    return [...objectsOf(s, 'pods'), ...objectsOf(s, 'claims'), ...(waitForVolumes ? volumesLeft(s) : [])];
  };
  // A claim can also appear after the list above: a StatefulSet controller that was catching up
  // (after an API server restart, say) creates it between our list and its StatefulSet's deletion.
  // Nothing else would delete it, so it is deleted as it appears (once; NotFound counts as done).
  const requested = new Set(plan.filter((o) => o.kind === 'PersistentVolumeClaim').map((c) => c.metadata.uid));
  const deleteLateClaims = (s: Snapshot) => {
    for (const c of objectsOf(s, 'claims')) {
      if (c.metadata.deletionTimestamp || requested.has(c.metadata.uid)) continue;
      requested.add(c.metadata.uid);
      report.step('destroy', `deleting claim ${c.metadata.name}, created after the first list`);
      kube
        .delete('PersistentVolumeClaim', c.metadata.name, c.metadata.namespace, {
          preconditions: { uid: c.metadata.uid },
        })
        .catch((err) => {
          report.problem(`claim ${c.metadata.name}`, `could not delete it: ${(err as Error).message}`);
        });
    }
  };
  const gone = await waitGone(
    ctx,
    `profile ${ctx.profileName}'s pods, claims${waitForVolumes ? ' and volumes' : ''} to be gone`,
    [
      { key: 'pods', kind: 'Pod', labelSelector: selector },
      { key: 'claims', kind: 'PersistentVolumeClaim', labelSelector: selector },
      { key: 'volumes', kind: 'PersistentVolume' },
    ],
    remaining,
    deleteLateClaims,
  );
  const wiping = volumesLeft(gone);
  // The namespace goes last, once empty: the namespace controller then finalizes it at once, where
  // deleting it with pods inside makes it re-check its contents on a back-off of seconds.
  await Promise.all(namespaceObjects.map((o) => kube.delete('Namespace', o.metadata.name)));
  if (namespacePolicy !== 'delete') {
    const waitedFor = (s: Snapshot) =>
      objectsOf(s, 'namespaces').filter(
        (n) => (namespacePolicy === 'delete-and-wait' && !kept(n)) || n.metadata.deletionTimestamp,
      );
    await waitGone(
      ctx,
      `profile ${ctx.profileName}'s namespace to be gone`,
      [{ key: 'namespaces', kind: 'Namespace', labelSelector: selector }],
      waitedFor,
    );
  }
  if (plan.length > 0) {
    const keptNote =
      keptNamespaces.length && namespacePolicy !== 'keep'
        ? `; namespace ${keptNamespaces.join(', ')} kept (annotation ${KEEP_NAMESPACE_ANNOTATION}: it ` +
          `holds the access an admin granted)`
        : '';
    const ns =
      namespaces.length === 0
        ? ''
        : namespacePolicy === 'delete'
          ? `; namespace ${namespaces.join(', ')} deleted (the cluster finalizes it in the ` +
            `background; a deploy of this profile waits for that)`
          : `, namespace ${namespaces.join(', ')} deleted`;
    const volumes = wiping.length
      ? `, ${wiping.length} of their volumes still being wiped by the provisioner`
      : ' and their volumes removed';
    report.step(
      'destroy',
      `profile ${ctx.profileName} is gone: ${plan.length} objects deleted, ${claims.size} claims${volumes}${ns}${keptNote}`,
    );
  }
  return { wiping };
}

/**
 * Waits until the volumes destroy left being wiped (`volumes: 'return'`) are gone; on the deadline,
 * says which are stuck and why, as destroy does. Volumes are matched by uid: a new one of the same
 * name is not theirs.
 */
export async function awaitVolumesWiped(ctx: DestroyContext, volumes: readonly PersistentVolume[]): Promise<void> {
  if (volumes.length === 0) return;
  const uids = new Set(volumes.map((v) => v.metadata.uid));
  await waitGone(
    ctx,
    `the ${volumes.length} volumes of profile ${ctx.profileName}'s last run to be wiped`,
    [{ key: 'volumes', kind: 'PersistentVolume' }],
    (s) => objectsOf(s, 'volumes', 'PersistentVolume').filter((v) => uids.has(v.metadata.uid)),
  );
  ctx.report.step('destroy', `the last run's ${volumes.length} volumes are wiped`);
}

/**
 * Waits by watch until `remaining` is empty, and returns the snapshot that showed it; on timeout,
 * says what is stuck and how to force it. `sweep` sees every snapshot first (to delete what
 * appeared after the deletions were sent).
 */
async function waitGone(
  ctx: DestroyContext,
  what: string,
  sources: WatchSource[],
  remaining: (s: Snapshot) => KubeObject[],
  sweep?: (s: Snapshot) => void,
): Promise<Snapshot> {
  let lastPrinted = 0;
  try {
    return await waitFor(ctx.kube, sources, {
      what,
      timeoutSeconds: ctx.timeoutSeconds,
      signal: ctx.signal,
      onConnectionProblem: (text) => ctx.report.problem('api server', text),
      check: (s) => {
        sweep?.(s);
        const left = remaining(s);
        // At most a line a second: deletions arrive in bursts of events.
        if (left.length > 0 && Date.now() - lastPrinted >= 1000) {
          ctx.report.step('destroy', `waiting for ${left.length} to go: ${countByKind(left)}`);
          lastPrinted = Date.now();
        }
        return left.length === 0 ? s : undefined;
      },
    });
  } catch (err) {
    if (err instanceof WaitTimeoutError) throw stuckError(err, remaining(err.snapshot), ctx.context);
    throw err;
  }
}

/** What is stuck and why, and the commands that would force it (printed, never run). */
function stuckError(err: WaitTimeoutError, left: readonly KubeObject[], context: string): DestroyStuckError {
  const kc = `kubectl --context ${context}`;
  const stuck = left.map((o) => {
    const why = [
      o.metadata.deletionTimestamp ? `terminating since ${o.metadata.deletionTimestamp}` : 'not yet deleted',
      (o.metadata.finalizers ?? []).length ? `finalizers ${o.metadata.finalizers!.join(', ')}` : '',
      isKind(o, 'Pod') ? `phase ${o.status?.phase ?? 'Unknown'} on node ${o.spec?.nodeName ?? '(none)'}` : '',
      isKind(o, 'PersistentVolume') ? `phase ${o.status?.phase}, reclaim ${o.spec?.persistentVolumeReclaimPolicy}` : '',
    ]
      .filter(Boolean)
      .join('; ');
    return `${o.kind}/${o.metadata.name}${o.metadata.namespace ? ` in ${o.metadata.namespace}` : ''}: ${why}`;
  });
  const force = left.map((o) => {
    const ns = o.metadata.namespace ? ` -n ${o.metadata.namespace}` : '';
    const name = `${o.kind!.toLowerCase()}/${o.metadata.name}`;
    if (o.kind === 'Pod') return `${kc}${ns} delete ${name} --grace-period=0 --force`;
    if ((o.metadata.finalizers ?? []).length)
      return `${kc}${ns} patch ${name} --type=merge -p '{"metadata":{"finalizers":null}}'`;
    return `${kc}${ns} delete ${name} --wait=false`;
  });
  return new DestroyStuckError(`${err.message}; ${left.length} object(s) remain`, stuck, force);
}

/** `destroy` (Flow 2). */
export const destroyCommand: ClusterCommand<{ waitNamespace?: boolean }> = {
  name: 'destroy',
  description:
    'delete everything of the profile, claims included, and wait until no pod, claim or ' +
    'volume of it remains (Flow 2)',
  configure: (command) =>
    command.option(
      '--wait-namespace',
      'also wait until the cluster has finalized the namespace (~5 s), e.g. before applying into it with another tool',
    ),
  whenInterrupted:
    'Deletions were requested and the cluster finishes them by itself; run the same `npm run destroy -- --profile=<name>` again to wait for them.',
  changesCluster: true,
  needsNamedProfile: 'always',
  run: async (ctx: CommandContext, opts) => {
    // destroy works from the labels alone; dist/ only adds kinds to sweep, when it can be read.
    const manifests = await readManifests(ctx.distDir, ctx.profile, { allowStale: true }).catch(() => undefined);
    await ctx.holdLock();
    await destroyProfile(waitContext(ctx), manifests, { namespace: opts.waitNamespace ? 'delete-and-wait' : 'delete' });
    ctx.report.success(`nothing of profile ${ctx.profile.name} remains on ${ctx.target.context}`);
  },
};
