import { DeployPhase, LabelKeys, profileSelector } from '../../labels.js';
import type { Manifest } from '../../synth.js';
import { applyAll } from '../apply.js';
import { ApiError, type KubeObject } from '../kube.js';
import { findManifest, manifestsOfPhase, readManifests } from '../manifests.js';
import { lastTermination, ordinalOf, podProblems } from '../pods.js';
import type { RolloutState } from '../rollout.js';
import { waitForRollout, WaitFailedError } from '../waits.js';
import type { CommandContext } from './context.js';

export const RESTARTED_AT_ANNOTATION = 'sandstore.io/restarted-at';

export interface UpdateOptions {
  /** Run this image instead of the profile's (e.g. a fixed or a candidate build). @default the profile's image */
  readonly image?: string;
  /** Seconds an updated pod may take to become Ready before the rollout is paused. @default 120 */
  readonly podReadySeconds?: number;
}

/** A rollout halted on a failing pod (exit code 1). */
export class RolloutPausedError extends WaitFailedError {}

/**
 * Flow 4: re-applies the profile's config and data plane with a restart annotation (and optionally
 * another image), clears pods stuck on a bad revision, then watches the StatefulSet replace pods from
 * the highest ordinal down. If an updated pod crash-loops or misses its deadline, the rollout is
 * paused by raising the partition to that pod's ordinal, so no other pod is replaced.
 */
export async function update(ctx: CommandContext, opts: UpdateOptions = {}): Promise<void> {
  const manifests = await readManifests(ctx.distDir, ctx.profile);
  const dist = findManifest(manifests, 'StatefulSet', 'data-plane');
  if (!dist) throw new WaitFailedError('dist/ has no Sand Store StatefulSet; re-run `npm run synth`');
  const live = await ctx.kube.find('StatefulSet', dist.metadata.name, ctx.profile.namespace);
  if (!live) {
    throw new WaitFailedError(`StatefulSet ${dist.metadata.name} is not on ${ctx.target.context} (namespace ${ctx.profile.namespace}); run \`npm run deploy -- --profile=${ctx.profile.name}\` first`);
  }
  const sts = withRestart(dist, new Date().toISOString(), opts.image);
  try {
    await applyAll(ctx.kube, [...manifestsOfPhase(manifests, DeployPhase.base).filter((m) => m.kind !== 'Namespace'), sts]);
  } catch (err) {
    // A StatefulSet field other than the template, replicas and update strategy changed in dist/
    // (the pod management policy, the claim templates): Kubernetes cannot change it in place.
    if (err instanceof ApiError && err.status === 422 && /updates to statefulset spec for fields other than/.test(err.message)) {
      throw new WaitFailedError(`dist/ changes a field of StatefulSet ${dist.metadata.name} that Kubernetes cannot update in place; no pod was replaced`, [
        `the API server said: ${err.body?.message ?? err.message}`,
        `redeploy from a clean slate instead: npm run deploy -- --profile=${ctx.profile.name}`,
      ]);
    }
    throw err;
  }
  ctx.report.step('update', `applied StatefulSet ${dist.metadata.name}${opts.image ? ` with image ${opts.image}` : ''} and a restart at ${(sts as any).spec.template.metadata.annotations[RESTARTED_AT_ANNOTATION]}`);
  await watchRollout(ctx, dist.metadata.name, opts.podReadySeconds ?? 120);
}

/** `resume`: lowers the partition to 0 and watches the rest of the rollout, with the same guard. */
export async function resume(ctx: CommandContext, opts: { podReadySeconds?: number } = {}): Promise<void> {
  const manifests = await readManifests(ctx.distDir, ctx.profile, { allowStale: true });
  const name = findManifest(manifests, 'StatefulSet', 'data-plane')?.metadata.name ?? 'sandstore';
  await ctx.kube.mergePatch('StatefulSet', name, ctx.profile.namespace, { spec: { updateStrategy: { rollingUpdate: { partition: 0 } } } });
  ctx.report.step('resume', `partition of StatefulSet ${name} set to 0`);
  await watchRollout(ctx, name, opts.podReadySeconds ?? 120);
}

/** The dist StatefulSet with a new restart annotation, optionally another image, partition 0. */
export function withRestart(dist: Manifest, at: string, image?: string): Manifest {
  const sts = structuredClone(dist) as any;
  sts.spec.template.metadata.annotations = { ...(sts.spec.template.metadata.annotations ?? {}), [RESTARTED_AT_ANNOTATION]: at };
  sts.spec.updateStrategy = { type: 'RollingUpdate', rollingUpdate: { partition: 0 } };
  if (image) {
    for (const c of [...sts.spec.template.spec.containers, ...(sts.spec.template.spec.initContainers ?? [])]) {
      if (c.image === (dist as any).spec.template.spec.containers[0].image) c.image = image;
    }
  }
  return sts;
}

async function watchRollout(ctx: CommandContext, name: string, podReadySeconds: number): Promise<void> {
  const ns = ctx.profile.namespace;
  const selector = `${profileSelector(ctx.profile.name)},${LabelKeys.component}=data-plane`;
  const state: RolloutState = await waitForRollout(ctx, name, selector, { podReadySeconds, failFast: true });
  if (state.state === 'done') {
    ctx.report.success(`StatefulSet ${name} rolled out on ${ctx.target.context} in ${ctx.report.elapsed()}`);
    return;
  }
  if (state.state !== 'failed') return;
  // Halt: pods at or above the partition are updated; the failing pod's ordinal keeps every pod
  // below it on the old revision.
  const partition = ordinalOf(state.pod);
  await ctx.kube.mergePatch('StatefulSet', name, ns, { spec: { updateStrategy: { rollingUpdate: { partition } } } });
  const pod: KubeObject | undefined = await ctx.kube.find('Pod', state.pod, ns);
  const t = pod ? lastTermination(pod) : undefined;
  const kubectl = `kubectl --context ${ctx.target.context} -n ${ns}`;
  throw new RolloutPausedError(`rollout of StatefulSet ${name} paused at partition ${partition}: pod ${state.pod} failed (${state.reason}); pods below ordinal ${partition} were not touched`, [
    `failing pod: ${state.pod}${pod ? ` (${podProblems(pod).join('; ') || pod.status?.phase})` : ''}`,
    `last termination: ${t ? `container ${t.container} exit ${t.exitCode ?? '?'}${t.reason ? ` (${t.reason})` : ''}${t.message ? `: ${t.message.trim()}` : ''}` : 'none recorded'}`,
    `previous logs: npm run logs -- --profile=${ctx.profile.name} --pod=${state.pod} --previous   (or: ${kubectl} logs ${state.pod} -c sandstore --previous)`,
    `after a fix: npm run update -- --profile=${ctx.profile.name} (the failing pod is replaced first); to continue as is: npm run resume -- --profile=${ctx.profile.name}`,
  ]);
}
