/**
 * The runs a comparison reads: selectors (run folders, run ids, profile names) resolved to run
 * folders under results/, each folder's run.json and summary.json checked against record.ts's
 * schemas, the runs grouped (one group per profile named, one per run folder named) and each
 * group's numbers pooled per operation. Reads files only; every problem is a RefusedError raised
 * before the comparison writes anything.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, isAbsolute, join, relative, resolve } from 'node:path';
import { median } from 'simple-statistics';
import type * as z from 'zod/mini';
import { FailedError, RefusedError } from '../errors.js';
import { DriverSummary, OPERATIONS, RunRecord, type Operation } from './record.js';
import { baselineLabel, splitByTarget } from './baseline-compare.js';
import { bootstrapMedianInterval, type Interval } from './stats.js';
import { readStudy, STUDY_FILE } from './study.js';

export const RUN_FILE = 'run.json';
export const SUMMARY_FILE = 'summary.json';

/** One run folder, its records checked. */
export interface LoadedRun {
  readonly dir: string;
  readonly record: RunRecord;
  /** The driver's summary; undefined for a failed run (the driver may have left none, and it never counts). */
  readonly summary: DriverSummary | undefined;
}

/** What one selector stands for: a profile's runs pooled, or one run. */
export interface RunGroup {
  readonly label: string;
  readonly kind: 'profile' | 'run';
  /** Every run selected, counted or not, oldest first. */
  readonly runs: readonly LoadedRun[];
}

/**
 * The runs selected, and the folders under a selected profile that hold no run.json (a run still
 * being written, or debris).
 */
export interface Selection {
  readonly groups: readonly RunGroup[];
  readonly skipped: readonly string[];
}

/** A statistic over a group's runs: the median, how sure it is, and the values it comes from. */
export interface Spread {
  readonly median: number;
  /** The bootstrap 95% confidence interval of the median (stats.ts); undefined for one run: one run has no interval. */
  readonly interval: Interval | undefined;
  /** Each counted run's value, oldest run first: what a verdict between groups compares. */
  readonly values: readonly number[];
}

/** One operation of one group, over the counted runs that measured it. */
export interface OperationStats {
  /** How many runs measured this operation. */
  readonly n: number;
  readonly p50: Spread;
  readonly p95: Spread;
  readonly p99: Spread;
  readonly opsPerSecond: Spread;
  /** Failed calls over all these runs. */
  readonly errors: number;
}

export interface GroupResult {
  readonly group: RunGroup;
  readonly counted: readonly LoadedRun[];
  readonly excluded: readonly LoadedRun[];
  /** Only the operations some counted run measured. */
  readonly operations: Partial<Record<Operation, OperationStats>>;
}

/** zod's issue path as a reader writes it: `cluster.pods[0].restarts`. */
export function fieldPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(the whole file)';
  return path.map((key, i) => (typeof key === 'number' ? `[${key}]` : `${i === 0 ? '' : '.'}${String(key)}`)).join('');
}

/** Reads and checks one record file: its text, as JSON, against `schema`; refuses naming the file and the field. */
function readRecord<T>(path: string, schema: z.ZodMiniType<T>, what: string): T {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new RefusedError(`${path} is missing: a run folder holds ${what} beside ${RUN_FILE}. Nothing was written.`);
    throw new FailedError(`cannot read ${path}: ${code ?? (err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new RefusedError(`${path} is not JSON (${(err as Error).message}), so not ${what}. Nothing was written.`);
  }
  const parsed = schema.safeParse(json);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues;
  const first = issues[0];
  throw new RefusedError(
    `${path} is not ${what}: field ${fieldPath(first?.path ?? [])}: ` +
      `${first?.message ?? 'invalid'}. Nothing was written.`,
    issues.slice(1, 6).map((i) => `also field ${fieldPath(i.path)}: ${i.message}`),
  );
}

/** A summary lists each operation once; a second phase of one would be counted twice. */
function checkPhasesUnique(path: string, summary: DriverSummary): void {
  const seen = new Set<Operation>();
  summary.phases.forEach((phase, i) => {
    if (seen.has(phase.operation))
      throw new RefusedError(
        `${path} is not a driver summary: field phases[${i}].operation: ${phase.operation} is ` +
          `measured twice. Nothing was written.`,
      );
    seen.add(phase.operation);
  });
}

/** Loads the run in `dir` (which holds run.json). */
export function loadRun(dir: string): LoadedRun {
  const record = readRecord(join(dir, RUN_FILE), RunRecord, 'a benchmark run record (run.json)');
  if (record.status === 'failed') return { dir, record, summary: undefined };
  const summaryPath = join(dir, SUMMARY_FILE);
  const summary = readRecord(summaryPath, DriverSummary, 'a driver summary (summary.json)');
  checkPhasesUnique(summaryPath, summary);
  return { dir, record, summary };
}

const isDirectory = (path: string) => statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
const isRunDir = (path: string) => existsSync(join(path, RUN_FILE));

/** The sub-folders of `dir`, in name order (run folders are UTC timestamps: oldest first). */
function subfolders(dir: string): string[] {
  if (!isDirectory(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort();
}

/** The profiles under `resultsDir` that hold at least one run, with their run folders. */
export function profilesWithRuns(resultsDir: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const name of subfolders(resultsDir)) {
    const runs = subfolders(join(resultsDir, name)).filter((run) => isRunDir(join(resultsDir, name, run)));
    if (runs.length > 0) found.set(name, runs);
  }
  return found;
}

/** What exists, for an error about a selector that matches nothing. */
function whatExists(resultsDir: string): string[] {
  const profiles = profilesWithRuns(resultsDir);
  if (profiles.size === 0)
    return [`There are no runs under ${resultsDir}: record one with \`npm run benchmark -- --profile=<name>\`.`];
  const lines = [
    `Profiles with runs under ${resultsDir}: ` +
      `${[...profiles].map(([name, runs]) => `${name} (${runs.length} run${runs.length === 1 ? '' : 's'})`).join(', ')}.`,
  ];
  const ids = [...profiles].flatMap(([name, runs]) => runs.map((run) => `${name}/${run}`));
  const shown = ids.slice(-10);
  const last = ids.length > shown.length ? ` (the last ${shown.length} of ${ids.length})` : '';
  lines.push(`Runs${last}: ${shown.join(', ')}; name a run by this id or by its folder's path.`);
  return lines;
}

