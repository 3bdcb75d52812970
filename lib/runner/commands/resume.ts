import { readManifests } from '../manifests.js';
import { podReadyTimeoutOption, type ClusterCommand } from './command.js';
import { dataPlaneStatefulSet, watchRollout } from './update.js';

/** `resume`: lowers the partition of a paused rollout to 0 and watches the rest, with update's guard. */
export const resumeCommand: ClusterCommand<{ podReadyTimeout: number }> = {
  name: 'resume',
  description: 'continue a paused rollout (partition back to 0)',
  configure: (command) => command.addOption(podReadyTimeoutOption()),
  changesCluster: true,
  needsNamedProfile: 'always',
  whenInterrupted:
    "The partition is lowered and the StatefulSet controller goes on rolling pods one at a time by itself, without the runner's crash guard; `npm run status` shows where it is.",
  run: async (ctx, opts) => {
    const { name } = dataPlaneStatefulSet(await readManifests(ctx.distDir, ctx.profile, { allowStale: true })).metadata;
    await ctx.holdLock();
    await ctx.kube.mergePatch('StatefulSet', name, ctx.namespace, {
      spec: { updateStrategy: { rollingUpdate: { partition: 0 } } },
    });
    ctx.report.step('resume', `partition of StatefulSet ${name} set to 0`);
    await watchRollout(ctx, name, opts.podReadyTimeout);
  },
};
