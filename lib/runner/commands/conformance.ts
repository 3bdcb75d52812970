import { Option } from 'commander';
import { join } from 'node:path';
import { cacheDir } from '../../benchmark/image-binaries.js';
import {
  deployedReplicas,
  followTests,
  removeConformanceObjects,
  restoreReplicas,
  waitForStart,
  type ClusterContext,
} from '../../conformance/cluster.js';
import { passed, summarize } from '../../conformance/go-test-output.js';
import { conformanceJob, testArgs, testRbac, type ConformanceJobSpec } from '../../conformance/objects.js';
import { checkKubectl, checkSource, ensureTestImage, TEST_BINARY } from '../../conformance/test-image.js';
import { FailedError, RefusedError } from '../../errors.js';
import { isManifestOf } from '../../k8s-types.js';
import { Component, componentSelector, DeployPhase, RAFT_ROLE_LABEL } from '../../labels.js';
import type { Manifest } from '../../synth.js';
import { rules } from '../../validation.js';
import { chunkCommitRace, chunkCommitRaceHint } from '../chunk-commit-race.js';
import { findManifest, manifestsOfPhase, readManifests } from '../manifests.js';
import { ruled, seconds, sourceOption, type ClusterCommand } from './command.js';
import type { CommandContext } from './context.js';

interface ConformanceOptions {
  readonly source: string;
  readonly kubectl: string;
  readonly testImage?: string;
  readonly run?: string;
  readonly testTimeout: number;
  readonly startTimeout: number;
}

/** Sand Store's gRPC port, which every seed address names. */
const GRPC_PORT = 8080;

/**
 * The seeds the tests ask. Sand Store 7ab6010 with node ports on names each node's own node port as
 * the leader's (docs/leader-access.md), so with the pods' own addresses no two seeds agree on a
 * leader: a profile with a leader Service gives its address, twice, for the tests' vote of two.
 */
function seedsOf(manifests: readonly Manifest[], nodeAddrs: readonly string[]): string[] {
  const leader = manifests.find(
    (m) =>
      isManifestOf(m, 'Service') && m.spec?.type !== 'NodePort' && m.spec?.selector?.[RAFT_ROLE_LABEL] === 'leader',
  );
  return leader ? [`${leader.metadata.name}:${GRPC_PORT}`, `${leader.metadata.name}:${GRPC_PORT}`] : [...nodeAddrs];
}

/** The Job's spec from dist/'s data plane: its StatefulSet, its nodes' addresses, the seeds. */
async function jobSpecOf(ctx: CommandContext, opts: ConformanceOptions): Promise<Omit<ConformanceJobSpec, 'image'>> {
  const manifests = await readManifests(ctx.distDir, ctx.profile);
  const sts = findManifest(manifestsOfPhase(manifests, DeployPhase.dataPlane), 'StatefulSet', Component.dataPlane);
  if (!sts)
    throw new RefusedError(
      `dist/${ctx.profile.name} has no data-plane StatefulSet; run npm run synth. Nothing was sent.`,
    );
  const headless = sts.spec?.serviceName ?? sts.metadata.name;
  const nodeAddrs = Array.from(
    { length: ctx.profile.raft.replicas },
    (_, i) => `${sts.metadata.name}-${i}.${headless}:${GRPC_PORT}`,
  );
  return {
    statefulSet: sts.metadata.name,
    seeds: seedsOf(manifests, nodeAddrs),
    nodeAddrs,
    testTimeoutSeconds: opts.testTimeout,
    run: opts.run,
  };
}

const clusterContext = (ctx: CommandContext): ClusterContext => ({ ...ctx, profileName: ctx.profile.name });

/** The cleanup after every ending (passed, failed, Ctrl-C): nothing of the run is left, the replicas are back. */
async function cleanUp(ctx: CommandContext, statefulSet: string, replicas: number): Promise<void> {
  // After Ctrl-C too: the waits here take no signal.
  const quiet: ClusterContext = { ...clusterContext(ctx), signal: undefined };
  const removed = await removeConformanceObjects(quiet, ctx.timeoutSeconds);
  ctx.report.step('conformance', removed.length > 0 ? `removed ${removed.join(', ')}` : 'nothing to remove');
  const left = await restoreReplicas(quiet, statefulSet, replicas, ctx.timeoutSeconds);
  if (left !== undefined)
    ctx.report.step(
      'conformance',
      `the tests left StatefulSet ${statefulSet} at ${left} replicas; back at ${replicas}, all Ready`,
    );
}