/**
 * The selector as the user typed it: the command makes paths absolute from the directory npm was
 * started in (INIT_CWD), which turns a run id (`local-node/<timestamp>`) into a path that is not
 * there; relative to that directory again, it is the id.
 */
function asTyped(selector: string): string {
  if (!isAbsolute(selector)) return selector;
  const typed = relative(process.env.INIT_CWD ?? process.cwd(), selector);
  return typed.startsWith('..') || isAbsolute(typed) ? selector : typed;
}

/** A selector resolved: a run folder, a profile's folder of runs, or a study's folder. */
type Resolved =
  { kind: 'run'; dir: string } | { kind: 'profile'; name: string; dir: string } | { kind: 'study'; dir: string };

/**
 * A path (absolute, or with a slash, or starting with a dot) names a run folder, or a profile's folder
 * of runs; a bare word names a profile under results/. A run id (<profile>/<timestamp>) is looked
 * up under results/ when it is not a path from here.
 */
function resolveSelector(selector: string, resultsDir: string): Resolved {
  const looksLikePath = isAbsolute(selector) || selector.includes('/') || selector.startsWith('.');
  const candidates = looksLikePath
    ? [resolve(selector), join(resultsDir, asTyped(selector))]
    : [join(resultsDir, selector)];
  for (const dir of candidates) {
    if (isRunDir(dir)) return { kind: 'run', dir };
    if (existsSync(join(dir, STUDY_FILE))) return { kind: 'study', dir };
    if (subfolders(dir).some((run) => isRunDir(join(dir, run)))) return { kind: 'profile', name: basename(dir), dir };
  }
  if (!looksLikePath && isDirectory(join(resultsDir, selector))) {
    throw new RefusedError(
      `profile ${selector} has no runs under ${join(resultsDir, selector)}. Nothing was written.`,
      whatExists(resultsDir),
    );
  }
  const what = looksLikePath
    ? `${selector} is neither a run folder (no ${RUN_FILE}) nor a folder of runs`
    : `no profile or run named ${selector} under ${resultsDir}`;
  throw new RefusedError(`${what}. Nothing was written.`, whatExists(resultsDir));
}

const byStart = (a: LoadedRun, b: LoadedRun) =>
  Date.parse(a.record.startedAt) - Date.parse(b.record.startedAt) || a.dir.localeCompare(b.dir);

/**
 * A profile's runs (its Kubernetes runs and its process baselines apart), and the folders in it
 * that hold no run.json.
 */
function loadProfile(name: string, dir: string): { groups: RunGroup[]; skipped: string[] } {
  const folders = subfolders(dir);
  const runs = folders
    .filter((f) => isRunDir(join(dir, f)))
    .map((f) => loadRun(join(dir, f)))
    .sort(byStart);
  const skipped = folders.filter((f) => !isRunDir(join(dir, f))).map((f) => join(dir, f));
  return { groups: splitByTarget({ label: name, kind: 'profile', runs }), skipped };
}

/**
 * The groups `selectors` stand for; with none, every profile under `resultsDir` that holds a run.
 * Refuses a selector that matches nothing, and a results/ without runs.
 */
