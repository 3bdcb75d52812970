/**
 * `npm run benchmark -- --profile=<p> --baseline=processes`: the parity baseline. The profile's
 * etcd and Sand Store nodes run as plain processes on this machine, from the binaries its images
 * carry (by digest) and with its StatefulSets' settings; the same driver measures them with the same
 * options, the leader first; then they are stopped and shown gone. Recorded in
 * results/<profile>/<UTC time>/ like a Kubernetes run, with run.json's `target` saying what ran.
 *
 * Plan, then act: the options, results/, dist/ (fresh), the driver's build, the settings and both
 * binaries (the registry) are settled before the first process starts. No cluster is contacted.
 */
import { join } from 'node:path';
import { FailedError, RefusedError } from '../errors.js';
import { distDir, projectRoot } from '../paths.js';
import { loadProfile } from '../profiles.js';
import type { Reporter } from '../runner/report.js';
import { readManifests } from '../runner/manifests.js';
import { InterruptedError } from '../runner/watch.js';
import {
  conclude,
  leadershipChanges,
  prepareRuns,
  profileValues,
  statusOf,
  writeRecord,
  type BenchmarkOptions,
  type PreparedRuns,
  type RunOutcome,
} from '../runner/commands/benchmark.js';
import type { Baseline } from './baseline-record.js';
import {
  baselineLeadership,
  planBaseline,
  processesEnded,
  startBaseline,
  stopBaseline,
  type RunningBaseline,
} from './baseline-processes.js';
import { distDigest, projectRevision } from './provenance.js';
import { RUN_RECORD_SCHEMA, type DriverOptions, type RunRecord } from './record.js';
import { createRunDir } from './results-dir.js';
import { runDriver } from './run-driver.js';

export interface BaselineOptions extends BenchmarkOptions {
  readonly baseline: Baseline;
  readonly profile: string;
  readonly timeout: number;
  readonly context?: string;
  readonly breakLock?: boolean;
}

/** Options that make no sense with a baseline, and why: refused before anything is built or started. */
const NOT_WITH_BASELINE: readonly [keyof BaselineOptions, string, string][] = [
  [
    'compare',
    '--compare',
    'compares recorded runs; compare baseline runs with `npm run benchmark -- --compare <profile>`',
  ],
  ['fresh', '--fresh', 'deploys on the cluster; every baseline starts from empty data anyway'],
  ['profiles', '--profiles', 'runs a study on the cluster; run the baseline once per profile'],
  ['repeat', '--repeat', 'belongs to a study (--profiles)'],
  ['resume', '--resume', 'continues a study on the cluster'],
  ['includeInvalid', '--include-invalid', 'goes with --compare'],
  ['out', '--out', 'goes with --compare'],
  ['context', '--context', 'names a cluster, and the baseline uses none'],
  ['breakLock', '--break-lock', "takes a cluster's lock, and the baseline uses no cluster"],
];

export function refuseBaselineCombinations(opts: BaselineOptions, args: readonly unknown[]): void {
  const clash = NOT_WITH_BASELINE.filter(([key]) => opts[key] !== undefined && opts[key] !== false);
  if (clash.length > 0) {
    const flags = clash.map(([, flag]) => flag).join(', ');
    throw new RefusedError(
      `--baseline=${opts.baseline} cannot go with ${flags}: ` +
        `${clash.map(([, flag, why]) => `${flag} ${why}`).join('; ')}. Nothing was started.`,
    );
  }
  const selectors = (args[0] as string[] | undefined) ?? [];
  if (selectors.length > 0) {
    const given = `argument${selectors.length === 1 ? '' : 's'} ${selectors.join(' ')}`;
    throw new RefusedError(`unexpected ${given}: --baseline takes the profile from --profile. Nothing was started.`);
  }
}

