/**
 * `npm run benchmark -- --compare`: recorded runs side by side, as a table (printed, and in
 * comparison.md with what was compared) and a chart (chart.svg, chart.png). Everything is read,
 * checked and drawn in memory first: a refusal (a broken record, a selector matching nothing,
 * nothing countable, an output folder in use) leaves nothing written.
 */
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FailedError, RefusedError } from '../errors.js';
import {
  baselineMarkdown,
  baselinePairs,
  baselineTerminal,
  processesLines,
  type BaselinePair,
} from './baseline-compare.js';
import { chartOption, renderSvg, svgToPng, type ChartText } from './chart.js';
import type { RunStatus } from './record.js';
import {
  exclusionLine,
  requireCountable,
  selectRuns,
  summarizeGroup,
  type GroupResult,
  type LoadedRun,
} from './runs.js';
import { serverMarkdown } from './server-table.js';
import { ALPHA, BOOTSTRAP_RESAMPLES } from './stats.js';
import {
  markdownTable,
  resultsMarkdown,
  runsNeededText,
  terminalTable,
  terminalVerdicts,
  verdictsMarkdown,
} from './table.js';
import { verdictsAgainstReference, type GroupVerdict } from './verdicts.js';

export interface CompareOptions {
  /**
   * Run folders (a path to a folder holding run.json), run ids or profile names; empty: every
   * profile under resultsDir.
   */
  readonly selectors: readonly string[];
  /** results/ under the project root. */
  readonly resultsDir: string;
  /** Where comparison.md, chart.svg and chart.png go: created; refused when it exists and is not empty. */
  readonly outDir: string;
  /** Invalid and interrupted runs are listed but left out of the numbers unless true; failed runs never count. */
  readonly includeInvalid: boolean;
}

/** One run as the comparison used it. */
export interface ComparedRun {
  readonly id: string;
  readonly dir: string;
  readonly group: string;
  readonly status: RunStatus;
  readonly reasons: readonly string[];
  readonly counted: boolean;
}

export interface Comparison {
  readonly markdownPath: string;
  readonly svgPath: string;
  readonly pngPath: string;
  /** The PNG's size in pixels. */
  readonly png: { readonly width: number; readonly height: number };
  readonly terminalTable: string;
  readonly runs: readonly ComparedRun[];
  readonly groups: readonly GroupResult[];
  /** Each group after the first against the first, per operation, on p50, p99 and ops/s. */
  readonly verdicts: readonly GroupVerdict[];
  /** Each profile's Kubernetes runs as a ratio of its process baseline's, where both were compared. */
  readonly baselines: readonly BaselinePair[];
}

export const MARKDOWN_FILE = 'comparison.md';
export const SVG_FILE = 'chart.svg';
export const PNG_FILE = 'chart.png';

/**
 * Compares the runs `opts.selectors` name: loads and checks them, pools each group, draws the
 * chart, then writes comparison.md, chart.svg and chart.png into `opts.outDir`. RefusedError (exit
 * 2, nothing written) for input it cannot use; FailedError (exit 1) when the disk refuses a file.
 */
export async function compareRuns(opts: CompareOptions): Promise<Comparison> {
  refuseUsedOutDir(opts.outDir);
  const selection = selectRuns(opts.selectors, opts.resultsDir);
  const groups = selection.groups.map((g) => summarizeGroup(g, opts.includeInvalid));
  requireCountable(groups);
  const verdicts = verdictsAgainstReference(groups);
  const baselines = baselinePairs(groups);
  const now = new Date();
  const svg = await renderSvg(chartOption(groups, chartText(groups, now)));
  const png = await svgToPng(svg);
  const paths = {
    markdownPath: join(opts.outDir, MARKDOWN_FILE),
    svgPath: join(opts.outDir, SVG_FILE),
    pngPath: join(opts.outDir, PNG_FILE),
  };
  writeOutputs(opts.outDir, [
    [paths.markdownPath, markdown(groups, verdicts, baselines, selection.skipped, opts, now)],
    [paths.svgPath, svg],
    [paths.pngPath, png.data],
  ]);
  return {
    ...paths,
    png: { width: png.width, height: png.height },
    terminalTable: [terminalText(groups, verdicts), ...baselineTerminal(baselines)].join('\n'),
    runs: groups.flatMap(comparedRuns),
    groups,
    verdicts,
    baselines,
  };
}

