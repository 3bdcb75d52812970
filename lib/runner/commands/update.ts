import { Option } from 'commander';
import { Component, DeployPhase, SandstoreContainers } from '../../labels.js';
import type { Manifest } from '../../synth.js';
import type { ManifestOf } from '../../k8s-types.js';
import { applyAll } from '../apply.js';
import { ApiError } from '../kube.js';
import { findManifest, manifestsOfPhase, readManifests } from '../manifests.js';
import { refuseTakeovers } from '../ownership.js';
import { refuseWithoutLeader, rollInOrder, takeOverRoll } from '../quorum-roll.js';
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

/**
 * Flow 4: refuses a cluster without a leader, hands the StatefulSet's roll to the runner (OnDelete),
 * re-applies the profile's config and data plane with a restart annotation (and optionally another
 * image), then replaces the pods one at a time in quorum order: failing ones first, then the
 * followers, the leader last, each step once the cluster is healthy again (quorum-roll.ts). A new
 * pod that crash-loops or misses its deadline pauses the roll with only that pod replaced.
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
  await refuseWithoutLeader(ctx, live);
  const restartedAt = new Date().toISOString();
  await takeOverRoll(ctx, dist.metadata.name);
  const sts = withRestart(dist, restartedAt, opts.image);
  try {
    await applyAll(ctx.kube, [
      ...manifestsOfPhase(manifests, DeployPhase.base).filter((m) => m.kind !== 'Namespace'),
      sts,
    ]);
  } catch (err) {
    // Nothing was replaced: the StatefulSet goes back to the strategy it had.
    await ctx.kube.mergePatch('StatefulSet', dist.metadata.name, ctx.namespace, {
      spec: { updateStrategy: { rollingUpdate: null, ...live.spec?.updateStrategy } },
    });
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
  await rollInOrder(ctx, dist.metadata.name, opts.podReadySeconds);
}

/** The data plane's StatefulSet in dist/; refused, with nothing sent, when dist/ has none. */
export function dataPlaneStatefulSet(manifests: readonly Manifest[]): ManifestOf<'StatefulSet'> {
  const sts = findManifest(manifests, 'StatefulSet', Component.dataPlane);
  if (!sts) throw new RefusedError('dist/ has no Sand Store StatefulSet; re-run `npm run synth`. Nothing was sent.');
  return sts;
}

/** The dist StatefulSet with a new restart annotation, optionally another image, and OnDelete (the runner rolls). */
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
  spec.updateStrategy = { type: 'OnDelete' };
  if (image) {
    const sandstoreImage = pod.containers.find((c) => c.name === SandstoreContainers.node)?.image;
    for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) if (c.image === sandstoreImage) c.image = image;
  }
  return sts;
}

/** `update` (Flow 4). */
export const updateCommand: ClusterCommand<{
  image?: string;
  build?: boolean;
  source: string;
  podReadyTimeout: number;
}> = {
  name: 'update',
  description:
    'rolling update (Flow 4): restart (or new image), one pod at a time, followers first and the leader last, ' +
    'each once the cluster is healthy; paused on a failing pod',
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
    'The StatefulSet is on OnDelete: no further pod is replaced until `npm run resume` goes on in ' +
    'quorum order (or a `kubectl apply` of dist/ hands it back to the ordinal RollingUpdate).',
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
