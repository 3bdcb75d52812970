import { Option } from 'commander';
import { Component, componentSelector, DeployPhase, SandstoreContainers } from '../../labels.js';
import type { Manifest } from '../../synth.js';
import type { ManifestOf } from '../../k8s-types.js';
import { applyAll } from '../apply.js';
import { ApiError } from '../kube.js';
import { findManifest, manifestsOfPhase, readManifests } from '../manifests.js';
import { refuseTakeovers } from '../ownership.js';
import { lastTermination, ordinalOf, podProblems } from '../pods.js';
import { waitForRollout } from '../waits.js';
import { buildAndPushImage } from '../../image/build.js';
import { FailedError, RefusedError } from '../../errors.js';
import { rules } from '../../validation.js';
import { podReadyTimeoutOption, ruled, sourceOption, type ClusterCommand } from './command.js';
import type { CommandContext } from './context.js';

const RESTARTED_AT_ANNOTATION = 'sandstore.io/restarted-at';

interface UpdateOptions {
  /** Run this image instead of the profile's (e.g. a fixed or a candidate build). @default the profile's image */
  readonly image?: string;
  /** Seconds an updated pod may take to become Ready before the rollout is paused (--pod-ready-timeout). */
  readonly podReadySeconds: number;
}

/** The runner paused the rollout on a failing pod (exit code 1); not a wait failure: the wait is over by then. */
class RolloutPausedError extends FailedError {}

/**
 * Flow 4: re-applies the profile's config and data plane with a restart annotation (and optionally
 * another image), then watches the StatefulSet replace pods from the highest ordinal down, one at a
 * time. If an updated pod crash-loops or misses its deadline, the rollout is
 * paused by raising the partition to that pod's ordinal, so no other pod is replaced.
 */
export async function update(ctx: CommandContext, opts: UpdateOptions): Promise<void> {
  const manifests = await readManifests(ctx.distDir, ctx.profile);
  const dist = dataPlaneStatefulSet(manifests);
  await ctx.holdLock();
  // The base objects it applies include the cluster-scoped ones (the StorageClass): none may be someone else's.
  await refuseTakeovers(ctx.kube, ctx.profile.name, ctx.target.context, manifests, 'update');
  const live = await ctx.kube.find('StatefulSet', dist.metadata.name, ctx.namespace);
  if (!live) {
    throw new FailedError(
      `StatefulSet ${dist.metadata.name} is not on ${ctx.target.context} (namespace ` +
        `${ctx.namespace}); run \`npm run deploy -- --profile=${ctx.profile.name}\` first`,
    );
  }
  const restartedAt = new Date().toISOString();
  const sts = withRestart(dist, restartedAt, opts.image);
  try {
    await applyAll(ctx.kube, [
      ...manifestsOfPhase(manifests, DeployPhase.base).filter((m) => m.kind !== 'Namespace'),
      sts,
    ]);
  } catch (err) {
    // A StatefulSet field other than the template, replicas and update strategy changed in dist/
    // (the pod management policy, the claim templates): Kubernetes cannot change it in place.
    if (
      err instanceof ApiError &&
      err.status === 422 &&
      /updates to statefulset spec for fields other than/.test(err.message)
    ) {
      throw new FailedError(
        `dist/ changes a field of StatefulSet ${dist.metadata.name} that Kubernetes cannot ` +
          `update in place; no pod was replaced`,
        [
          `the API server said: ${err.body?.message ?? err.message}`,
          `redeploy from a clean slate instead: npm run deploy -- --profile=${ctx.profile.name}`,
        ],
      );
    }
    throw err;
  }
  const image = opts.image ? ` with image ${opts.image}` : '';
  ctx.report.step('update', `applied StatefulSet ${dist.metadata.name}${image} and a restart at ${restartedAt}`);
  await watchRollout(ctx, dist.metadata.name, opts.podReadySeconds);
}

/** The data plane's StatefulSet in dist/; refused, with nothing sent, when dist/ has none. */
export function dataPlaneStatefulSet(manifests: readonly Manifest[]): ManifestOf<'StatefulSet'> {
  const sts = findManifest(manifests, 'StatefulSet', Component.dataPlane);
  if (!sts) throw new RefusedError('dist/ has no Sand Store StatefulSet; re-run `npm run synth`. Nothing was sent.');
  return sts;
}