/** An output folder that holds anything is someone's: never written into (an earlier comparison stays as it was). */
function refuseUsedOutDir(outDir: string): void {
  const stat = statSync(outDir, { throwIfNoEntry: false });
  if (!stat) return;
  if (!stat.isDirectory())
    throw new RefusedError(
      `${outDir} exists and is not a folder: the comparison goes into a new or empty folder. ` + `Nothing was written.`,
    );
  if (readdirSync(outDir).length > 0)
    throw new RefusedError(
      `${outDir} is not empty: the comparison goes into a new or empty folder. Nothing was written.`,
      ['Give another with --out=<dir>.'],
    );
}

/** Writes every output, or none: a file that cannot be written takes the ones before it away again. */
function writeOutputs(outDir: string, files: readonly (readonly [string, string | Buffer])[]): void {
  const written: string[] = [];
  try {
    mkdirSync(outDir, { recursive: true });
    for (const [path, data] of files) {
      writeFileSync(path, data, { flag: 'wx' });
      written.push(path);
    }
  } catch (err) {
    for (const path of written) rmSync(path, { force: true });
    const code = (err as NodeJS.ErrnoException).code;
    throw new FailedError(`cannot write the comparison into ${outDir}: ${code ?? (err as Error).message}`, [
      'Is the disk full, or the folder read-only? Give another with --out=<dir>.',
    ]);
  }
}

function comparedRuns(result: GroupResult): ComparedRun[] {
  return result.group.runs.map((run) => ({
    id: run.record.id,
    dir: run.dir,
    group: result.group.label,
    status: run.record.status,
    reasons: run.record.reasons,
    counted: result.counted.includes(run),
  }));
}

const utcSeconds = (when: Date) => when.toISOString().replace(/\.\d{3}Z$/, 'Z');
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

function chartText(groups: readonly GroupResult[], now: Date): ChartText {
  const counted = groups.reduce((n, g) => n + g.counted.length, 0);
  const pooled = groups.some((g) => g.counted.length > 1);
  const options = sharedDriverOptions(groups);
  const excluded = groups.reduce((n, g) => n + g.excluded.length, 0);
  const leftOut = excluded > 0 ? ` (${excluded} left out: see comparison.md)` : '';
  return {
    title: `Sand Store benchmark: ${groupsInTitle(groups)}`,
    subtitle: [
      `${plural(counted, 'run')} counted${leftOut}${pooled ? ", bars are medians over a group's runs" : ''}`,
      ...(options ? [options] : []),
      `latency of successful calls; compared ${utcSeconds(now)}`,
    ].join(' · '),
  };
}

/** The groups by name when they fit on the title's line; else how many (the legend names them). */
function groupsInTitle(groups: readonly GroupResult[]): string {
  const names = groups.map((g) => g.group.label).join(' vs ');
  if (names.length <= 70) return names;
  const kinds = new Set(groups.map((g) => g.group.kind));
  return (
    `${groups.length} ` +
    `${kinds.size === 1 && kinds.has('run') ? 'runs' : kinds.size === 1 ? 'profiles' : 'groups'} compared`
  );
}

/** The driver's options when every counted run used the same ones, in a few words; else undefined. */
function sharedDriverOptions(groups: readonly GroupResult[]): string | undefined {
  const described = new Set(groups.flatMap((g) => g.counted.map((r) => describeOptions(r))));
  return described.size === 1 ? [...described][0] : undefined;
}

function describeOptions(run: LoadedRun): string {
  const o = run.record.driver.options;
  return (
    `concurrency ${o.concurrency}, ${o.block_size_bytes} B blocks, ${o.duration_s} s per ` +
    `operation after ${o.warmup_s} s warm-up`
  );
}

/**
 * The terminal's text: the results (medians, [95% intervals]), a line per run left out and per run
 * counted although not valid (the markers in the group column), then the verdicts against the
 * first group.
 */
function terminalText(groups: readonly GroupResult[], verdicts: readonly GroupVerdict[]): string {
  const notes = footnotes(groups).flatMap((n) => [n.heading, ...n.runs.map((r) => `  ${r}`)]);
  const reference = groups[0]?.group.label ?? '';
  const verdictLines =
    verdicts.length > 0
      ? [
          '',
          `Against ${reference} (rank-sum test over the runs, p < ${ALPHA} for a verdict; see ` + `comparison.md):`,
          terminalVerdicts(verdicts),
        ]
      : [];
  return [terminalTable(groups), ...(notes.length > 0 ? ['', ...notes] : []), ...verdictLines].join('\n');
}