export async function benchmarkBaseline(
  report: Reporter,
  opts: BaselineOptions,
  args: readonly unknown[],
  signal: AbortSignal,
): Promise<number> {
  refuseBaselineCombinations(opts, args);
  const profile = await loadProfile(opts.profile);
  const manifests = await readManifests(distDir(), profile);
  report.info(
    `${report.paint('bold', 'baseline')}: profile ${profile.name}'s programs as plain ` +
      `processes on this machine (no cluster)`,
  );
  const prepared = await prepareRuns(opts, report);
  const plan = await planBaseline(manifests, report);
  if (signal.aborted) throw new InterruptedError("the baseline's processes to start");
  const running = await startBaseline(plan, opts.timeout, report, signal);
  let measured: { outcome: RunOutcome; record: RunRecord } | undefined;
  let leftovers: string[];
  try {
    measured = await measure(report, opts, prepared, running, profile.name, profileValues(profile), signal);
  } finally {
    leftovers = await stopBaseline(running);
    if (measured) writeRecord(measured.outcome.dir, { ...measured.record, target: { ...running.target, leftovers } });
  }
  if (leftovers.length > 0)
    throw new FailedError(`the baseline's processes were stopped, but not everything is gone: ${leftovers.join('; ')}`);
  report.step(
    'baseline',
    `stopped: no process, port or data of the baseline is left ` +
      `(${running.target.processes.map((p) => p.pid).join(', ')} gone)`,
  );
  return conclude(report, profile.name, measured.outcome, 'Among the processes meanwhile');
}

/** A baseline has no cluster: what `cluster` says in its run.json (target says what ran). */
const NO_CLUSTER: RunRecord['cluster'] = { context: 'none', server: 'none', namespace: 'none', nodes: [], pods: [] };

async function measure(
  report: Reporter,
  opts: BaselineOptions,
  prepared: PreparedRuns,
  running: RunningBaseline,
  profileName: string,
  values: Record<string, unknown>,
  signal: AbortSignal,
): Promise<{ outcome: RunOutcome; record: RunRecord }> {
  const started = new Date();
  const { dir, id } = createRunDir(prepared.resultsDir, profileName, started);
  const options: DriverOptions = {
    seeds: [...running.seeds],
    concurrency: opts.concurrency,
    block_size_bytes: opts.blockSize,
    duration_s: opts.duration,
    warmup_s: opts.warmup,
    operations: [...opts.ops],
  };
  const { driver } = prepared;
  const base: RunRecord = {
    schema: RUN_RECORD_SCHEMA,
    id,
    status: 'failed',
    reasons: ["the benchmark command did not finish (killed before it recorded the run's end)"],
    // Every baseline starts on empty data: a clean slate, as --fresh gives a cluster.
    fresh: true,
    startedAt: started.toISOString(),
    endedAt: started.toISOString(),
    durationSeconds: 0,
    profile: { name: profileName, values, distDigest: distDigest(distDir(), profileName) },
    cluster: NO_CLUSTER,
    leadership: { before: { leader: running.leader, term: running.term }, after: {} },
    sandstore: { source: driver.source, revision: driver.revision, contentDigest: driver.contentDigest },
    driver: { options, binaryDigest: driver.binaryDigest },
    project: projectRevision(projectRoot()),
    target: running.target,
  };
  writeRecord(dir, base);
  report.step(
    'run',
    `${id}: ${opts.ops.join(', ')}, ${opts.concurrency} workers, ${opts.warmup}s warm-up + ` +
      `${opts.duration}s each, against ${options.seeds.join(', ')} (processes)`,
  );
  const run = await runDriver(driver.path, options, dir, join(dir, 'driver.log'), report, signal);
  const ended = new Date();
  const after = baselineLeadership(running);
  const { status, reasons } = statusOf(run, [...processesEnded(running), ...leadershipChanges(running, after)]);
  const record: RunRecord = {
    ...base,
    status,
    reasons,
    endedAt: ended.toISOString(),
    durationSeconds: (ended.getTime() - started.getTime()) / 1000,
    leadership: { ...base.leadership, after },
    driver: { ...base.driver, exitCode: run.exitCode },
  };
  writeRecord(dir, record);
  return { outcome: { dir, id, status, reasons, run }, record };
}