/** The dist StatefulSet with a new restart annotation, optionally another image, partition 0. */
export function withRestart(dist: ManifestOf<'StatefulSet'>, at: string, image?: string): ManifestOf<'StatefulSet'> {
  const sts = structuredClone(dist);
  const spec = sts.spec;
  const pod = spec?.template.spec;
  if (!spec || !pod)
    throw new RefusedError(
      `StatefulSet ${dist.metadata.name} in dist/ has no pod template; re-run \`npm run ` +
        `synth\`. Nothing was sent.`,
    );
  const template = spec.template;
  template.metadata = {
    ...template.metadata,
    annotations: { ...template.metadata?.annotations, [RESTARTED_AT_ANNOTATION]: at },
  };
  spec.updateStrategy = { type: 'RollingUpdate', rollingUpdate: { partition: 0 } };
  if (image) {
    const sandstoreImage = pod.containers[0]?.image;
    for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) if (c.image === sandstoreImage) c.image = image;
  }
  return sts;
}

/**
 * Watches the data plane's rollout to its end with the crash guard; on a failing pod, pauses it
 * there (partition = the pod's ordinal) and fails saying why and what to run next.
 */
export async function watchRollout(ctx: CommandContext, name: string, podReadySeconds: number): Promise<void> {
  const ns = ctx.namespace;
  const state = await waitForRollout(ctx, name, componentSelector(ctx.profile.name, Component.dataPlane), {
    podReadySeconds,
    failFast: true,
  });
  if (state.state === 'done') {
    ctx.report.success(`StatefulSet ${name} rolled out on ${ctx.target.context} in ${ctx.report.elapsed()}`);
    return;
  }
  // Halt: pods at or above the partition are updated; the failing pod's ordinal keeps every pod
  // below it on the old revision.
  const partition = ordinalOf(state.pod);
  await ctx.kube.mergePatch('StatefulSet', name, ns, { spec: { updateStrategy: { rollingUpdate: { partition } } } });
  const pod = await ctx.kube.find('Pod', state.pod, ns);
  const t = pod ? lastTermination(pod) : undefined;
  const kubectl = `kubectl --context ${ctx.target.context} -n ${ns}`;
  const reason = t?.reason ? ` (${t.reason})` : '';
  const message = t?.message ? `: ${t.message.trim()}` : '';
  const termination = t ? `container ${t.container} exit ${t.exitCode ?? '?'}${reason}${message}` : 'none recorded';
  throw new RolloutPausedError(
    `rollout of StatefulSet ${name} paused at partition ${partition}: pod ${state.pod} ` +
      `failed (${state.reason}); pods below ordinal ${partition} were not touched`,
    [
      `failing pod: ${state.pod}${pod ? ` (${podProblems(pod).join('; ') || pod.status?.phase})` : ''}`,
      `last termination: ${termination}`,
      `previous logs: npm run logs -- --profile=${ctx.profile.name} --pod=${state.pod} ` +
        `--previous   (or: ${kubectl} logs ${state.pod} -c ${SandstoreContainers.node} --previous)`,
      `after a fix: npm run update -- --profile=${ctx.profile.name} (the failing pod is ` +
        `replaced first); to continue as is: npm run resume -- --profile=${ctx.profile.name}`,
    ],
  );
}

/** `update` (Flow 4). */
export const updateCommand: ClusterCommand<{
  image?: string;
  build?: boolean;
  source: string;
  podReadyTimeout: number;
}> = {
  name: 'update',
  description: 'rolling update (Flow 4): restart (or new image), one pod at a time, paused on a failing pod',
  configure: (command) =>
    command
      .addOption(
        new Option('--image <ref>', "run this image instead of the profile's: <registry>/<repository>:<tag>").argParser(
          ruled(rules.imageReference),
        ),
      )
      .option('--build', "build and push the profile's image first (see `image`)")
      .addOption(sourceOption('Sand Store source checkout for --build'))
      .addOption(podReadyTimeoutOption()),
  whenInterrupted:
    'The new spec is applied and the StatefulSet controller goes on rolling pods one at a ' +
    "time by itself, without the runner's crash guard; `npm run status` shows where it is.",
  changesCluster: true,
  needsNamedProfile: 'always',
  run: async (ctx, opts) => {
    if (opts.build && opts.image) {
      throw new RefusedError(
        `--build builds and pushes the profile's image, --image runs another (${opts.image}): ` +
          `give one of them. Nothing was built or sent.`,
      );
    }
    if (opts.build)
      await buildAndPushImage({ profile: ctx.profile, sourcePath: opts.source, log: (line) => ctx.report.info(line) });
    await update(ctx, { image: opts.image, podReadySeconds: opts.podReadyTimeout });
  },
};