/** What a marker in the group column means, and the runs it marks. */
interface Footnote {
  readonly heading: string;
  readonly runs: readonly string[];
}

function footnotes(groups: readonly GroupResult[]): Footnote[] {
  const excluded = groups.flatMap((g) => g.excluded);
  const counted = groups.flatMap((g) => g.counted.filter((r) => r.record.status !== 'valid'));
  return [
    ...(excluded.length > 0
      ? [
          {
            heading: '* not counted (failed runs never count; --include-invalid counts invalid and interrupted ones):',
            runs: excluded.map(exclusionLine),
          },
        ]
      : []),
    ...(counted.length > 0
      ? [{ heading: '† counted although not valid (--include-invalid):', runs: counted.map(exclusionLine) }]
      : []),
  ];
}

/**
 * comparison.md: a heading, what was compared, the chart, the results, the verdicts, the runs left
 * out, and what each group ran.
 */
function markdown(
  groups: readonly GroupResult[],
  verdicts: readonly GroupVerdict[],
  baselines: readonly BaselinePair[],
  skipped: readonly string[],
  opts: CompareOptions,
  now: Date,
): string {
  const counted = groups.reduce((n, g) => n + g.counted.length, 0);
  const total = groups.reduce((n, g) => n + g.group.runs.length, 0);
  return [
    '# Sand Store benchmark comparison',
    '',
    `Compared ${utcSeconds(now)}: ${plural(groups.length, 'group')}, ` +
      `${plural(total, 'run')} selected, ${counted} counted` +
      `${opts.includeInvalid ? ' (invalid and interrupted runs included)' : ''}. ` +
      'Latency is of successful calls, in milliseconds; ops/s counts successful calls; errors ' +
      "are summed over a group's runs.",
    '',
    `![Latency percentiles and throughput per operation](${PNG_FILE})`,
    '',
    '## Results',
    '',
    RESULTS_NOTE,
    '',
    resultsMarkdown(groups),
    '',
    ...footnotes(groups).flatMap((n) => [n.heading.replace(/^\*/, '\\*'), '', ...n.runs.map((r) => `- ${r}`), '']),
    ...verdictsSection(groups, verdicts),
    ...serverMarkdown(groups),
    ...baselineMarkdown(baselines),
    '## What was compared',
    '',
    ...groups.flatMap(groupSection),
    ...(skipped.length > 0
      ? [
          '## Folders skipped',
          '',
          'These hold no run.json (a run still being written, or not a run):',
          '',
          ...skipped.map((s) => `- \`${s}\``),
          '',
        ]
      : []),
  ].join('\n');
}

/** What the results table's brackets are, and how far to trust them. */
const RESULTS_NOTE =
  "A group's numbers are the median over its runs and, in brackets, the 95% confidence " +
  'interval of that median: a percentile bootstrap ' +
  `(${BOOTSTRAP_RESAMPLES.toLocaleString('en-US')} resamples, seeded, so the same runs ` +
  `always give the same interval). One run: no interval. ` +
  "With 2 to 5 runs the interval is the runs' range, which holds the true median less " +
  'often than 95% (with 2 runs half the time, with 5 runs 94%); ' +
  'from 6 runs on it narrows inside the range (see Statistics in docs/benchmarking.md).';

/** The verdicts against the first group, with what they mean; nothing with a single group. */
function verdictsSection(groups: readonly GroupResult[], verdicts: readonly GroupVerdict[]): string[] {
  const reference = groups[0]?.group.label;
  if (reference === undefined || groups.length < 2) return [];
  const heading = [`## Verdicts against ${reference}`, ''];
  if (verdicts.length === 0)
    return [...heading, `No operation was measured both by ${reference} and by another group: nothing to compare.`, ''];
  return [
    ...heading,
    `Each group against the first, ${reference}, per operation on p50, p99 and ops/s, over ` +
      `their runs: the two-sided Wilcoxon rank-sum ` +
      `(Mann–Whitney U) test; exact without ties, else the normal approximation with tie and continuity corrections. ` +
      `**faster** or **slower** when p < ${ALPHA}; otherwise **no difference the data can ` +
      `show**, which is not "the same": ` +
      'a difference smaller than the detectable one may be there unseen. ' +
      `*change* is the group minus ${reference} (Hodges–Lehmann: the median of the ` +
      `differences between each of its runs and each of ${reference}'s), ` +
      'in its unit and as a share of the reference median, with its 95% confidence interval ' +
      '(the rank-sum test inverted). ' +
      '*detectable* is the smallest difference these runs could have shown, with their ' +
      'spread, in the direction they moved: ' +
      "the distance from the change to its interval's end on zero's side. A verdict comes " +
      'when the change exceeds it. ' +
      `A verdict needs ${runsNeededText()}: with fewer, no outcome of the test reaches p < ` +
      `${ALPHA} (the p column then gives the lowest it could reach).`,
    '',
    verdictsMarkdown(verdicts),
    '',
  ];
}

