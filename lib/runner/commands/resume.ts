import { readManifests } from '../manifests.js';
import { rollInOrder, takeOverRoll } from '../quorum-roll.js';
import { podReadyTimeoutOption, type ClusterCommand } from './command.js';
import { dataPlaneStatefulSet } from './update.js';

/** `resume`: goes on with a paused (or interrupted) roll in quorum order, with update's gate and guard. */
export const resumeCommand: ClusterCommand<{ podReadyTimeout: number }> = {
  name: 'resume',
  description: 'continue a paused rollout in quorum order (the replaced pod first, then the rest)',
  configure: (command) => command.addOption(podReadyTimeoutOption()),
  changesCluster: true,
  needsNamedProfile: 'always',
  whenInterrupted: 'The StatefulSet is on OnDelete: no further pod is replaced until `npm run resume` goes on.',
  run: async (ctx, opts) => {
    const { name } = dataPlaneStatefulSet(await readManifests(ctx.distDir, ctx.profile, { allowStale: true })).metadata;
    await ctx.holdLock();
    await takeOverRoll(ctx, name);
    ctx.report.step('resume', `StatefulSet ${name} on OnDelete: the runner goes on in quorum order`);
    await rollInOrder(ctx, name, opts.podReadyTimeout);
  },
};