/** Runs the tests in the Job and reports each verdict; returns the exit code. */
async function runTests(ctx: CommandContext, opts: ConformanceOptions, spec: ConformanceJobSpec): Promise<number> {
  const cluster = clusterContext(ctx);
  // One at a time, in order: a user without `bind` may bind a Role only once the API server can
  // read it to see that the user holds what it grants (in parallel, the binding may come first: 404).
  for (const object of [...testRbac(ctx.profile), conformanceJob(ctx.profile, spec)]) await ctx.kube.apply(object);
  ctx.report.step('conformance', `started Job sandstore-conformance: ${TEST_BINARY} ${testArgs(spec).join(' ')}`);
  const pod = await waitForStart(cluster, opts.startTimeout);
  ctx.report.step('conformance', `pod ${pod} runs the tests; their output follows`);
  const result = await followTests(cluster, pod, opts.testTimeout + 60);
  ctx.report.info('');
  ctx.report.info(ctx.report.paint('bold', 'verdicts'));
  for (const line of summarize(result.run)) ctx.report.info(`  ${line}`);
  if (result.run.tests.length === 0)
    throw new FailedError(
      `the test binary ran no test (exit ${result.exitCode}${result.reason ? `, ${result.reason}` : ''}); its output is above`,
    );
  if (passed(result.run) && result.exitCode === 0) {
    ctx.report.success(`every cluster test passed against profile ${ctx.profile.name}`);
    return 0;
  }
  const failed = result.run.tests.filter((t) => t.verdict === 'FAIL').map((t) => t.name);
  ctx.report.error(
    `cluster tests failed against profile ${ctx.profile.name}: ${failed.join(', ') || `the binary exited ${result.exitCode}`}`,
  );
  for (const t of result.run.tests) {
    const race = t.verdict === 'FAIL' ? chunkCommitRace(t.output.join('\n')) : undefined;
    if (race) ctx.report.detail(`${t.name}: ${chunkCommitRaceHint(race)}`);
  }
  return 1;
}

async function conformance(ctx: CommandContext, opts: ConformanceOptions): Promise<number> {
  // Everything refusable is refused before the first request: the image named, or its inputs.
  const named = opts.testImage;
  const plan: { image: string } | { build: { source: string; kubectl: string } } =
    named !== undefined
      ? { image: named }
      : { build: { source: checkSource(opts.source), kubectl: checkKubectl(opts.kubectl) } };
  const spec = await jobSpecOf(ctx, opts);
  const replicas = await deployedReplicas(
    clusterContext(ctx),
    spec.statefulSet,
    componentSelector(ctx.profile.name, Component.dataPlane),
  );
  const image =
    'image' in plan
      ? plan.image
      : await ensureTestImage({
          ...plan.build,
          registry: ctx.profile.image.registry,
          log: (line) => ctx.report.info(line),
        });
  await ctx.holdLock();
  // A previous run cut short (a killed runner) may have left its Job: removed first, ours only.
  await removeConformanceObjects(clusterContext(ctx), ctx.timeoutSeconds);
  try {
    return await runTests(ctx, opts, { ...spec, image });
  } finally {
    await cleanUp(ctx, spec.statefulSet, replicas);
  }
}

/** `conformance`: Sand Store's own cluster tests (integration/cluster) against a deployed profile. */
export const conformanceCommand: ClusterCommand<ConformanceOptions> = {
  name: 'conformance',
  description:
    "run Sand Store's own cluster tests (go test -c ./integration/cluster) in a Job against the deployed profile, report each verdict, remove the Job",
  whenInterrupted:
    'The test Job and its permissions were removed and the StatefulSet put back at its replicas; `npm run status` shows the profile.',
  changesCluster: true,
  // The tests scale the StatefulSet to zero and delete its pods: never on a defaulted profile.
  needsNamedProfile: 'always',
  configure: (command) =>
    command
      .addOption(sourceOption('Sand Store source checkout (holds integration/cluster)'))
      .addOption(
        new Option('--kubectl <path>', 'static linux/amd64 kubectl the test image carries (the tests call it)').default(
          join(cacheDir(), 'bin', 'kubectl'),
        ),
      )
      .addOption(
        new Option('--test-image <reference>', 'run this image instead of building one from --source').argParser(
          ruled(rules.imageReference),
        ),
      )
      .addOption(new Option('--run <regexp>', 'only the tests matching (go test -run)'))
      .addOption(
        new Option('--test-timeout <seconds>', "the tests' own deadline (go test -timeout)")
          .argParser(seconds)
          .default(1200),
      )
      .addOption(
        new Option('--start-timeout <seconds>', 'how long the test pod may take to be scheduled and start')
          .argParser(seconds)
          .default(120),
      ),
  run: (ctx, opts) => conformance(ctx, opts),
};