export function selectRuns(selectors: readonly string[], resultsDir: string): Selection {
  const resolved =
    selectors.length > 0
      ? selectors.map((s) => resolveSelector(s, resultsDir))
      : [...profilesWithRuns(resultsDir).keys()].map((name): Resolved => ({
          kind: 'profile',
          name,
          dir: join(resultsDir, name),
        }));
  if (resolved.length === 0)
    throw new RefusedError(
      `there are no benchmark runs under ${resultsDir} to compare. Nothing was written.`,
      whatExists(resultsDir),
    );
  const groups: RunGroup[] = [];
  const skipped: string[] = [];
  const seen = new Set<string>();
  for (const r of resolved) {
    // The same folder named twice is one column, not two identical ones.
    if (seen.has(r.dir)) continue;
    seen.add(r.dir);
    if (r.kind === 'run') {
      const run = loadRun(r.dir);
      groups.push({
        label: run.record.target ? baselineLabel(run.record.id, run.record.target) : run.record.id,
        kind: 'run',
        runs: [run],
      });
    } else if (r.kind === 'study') {
      groups.push(...studyGroups(r.dir, resultsDir));
    } else {
      const loaded = loadProfile(r.name, r.dir);
      groups.push(...loaded.groups);
      skipped.push(...loaded.skipped);
    }
  }
  return { groups: uniqueLabels(groups), skipped };
}

/** A study's runs, one group per profile in the study's order (the first is the reference of the verdicts). */
function studyGroups(dir: string, resultsDir: string): RunGroup[] {
  const study = readStudy(dir);
  return study.profiles.map((profile) => ({
    label: profile,
    kind: 'profile' as const,
    runs: study.entries
      .filter((e) => e.profile === profile && e.run !== undefined)
      .map((e) => loadRun(join(resultsDir, e.run!)))
      .sort(byStart),
  }));
}

/** Two groups of one label (copies of a run, two results/ folders of one profile) get their folders as labels. */
function uniqueLabels(groups: readonly RunGroup[]): RunGroup[] {
  const count = new Map<string, number>();
  for (const g of groups) count.set(g.label, (count.get(g.label) ?? 0) + 1);
  return groups.map((g) =>
    (count.get(g.label) ?? 0) > 1
      ? { ...g, label: g.kind === 'run' ? (g.runs[0]?.dir ?? g.label) : `${g.label} (${dirOf(g)})` }
      : g,
  );
}

const dirOf = (g: RunGroup) => (g.runs[0] ? resolve(g.runs[0].dir, '..') : g.label);

/** Whether a run's numbers count: valid ones always, invalid and interrupted ones when asked, failed ones never. */
export function counts(run: LoadedRun, includeInvalid: boolean): boolean {
  switch (run.record.status) {
    case 'valid':
      return true;
    case 'invalid':
    case 'interrupted':
      return includeInvalid;
    case 'failed':
      return false;
  }
}

function spread(values: readonly number[]): Spread {
  return { median: median([...values]), interval: bootstrapMedianInterval(values), values };
}

/** One operation pooled over `runs`; undefined when none of them measured it. */
function operationStats(runs: readonly LoadedRun[], op: Operation): OperationStats | undefined {
  const phases = runs.flatMap((r) => r.summary?.phases.filter((p) => p.operation === op) ?? []);
  if (phases.length === 0) return undefined;
  return {
    n: phases.length,
    p50: spread(phases.map((p) => p.latency_ms.p50)),
    p95: spread(phases.map((p) => p.latency_ms.p95)),
    p99: spread(phases.map((p) => p.latency_ms.p99)),
    opsPerSecond: spread(phases.map((p) => p.ops_per_s)),
    errors: phases.reduce((sum, p) => sum + p.error_count, 0),
  };
}

/** A group's numbers: per operation, the median over its counted runs, with its interval, values and count. */
export function summarizeGroup(group: RunGroup, includeInvalid: boolean): GroupResult {
  const counted = group.runs.filter((r) => counts(r, includeInvalid));
  const excluded = group.runs.filter((r) => !counts(r, includeInvalid));
  const operations: Partial<Record<Operation, OperationStats>> = {};
  for (const op of OPERATIONS) {
    const stats = operationStats(counted, op);
    if (stats) operations[op] = stats;
  }
  return { group, counted, excluded, operations };
}

/** Why a run is left out, in a line: its id, status and the reasons run.json gives. */
export function exclusionLine(run: LoadedRun): string {
  const { id, status, reasons } = run.record;
  return `${id}: ${status}${reasons.length > 0 ? ` (${reasons.join('; ')})` : ''}`;
}

/** Refuses a comparison with no run to count, saying which runs were left out and why. */
export function requireCountable(results: readonly GroupResult[]): void {
  if (results.some((r) => r.counted.length > 0)) {
    if (results.some((r) => Object.keys(r.operations).length > 0)) return;
    throw new RefusedError(
      'the runs counted measured no operation (their summary.json lists no phase): there is ' +
        'nothing to compare. Nothing was written.',
    );
  }
  const excluded = results.flatMap((r) => r.excluded);
  throw new RefusedError(
    `none of the ${excluded.length} selected run${excluded.length === 1 ? '' : 's'} can be ` +
      `counted. Nothing was written.`,
    [
      ...excluded.map(exclusionLine),
      '--include-invalid counts runs marked invalid or interrupted; failed runs never count.',
    ],
  );
}