const short = (digest: string | undefined) =>
  digest ? digest.replace(/^(sha256:)?([0-9a-f]{12})[0-9a-f]*$/, '$1$2') : '–';

/** One group: its runs (one row each), the cluster they ran on, then the images its pods ran. */
/** Where a group's runs come from: a profile's folder, or one run folder. */
function runsSource(group: GroupResult['group']): string {
  return group.kind === 'profile'
    ? `Profile ${group.label}: every run under its folder`
    : `Run folder \`${group.runs[0]?.dir ?? ''}\``;
}

function groupSection(result: GroupResult): string[] {
  const { group } = result;
  const rows = group.runs.map((run) => {
    const r = run.record;
    const o = r.driver.options;
    return [
      `\`${r.id}\``,
      r.status,
      result.counted.includes(run) ? 'yes' : 'no',
      r.startedAt,
      String(o.concurrency),
      String(o.block_size_bytes),
      `${o.duration_s} (+${o.warmup_s})`,
      o.operations.join(', '),
      short(r.sandstore.revision ?? r.sandstore.contentDigest),
      short(r.driver.binaryDigest),
      `${short(r.project.revision)}${r.project.dirty ? ' (dirty)' : ''}`,
    ];
  });
  const header = [
    'run',
    'status',
    'counted',
    'started',
    'concurrency',
    'block B',
    'seconds (warm-up)',
    'operations',
    'Sand Store',
    'driver binary',
    'project',
  ];
  return [
    `### ${group.label}`,
    '',
    `${runsSource(group)}; ${plural(group.runs.length, 'run')}, ${result.counted.length} counted. ` +
      "Sand Store is the source's git revision, or the digest of its sources when it had changes; " +
      'digests are cut to 12 digits.',
    '',
    markdownTable(
      header,
      rows,
      header.map((_, i) => i === 4 || i === 5),
    ),
    '',
    ...(group.runs.some((r) => r.record.target)
      ? processesLines(group.runs)
      : [...clusterLines(group.runs), ...imagesList(group.runs)]),
    '',
  ];
}

/** Where the group's runs ran: each distinct cluster, and its nodes, once. */
function clusterLines(runs: readonly LoadedRun[]): string[] {
  const clusters = new Set(
    runs.map((run) => {
      const c = run.record.cluster;
      const nodes = c.nodes.map(
        (n) =>
          `${n.name} (${n.architecture}, ${n.cpu} CPU, ${n.memory}, ${n.osImage}, kernel ` +
          `${n.kernelVersion}, ${n.containerRuntime}, kubelet ${n.kubeletVersion})`,
      );
      return (
        `- Cluster: context \`${c.context}\` (${c.server}), namespace \`${c.namespace}\`; ` +
        `nodes: ${nodes.length > 0 ? nodes.join('; ') : 'none recorded'}`
      );
    }),
  );
  return [...clusters, ''];
}

/**
 * Each image (by digest) the group's pods ran, with the containers that ran it; the same for every
 * run is said once.
 */
function imagesList(runs: readonly LoadedRun[]): string[] {
  const images = new Map<string, { containers: Set<string>; runs: Set<string> }>();
  for (const run of runs) {
    for (const pod of run.record.cluster.pods) {
      for (const c of pod.containers) {
        const key = c.imageID || c.image;
        const entry = images.get(key) ?? { containers: new Set<string>(), runs: new Set<string>() };
        entry.containers.add(`${c.name} (${c.image})`);
        entry.runs.add(run.record.id);
        images.set(key, entry);
      }
    }
  }
  if (images.size === 0) return ['Images: none recorded.'];
  return [
    'Images (digest as the API server reports it):',
    '',
    ...[...images].map(([id, e]) => {
      const where = e.runs.size === runs.length ? '' : ` — in ${[...e.runs].map((r) => `\`${r}\``).join(', ')}`;
      return `- \`${id}\`: ${[...e.containers].join(', ')}${where}`;
    }),
  ];
}
