import { Component, DeployPhase, jobPodsSelector, SMOKE_TEST_CONTAINER } from '../../labels.js';
import { applyAll } from '../apply.js';
import { findManifest, manifestsOfPhase, readManifests } from '../manifests.js';
import { awaitLeader } from '../leader.js';
import { printLogs } from '../logs.js';
import type { ManifestOf } from '../../k8s-types.js';
import { waitForJob } from '../waits.js';
import { CommandError, FailedError, RefusedError } from '../../errors.js';
import { chunkCommitRace, chunkCommitRaceHint } from '../chunk-commit-race.js';
import type { ClusterCommand } from './command.js';
import { waitFor } from '../watch.js';
import type { CommandContext } from './context.js';

/**
 * `smoke`: runs the profile's smoke-test Job (the image's smoke client against every node), prints
 * its logs, removes the Job and exits with its result.
 */
export async function smoke(ctx: CommandContext): Promise<void> {
  const manifests = await readManifests(ctx.distDir, ctx.profile);
  const job = findManifest(manifestsOfPhase(manifests, DeployPhase.onDemand), 'Job', Component.smokeTest);
  if (!job)
    throw new RefusedError(
      `profile ${ctx.profile.name} has no smoke-test Job (smokeTest: false in ` +
        `profiles/${ctx.profile.name}.ts). Nothing was sent.`,
    );
  const ns = ctx.namespace;
  await ctx.holdLock();
  // A Job's pod template is immutable: a previous run is removed first (its pods with it).
  if (await ctx.kube.delete('Job', job.metadata.name, ns)) {
    await waitForGone(ctx, job.metadata.name);
  }
  // Sand Store 7ab6010 cannot send a client from a follower to the leader (see client.ts): the
  // Job's seeds are reordered, the leader's first, the only change made to what dist/ holds.
  const leader = await awaitLeader(ctx);
  if (leader)
    ctx.report.step('smoke', `leader: ${leader} (from its event log); its address goes first in SANDSTORE_SEEDS`);
  await applyAll(ctx.kube, [leader ? withLeaderFirst(job, leader) : job]);
  ctx.report.step('smoke', `started Job ${job.metadata.name}`);
  let failure: Error | undefined;
  try {
    await waitForJob(ctx, job.metadata.name);
  } catch (err) {
    failure = err instanceof Error ? err : new Error(String(err));
  }
  const pods = await ctx.kube.list('Pod', { namespace: ns, labelSelector: jobPodsSelector(job.metadata.name) });
  const logs: string[] = [];
  for (const pod of pods.items) {
    try {
      logs.push(
        await printLogs(ctx.kube, ctx.report, {
          namespace: ns,
          pod: pod.metadata.name,
          container: SMOKE_TEST_CONTAINER,
          previous: false,
        }),
      );
    } catch (err) {
      ctx.report.problem(`pod ${pod.metadata.name}`, `logs unavailable: ${(err as Error).message}`);
    }
  }
  await ctx.kube.delete('Job', job.metadata.name, ns);
  ctx.report.step('smoke', `removed Job ${job.metadata.name}`);
  if (failure) throw withRaceHint(failure, logs);
  ctx.report.success(`smoke test passed against ${ctx.profile.raft.replicas} nodes`);
}

/** The Job's failure, told so when its client met Sand Store's chunk commit race. */
function withRaceHint(failure: Error, logs: readonly string[]): Error {
  const race = chunkCommitRace(logs.join('\n'));
  if (!race) return failure;
  const hint = chunkCommitRaceHint(race);
  return failure instanceof CommandError ? failure.withDetails(hint) : new FailedError(failure.message, [hint]);
}

/** The Job with the leader's in-cluster address first in SANDSTORE_SEEDS. */
export function withLeaderFirst(job: ManifestOf<'Job'>, leader: string): ManifestOf<'Job'> {
  const copy = structuredClone(job);
  for (const c of copy.spec?.template.spec?.containers ?? []) {
    for (const e of c.env ?? []) {
      if (e.name !== 'SANDSTORE_SEEDS' || e.value === undefined) continue;
      const seeds = e.value.split(',');
      e.value = [
        ...seeds.filter((a) => a.startsWith(`${leader}.`)),
        ...seeds.filter((a) => !a.startsWith(`${leader}.`)),
      ].join(',');
    }
  }
  return copy;
}

async function waitForGone(ctx: CommandContext, name: string): Promise<void> {
  await waitFor(
    ctx.kube,
    [{ key: 'job', kind: 'Job', namespace: ctx.namespace, fieldSelector: `metadata.name=${name}` }],
    {
      what: `the previous Job ${name} to be removed`,
      timeoutSeconds: ctx.timeoutSeconds,
      signal: ctx.signal,
      onConnectionProblem: (text) => ctx.report.problem('api server', text),
      check: (s) => (s.job.size === 0 ? true : undefined),
    },
  );
}

/** `smoke`. */
export const smokeCommand: ClusterCommand = {
  name: 'smoke',
  description: 'run the smoke-test Job against every node, print its logs, remove it',
  whenInterrupted: 'The smoke-test Job may still be running; `npm run smoke` removes it and starts over.',
  changesCluster: true,
  run: (ctx) => smoke(ctx),
};
