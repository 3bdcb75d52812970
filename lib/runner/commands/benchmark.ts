import { InvalidArgumentError, Option, type Command } from 'commander';
import { readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { CommandError, FailedError, RefusedError } from '../../errors.js';
import type { Reporter } from '../report.js';
import { compareRuns } from '../../benchmark/compare.js';
import { defaultSandstoreSource, projectRoot } from '../../paths.js';
import { Component, componentSelector } from '../../labels.js';
import type { Profile } from '../../profile.js';
import { buildDriver, type DriverBuild } from '../../benchmark/driver-build.js';
import { describeChanges, identityOf, passGate, type GatePassed } from '../../benchmark/gate.js';
import { clusterFacts, distDigest, projectRevision } from '../../benchmark/provenance.js';
import {
  DriverSummary,
  OPERATIONS,
  RUN_RECORD_SCHEMA,
  type DriverOptions,
  type Operation,
  type RunRecord,
  type RunStatus,
} from '../../benchmark/record.js';
import { checkResultsDir, createRunDir, runFolderName, writeFileAtomic } from '../../benchmark/results-dir.js';
import { runDriver, type DriverRun } from '../../benchmark/run-driver.js';
import { readLeadership } from '../leader.js';
import { readManifests } from '../manifests.js';
import { runStudy } from '../../benchmark/run-study.js';
import { readServers, serverView, type ServerView } from '../../benchmark/server-view.js';
import { serverTable } from '../../benchmark/server-table.js';
import { alignedTable } from '../../benchmark/text-table.js';
import {
  pendingEntries,
  planStudy,
  readStudy,
  STUDY_SCHEMA,
  writeStudy,
  type StudyRecord,
} from '../../benchmark/study.js';
import type { ClusterCommand, Session } from './command.js';
import type { CommandContext } from './context.js';
import { deploy } from './deploy.js';
import { BASELINES, type Baseline } from '../../benchmark/baseline-record.js';
import { benchmarkBaseline, type BaselineOptions } from '../../benchmark/baseline-run.js';

/**
 * `benchmark`: measures a deployed profile from this machine, through its node ports, with the
 * project's load driver (drivers/sandstore-bench), and records the run in
 * results/<profile>/<UTC timestamp>/ with everything needed to trace its numbers (run.json,
 * lib/benchmark/record.ts). Plan, then act: options, results/ and the driver's build are checked
 * before the first request; --fresh deploys from a clean slate; the gate (gate.ts) waits for a
 * settled cluster; the driver runs; the cluster is read again, and a run during which a pod
 * restarted or the leadership changed is kept but marked invalid. `--compare` is compare.ts's.
 */

export interface BenchmarkOptions {
  readonly profiles?: readonly string[];
  readonly repeat?: number;
  readonly resume?: string;
  readonly compare?: boolean;
  readonly includeInvalid?: boolean;
  readonly out?: string;
  readonly duration: number;
  readonly warmup: number;
  readonly concurrency: number;
  readonly blockSize: number;
  readonly ops: readonly Operation[];
  readonly source?: string;
  readonly fresh?: boolean;
  readonly resultsDir?: string;
  readonly baseline?: Baseline;
}

/** The project's results/, or --results-dir. */
export const resultsDirOf = (given: string | undefined) =>
  given ? resolve(process.env.INIT_CWD ?? process.cwd(), given) : join(projectRoot(), 'results');

async function benchmark(ctx: CommandContext, opts: BenchmarkOptions, args: readonly unknown[]): Promise<number> {
  const selectors = (args[0] as string[] | undefined) ?? [];
  if (selectors.length > 0) {
    const given = selectors.join(' ');
    throw new RefusedError(
      `unexpected argument${selectors.length === 1 ? '' : 's'} ${given}: runs and profiles to ` +
        `compare go after --compare (npm run benchmark -- --compare ${given}). Nothing was sent.`,
    );
  }
  const prepared = await prepareRuns(opts, ctx.report);
  const outcome = await benchmarkRun(ctx, opts, prepared);
  return conclude(ctx.report, ctx.profile.name, outcome);
}

/** What every run of a command shares, checked and built before the first request. */
export interface PreparedRuns {
  readonly resultsDir: string;
  readonly driver: BuiltDriver;
}

/** results/ can hold a run, and the driver is built: before anything is sent. */
export async function prepareRuns(opts: BenchmarkOptions, report: Reporter): Promise<PreparedRuns> {
  const resultsDir = resultsDirOf(opts.resultsDir);
  checkResultsDir(resultsDir);
  const source = sourcePath(opts.source);
  const driver = {
    ...(await buildDriver({ source, log: (line) => report.step('driver', line.replace(/^driver: /, '')) })),
    source,
  };
  return { resultsDir, driver };
}

/** How a recorded run ended. */
export interface RunOutcome {
  readonly dir: string;
  readonly id: string;
  readonly status: RunStatus;
  readonly reasons: readonly string[];
  readonly run: DriverRun;
  readonly server?: ServerView;
}

/**
 * One run: deploy first with --fresh, the gate, the measurement, the record. Throws only before the
 * run's folder exists.
 */
export async function benchmarkRun(
  ctx: CommandContext,
  opts: BenchmarkOptions,
  prepared: PreparedRuns,
): Promise<RunOutcome> {
  const manifests = await readManifests(ctx.distDir, ctx.profile);
  if (opts.fresh) {
    ctx.report.step('fresh', `deploying profile ${ctx.profile.name} from a clean slate first`);
    await deploy(ctx, { phase: 'start', applied: [] });
  } else {
    // Held through the run: no other runner rolls, deploys or destroys the profile under a measurement.
    await ctx.holdLock();
  }
  const gate = await passGate(ctx, manifests, ctx.profile.raft.replicas);
  return measure(ctx, opts, prepared.resultsDir, prepared.driver, gate);
}

/** The driver as built, and the checkout it was built against. */
type BuiltDriver = DriverBuild & { readonly source: string };

/**
 * --source relative to where the user ran npm (npm runs scripts in the project's directory); by
 * default shared/sandstore beside the project or beside one of its ancestors (../shared/sandstore
 * for a project next to the shared folder), the rule the local cluster's images follow.
 */
function sourcePath(source: string | undefined): string {
  if (source !== undefined) return isAbsolute(source) ? source : resolve(process.env.INIT_CWD ?? process.cwd(), source);
  return defaultSandstoreSource();
}

async function measure(
  ctx: CommandContext,
  opts: BenchmarkOptions,
  resultsDir: string,
  driver: BuiltDriver,
  gate: GatePassed,
): Promise<RunOutcome> {
  const started = new Date();
  const { dir, id } = createRunDir(resultsDir, ctx.profile.name, started);
  const options: DriverOptions = {
    seeds: gate.endpoints.map((e) => e.address),
    concurrency: opts.concurrency,
    block_size_bytes: opts.blockSize,
    duration_s: opts.duration,
    warmup_s: opts.warmup,
    operations: [...opts.ops],
  };
  const record = baseRecord(ctx, opts, id, started, driver, options, gate);
  // Marked from the start: a run killed outright still says it did not finish.
  writeRecord(dir, {
    ...record,
    status: 'failed',
    reasons: ["the benchmark command did not finish (killed before it recorded the run's end)"],
  });
  ctx.report.step(
    'run',
    `${id}: ${opts.ops.join(', ')}, ${opts.concurrency} workers, ${opts.warmup}s warm-up + ` +
      `${opts.duration}s each, against ${options.seeds.join(', ')}`,
  );
  const servers = { kube: ctx.kube, namespace: ctx.namespace, dir };
  const before = await readServers(servers, await dataPlanePods(ctx), 'before');
  const run = await runDriver(driver.path, options, dir, join(dir, 'driver.log'), ctx.report, ctx.signal);
  const ended = new Date();
  const server = serverView(before, await readServers(servers, await dataPlanePods(ctx), 'after'));
  const { status, reasons } = await judge(ctx, gate, run);
  const facts = await clusterFacts(ctx);
  const leadership = await readLeadership(ctx);
  writeRecord(dir, {
    ...record,
    status,
    reasons,
    endedAt: ended.toISOString(),
    durationSeconds: (ended.getTime() - started.getTime()) / 1000,
    cluster: { ...record.cluster, ...facts },
    leadership: { ...record.leadership, after: { leader: leadership.leader, term: leadership.term } },
    driver: { ...record.driver, exitCode: run.exitCode },
    server,
  });
  return { dir, id, status, reasons, run, server };
}

function baseRecord(
  ctx: CommandContext,
  opts: BenchmarkOptions,
  id: string,
  started: Date,
  driver: BuiltDriver,
  options: DriverOptions,
  gate: GatePassed,
): RunRecord {
  return {
    schema: RUN_RECORD_SCHEMA,
    id,
    status: 'failed',
    reasons: [],
    fresh: Boolean(opts.fresh),
    startedAt: started.toISOString(),
    endedAt: started.toISOString(),
    durationSeconds: 0,
    profile: {
      name: ctx.profile.name,
      values: profileValues(ctx.profile),
      distDigest: distDigest(ctx.distDir, ctx.profile.name),
    },
    cluster: { context: ctx.target.context, server: ctx.target.server, namespace: ctx.namespace, nodes: [], pods: [] },
    leadership: { before: { leader: gate.leader, term: gate.term }, after: {} },
    sandstore: { source: driver.source, revision: driver.revision, contentDigest: driver.contentDigest },
    driver: { options, binaryDigest: driver.binaryDigest },
    project: projectRevision(projectRoot()),
  };
}

export const profileValues = (profile: Profile) => JSON.parse(JSON.stringify(profile)) as Record<string, unknown>;

export const writeRecord = (dir: string, record: RunRecord) =>
  writeFileAtomic(join(dir, 'run.json'), `${JSON.stringify(record, null, 2)}\n`);

/**
 * valid, invalid (the cluster changed under the run), interrupted or failed, with the reasons. What
 * changed in the cluster is said whatever else happened: a driver that failed because the pods were
 * OOM-killed under it should say so.
 */
async function judge(
  ctx: CommandContext,
  gate: GatePassed,
  run: DriverRun,
): Promise<{ status: RunStatus; reasons: string[] }> {
  const changes = describeChanges(gate.pods, (await dataPlanePods(ctx)).map(identityOf));
  changes.push(...leadershipChanges(gate, await readLeadership(ctx)));
  return statusOf(run, changes);
}

/** A leader that changed, or an election that returned the same leader, between the gate and the end of the run. */
export function leadershipChanges(
  before: { leader: string; term: number },
  after: { leader?: string; term?: number },
): string[] {
  if (after.leader !== before.leader)
    return [
      `the leader changed: ${before.leader} before, ` + `${after.leader ?? 'none (an election under way)'} after`,
    ];
  if (after.term !== before.term)
    return [
      `an election took place: term ${before.term} before, ${after.term} after ` + `(${before.leader} leads again)`,
    ];
  return [];
}

/**
 * The run's status from how the driver ended and what changed under it (a Kubernetes run's pods and
 * leader, a baseline's processes and leader).
 */
export function statusOf(run: DriverRun, changes: string[]): { status: RunStatus; reasons: string[] } {
  if (run.exitCode === 130)
    return {
      status: 'interrupted',
      reasons: [
        'interrupted (Ctrl-C or SIGTERM): the phases measured so far are kept; the one under ' +
          'way is marked incomplete',
        ...changes,
      ],
    };
  if (run.exitCode !== 0)
    return {
      status: 'failed',
      reasons: [
        `the load driver exited with code ${run.exitCode}: ` +
          `${run.lastErrors.slice(-3).join(' | ') || 'no message'}`,
        ...changes,
      ],
    };
  return changes.length > 0 ? { status: 'invalid', reasons: changes } : { status: 'valid', reasons: [] };
}

const dataPlanePods = async (ctx: CommandContext) =>
  (
    await ctx.kube.list('Pod', {
      namespace: ctx.namespace,
      labelSelector: componentSelector(ctx.profile.name, Component.dataPlane),
    })
  ).items;

/** Prints the run's table and where it is, and says how it ended by the exit code. */
export function conclude(
  report: Reporter,
  profileName: string,
  { dir, status, reasons, run, server }: RunOutcome,
  meanwhile = 'In the cluster meanwhile',
): number {
  const summary = readSummary(dir);
  if (summary) for (const line of summaryTable(summary)) report.info(line);
  if (server) for (const line of serverTable(server)) report.info(line);
  const where = `recorded in ${dir}`;
  if (status === 'valid') {
    report.success(
      `benchmark of ${profileName} ${where}; \`npm run benchmark -- --compare ` + `${profileName}\` compares its runs`,
    );
    return 0;
  }
  if (status === 'interrupted')
    throw new CommandError(`benchmark interrupted; what was measured is kept, marked interrupted, ${where}`, 130);
  if (status === 'failed') {
    const cluster = reasons.slice(1).map((r) => `${meanwhile}: ${r}`);
    throw new FailedError(`the load driver failed; the run is marked failed, ${where}`, [
      ...run.lastErrors.slice(-10),
      ...cluster,
      `Its whole output: ${join(dir, 'driver.log')}`,
    ]);
  }
  throw new FailedError(
    `the run is marked invalid and left out of comparisons (--include-invalid counts it), ${where}`,
    [...reasons],
  );
}

function readSummary(dir: string): DriverSummary | undefined {
  try {
    const parsed = DriverSummary.safeParse(JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** The run's numbers, one line per operation, for the terminal. */
export function summaryTable(summary: DriverSummary): string[] {
  const head = ['operation', 'ops/s', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'total', 'errors'];
  const rows = summary.phases.map((p) => [
    `${p.operation}${p.complete ? '' : ' (partial)'}`,
    p.ops_per_s.toFixed(1),
    p.latency_ms.p50.toFixed(3),
    p.latency_ms.p95.toFixed(3),
    p.latency_ms.p99.toFixed(3),
    p.latency_ms.p100.toFixed(3),
    String(p.total_ops),
    String(p.error_count),
  ]);
  return alignedTable(head, rows);
}

// Option values, each refused with the accepted form before anything is built or sent.

const decimalIn =
  (min: number, max: number, what: string, open = false) =>
  (value: string): number => {
    const n = /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN;
    if (!(open ? n > min : n >= min) || !(n <= max)) throw new InvalidArgumentError(`expected ${what}, got "${value}"`);
    return n;
  };

const wholeIn =
  (min: number, max: number, what: string) =>
  (value: string): number => {
    const n = /^\d+$/.test(value) ? Number(value) : NaN;
    if (!(n >= min && n <= max)) throw new InvalidArgumentError(`expected ${what}, got "${value}"`);
    return n;
  };

/** The largest block the driver writes in one call: Sand Store's gRPC messages stop at 32 MiB. */
const MAX_BLOCK_BYTES = 16 * 1024 * 1024;

/** `4096`, `64Ki`, `1Mi`: bytes from 1 to MAX_BLOCK_BYTES. */
export function blockSize(value: string): number {
  const m = /^(\d+)(Ki|Mi)?$/.exec(value);
  const n = m ? Number(m[1]) * (m[2] === 'Ki' ? 1024 : m[2] === 'Mi' ? 1024 ** 2 : 1) : NaN;
  if (!(n >= 1 && n <= MAX_BLOCK_BYTES))
    throw new InvalidArgumentError(
      `expected a block size in bytes from 1 to 16Mi, such as 4096, 64Ki or 1Mi, got "${value}"`,
    );
  return n;
}

/** `write,read`: some of the five operations, each once; run in upstream's order whatever the order given. */
export function operations(value: string): Operation[] {
  const given = value.split(',');
  const unknown = given.filter((o) => !(OPERATIONS as readonly string[]).includes(o));
  if (unknown.length > 0)
    throw new InvalidArgumentError(
      `expected a comma-separated list of ${OPERATIONS.join(', ')}, got unknown ` +
        `${unknown.map((o) => JSON.stringify(o)).join(', ')}`,
    );
  const twice = given.filter((o, i) => given.indexOf(o) !== i);
  if (twice.length > 0)
    throw new InvalidArgumentError(
      `expected each operation once, got ${[...new Set(twice)].join(', ')} more than once`,
    );
  return OPERATIONS.filter((o) => given.includes(o));
}

/** `a,b`: two or more distinct profile names, in the order each round runs them. */
export function profileList(value: string): string[] {
  const given = value.split(',');
  const bad = given.filter((p) => !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(p));
  if (bad.length > 0)
    throw new InvalidArgumentError(
      `expected profile names (files in profiles/) separated by commas, such as ` +
        `local-node,local-node-xfs, got ${bad.map((b) => JSON.stringify(b)).join(', ')}`,
    );
  if (new Set(given).size !== given.length)
    throw new InvalidArgumentError(`expected each profile once, got ${JSON.stringify(value)}`);
  if (given.length < 2)
    throw new InvalidArgumentError(
      `expected two or more profiles to compare, got ${JSON.stringify(value)}; one profile is ` + `--profile=${value}`,
    );
  return given;
}

export const rounds = wholeIn(1, 100, 'a whole number of rounds from 1 to 100, such as 5');

export const durationSeconds = decimalIn(
  0,
  86_400,
  'seconds per phase above 0 and at most 86400, such as 30 or 2.5',
  true,
);
export const warmupSeconds = decimalIn(0, 3600, 'seconds of warm-up per phase from 0 to 3600, such as 5');
export const concurrency = wholeIn(1, 1024, 'a whole number of workers from 1 to 1024, such as 4');

function configure(command: Command): Command {
  return command
    .addOption(
      new Option('--duration <seconds>', 'measured seconds per operation').argParser(durationSeconds).default(30),
    )
    .addOption(
      new Option('--warmup <seconds>', 'seconds per operation run first and discarded')
        .argParser(warmupSeconds)
        .default(5),
    )
    .addOption(new Option('--concurrency <workers>', 'closed-loop workers').argParser(concurrency).default(4))
    .addOption(
      new Option('--block-size <bytes>', 'bytes per write and read call (4096, 64Ki, 1Mi)')
        .argParser(blockSize)
        .default(4096),
    )
    .addOption(
      new Option('--ops <list>', `operations to run, of ${OPERATIONS.join(',')}`)
        .argParser(operations)
        .default([...OPERATIONS], OPERATIONS.join(',')),
    )
    .addOption(
      new Option(
        '--source <path>',
        'Sand Store checkout the load driver is built against (its client library); ' +
          'default: shared/sandstore beside the project or an ancestor (../shared/sandstore)',
      ).env('SANDSTORE_SRC'),
    )
    .option('--fresh', 'deploy the profile from a clean slate first (the rule between profiles)')
    .addOption(
      new Option(
        '--baseline <kind>',
        "measure the profile's programs run directly on this machine instead: etcd and the " +
          'nodes as plain processes ' +
          'from the binaries in its images, with its settings (the parity baseline; no cluster)',
      ).choices(BASELINES),
    )
    .addOption(new Option('--results-dir <path>', 'where runs are recorded (default: results/ in the project)'))
    .addOption(
      new Option(
        '--profiles <list>',
        'a study: these profiles (two or more), each measured once per round after a clean-slate deploy',
      ).argParser(profileList),
    )
    .addOption(new Option('--repeat <rounds>', 'with --profiles: how many rounds (default 1)').argParser(rounds))
    .addOption(
      new Option(
        '--resume <study folder>',
        'continue a study that stopped (results/studies/<UTC time>), without redoing finished runs',
      ),
    )
    .option(
      '--compare',
      'compare recorded runs instead (no cluster call): the runs and profiles named after it, ' +
        "else every profile's",
    )
    .option('--include-invalid', 'with --compare: count runs marked invalid or interrupted too')
    .addOption(
      new Option(
        '--out <dir>',
        'with --compare: where comparison.md, chart.svg and chart.png go (default: ' +
          'results/comparisons/<UTC time>/)',
      ),
    )
    .argument('[runs...]', 'with --compare: run folders or profile names');
}

/**
 * A study (--profiles, --repeat) or its continuation (--resume): every profile checked (loads,
 * context resolves, dist/ fresh) and the driver built before the first request; then the runs,
 * interleaved, each after a clean-slate deploy; then the comparison of the study's runs per profile.
 */
async function study(report: Reporter, opts: BenchmarkOptions, session: Session): Promise<number> {
  if (opts.resume && opts.profiles)
    throw new RefusedError(
      '--resume continues a study as it was planned: give --resume=<study folder> alone, or ' +
        '--profiles for a new study. Nothing was sent.',
    );
  if (opts.repeat !== undefined && !opts.profiles)
    throw new RefusedError('--repeat goes with --profiles (a study). Nothing was sent.');
  const resultsDir = resultsDirOf(opts.resultsDir);
  const given = opts.resume ? resumed(opts.resume) : undefined;
  const record = given?.record ?? planned(opts);
  const load = {
    ...opts,
    duration: record.load.duration_s,
    warmup: record.load.warmup_s,
    concurrency: record.load.concurrency,
    blockSize: record.load.block_size_bytes,
    ops: record.load.operations,
    fresh: true,
  };
  for (const name of record.profiles) {
    const { ctx, release } = await session.openContext(name);
    await release();
    await readManifests(ctx.distDir, ctx.profile);
  }
  const prepared = await prepareRuns(load, report);
  // Created once everything that can refuse has passed: a refused study leaves no folder.
  const dir = given?.dir ?? newStudyDir(resultsDir, record);
  writeStudy(dir, record);
  const resumeCommand = `npm run benchmark -- --resume=${dir}`;
  report.info(
    `study ${record.id}: ${record.profiles.join(', ')} × ${record.repeat} ` +
      `round${record.repeat === 1 ? '' : 's'}, ${pendingEntries(record).length} of ` +
      `${record.entries.length} runs to go (stop with Ctrl-C, resume with \`${resumeCommand}\`)`,
  );
  try {
    await runStudy(dir, record, {
      report,
      signal: session.signal,
      openContext: session.openContext,
      resumeCommand,
      runOne: async (ctx) => benchmarkRun(ctx, load, prepared),
    });
  } catch (err) {
    if (err instanceof CommandError && err.exitCode === 130 && !err.details.some((d) => d.includes('--resume')))
      err.withDetails(`Resume the study with \`${resumeCommand}\`.`);
    throw err;
  }
  const comparison = await compareRuns({
    selectors: [dir],
    resultsDir,
    outDir: join(dir, 'comparison'),
    includeInvalid: false,
  }).catch((err: Error) => {
    report.problem('study', `no comparison: ${err.message}`);
    return undefined;
  });
  if (comparison) report.info(comparison.terminalTable);
  const counted = record.entries.filter((e) => e.status === 'valid').length;
  report.success(
    `study ${record.id}: ${counted} of ${record.entries.length} runs valid, recorded in ` +
      `${dir}${comparison ? `; comparison in ${comparison.markdownPath}` : ''}`,
  );
  return 0;
}

/** A new study's plan; its id is given when its folder is made. */
function planned(opts: BenchmarkOptions): StudyRecord {
  return {
    schema: STUDY_SCHEMA,
    id: '',
    createdAt: new Date().toISOString(),
    profiles: [...(opts.profiles ?? [])],
    repeat: opts.repeat ?? 1,
    load: {
      duration_s: opts.duration,
      warmup_s: opts.warmup,
      concurrency: opts.concurrency,
      block_size_bytes: opts.blockSize,
      operations: [...opts.ops],
    },
    entries: planStudy(opts.profiles ?? [], opts.repeat ?? 1),
  };
}

/** results/studies/<UTC time>/, named into the record. */
function newStudyDir(resultsDir: string, record: StudyRecord): string {
  const { dir, id } = createRunDir(resultsDir, 'studies');
  record.id = id;
  return dir;
}

function resumed(given: string): { dir: string; record: StudyRecord } {
  const dir = resolve(process.env.INIT_CWD ?? process.cwd(), given);
  const record = readStudy(dir);
  if (pendingEntries(record).length === 0)
    throw new RefusedError(
      `study ${record.id} has no run left to do (${record.entries.length} recorded). Nothing was sent.`,
      [`Compare its runs: npm run benchmark -- --compare ${dir}`],
    );
  return { dir, record };
}

/** `--compare`: a table and a chart of recorded runs; reads files only. */
async function compare(report: Reporter, opts: BenchmarkOptions, args: readonly unknown[]): Promise<void> {
  const resultsDir = resultsDirOf(opts.resultsDir);
  // Selectors go as given: a run folder is found relative to where npm was run, a run id or a
  // profile under results/ (runs.ts).
  const selectors = (args[0] as string[] | undefined) ?? [];
  const outDir = opts.out
    ? resolve(process.env.INIT_CWD ?? process.cwd(), opts.out)
    : join(resultsDir, 'comparisons', runFolderName(new Date()));
  const comparison = await compareRuns({ selectors, resultsDir, outDir, includeInvalid: Boolean(opts.includeInvalid) });
  report.info(comparison.terminalTable);
  report.success(`comparison written: ${comparison.markdownPath}, ${comparison.svgPath}, ${comparison.pngPath}`);
}

/** `benchmark`. */
export const benchmarkCommand: ClusterCommand<BenchmarkOptions> = {
  name: 'benchmark',
  description:
    "measure a deployed profile from this machine with the project's load driver and " +
    'record the run in results/<profile>/<UTC time>/ (--compare: compare recorded runs)',
  configure,
  changesCluster: true,
  // --fresh destroys and deploys the profile; a study names its profiles with --profiles.
  needsNamedProfile: (opts) => Boolean(opts.fresh) && !opts.profiles && !opts.resume && !opts.compare && !opts.baseline,
  whenInterrupted:
    "What was measured is kept in the run's folder, marked interrupted; the cluster was not changed by the measurement.",
  localMode: {
    when: (opts) => Boolean(opts.compare || opts.profiles || opts.resume || opts.baseline),
    run: (report, opts, args, session) => {
      if (opts.baseline) return benchmarkBaseline(report, opts as BaselineOptions, args, session.signal);
      return opts.compare ? compare(report, opts, args) : study(report, opts, session);
    },
  },
  run: (ctx, opts, args) => benchmark(ctx, opts, args),
};
