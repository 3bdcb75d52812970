/**
 * The process baseline in a comparison: a profile's runs split into its Kubernetes runs and its
 * baseline runs (two groups, `local-node` and `local-node (processes)`), and for each profile that
 * has both, Kubernetes as a ratio of the baseline per operation on p50, p99 and throughput: the
 * ratio of the groups' medians (runs.ts), with a percentile-bootstrap 95% interval when both groups
 * have several runs (each group resampled on its own, the same seeded generator as the medians').
 */
import { median, quantileSorted, sampleWithReplacement } from 'simple-statistics';
import type { ProcessTarget } from './baseline-record.js';
import { OPERATIONS, type Operation } from './record.js';
import type { GroupResult, LoadedRun, RunGroup, Spread } from './runs.js';
import {
  BOOTSTRAP_RESAMPLES,
  BOOTSTRAP_SEED,
  CONFIDENCE,
  seededRandom,
  type BootstrapOptions,
  type Interval,
} from './stats.js';
import { formatNumber, markdownTable, MISSING } from './table.js';
import { VERDICT_METRICS } from './verdicts.js';

/** A baseline group's label: the profile, then what ran it. */
export const baselineLabel = (profile: string, target: ProcessTarget) => `${profile} (${target.kind})`;

/**
 * A profile's group split by what its runs measured: the Kubernetes runs, then each kind of
 * baseline; empty groups dropped.
 */
export function splitByTarget(group: RunGroup): RunGroup[] {
  const byLabel = new Map<string, LoadedRun[]>([[group.label, []]]);
  for (const run of group.runs) {
    const label = run.record.target ? baselineLabel(group.label, run.record.target) : group.label;
    byLabel.set(label, [...(byLabel.get(label) ?? []), run]);
  }
  return [...byLabel].filter(([, runs]) => runs.length > 0).map(([label, runs]) => ({ ...group, label, runs }));
}

/** A ratio of two groups' medians, and its bootstrap interval when both have two runs or more. */
export interface Ratio {
  readonly value: number;
  readonly interval: Interval | undefined;
}

/**
 * median(numerator) / median(denominator), and the percentile-bootstrap interval of that ratio:
 * each resample draws each group's runs with replacement, on its own, and takes the ratio of the
 * two medians. Undefined when the denominator's median is 0 (no ratio to speak of).
 */
export function ratioOfMedians(
  numerator: Pick<Spread, 'median' | 'values'>,
  denominator: Pick<Spread, 'median' | 'values'>,
  opts: BootstrapOptions = {},
): Ratio | undefined {
  if (denominator.median === 0) return undefined;
  const value = numerator.median / denominator.median;
  if (numerator.values.length < 2 || denominator.values.length < 2) return { value, interval: undefined };
  const random = seededRandom(opts.seed ?? BOOTSTRAP_SEED);
  const [num, den] = [[...numerator.values].sort((a, b) => a - b), [...denominator.values].sort((a, b) => a - b)];
  const ratios: number[] = [];
  for (let i = 0; i < (opts.resamples ?? BOOTSTRAP_RESAMPLES); i++) {
    const r =
      median(sampleWithReplacement(num, num.length, random)) / median(sampleWithReplacement(den, den.length, random));
    if (Number.isFinite(r)) ratios.push(r);
  }
  ratios.sort((a, b) => a - b);
  const tail = (1 - (opts.confidence ?? CONFIDENCE)) / 2;
  return { value, interval: { low: quantileSorted(ratios, tail), high: quantileSorted(ratios, 1 - tail) } };
}

/** One operation's ratios of a Kubernetes group to its profile's baseline group. */
export interface BaselineRatio {
  readonly operation: Operation;
  readonly metric: string;
  readonly kubernetes: Spread;
  readonly baseline: Spread;
  readonly ratio: Ratio | undefined;
}

/** Each profile that has both a Kubernetes group and a baseline group, with the ratios per operation and metric. */
export interface BaselinePair {
  readonly kubernetes: GroupResult;
  readonly baseline: GroupResult;
  readonly ratios: readonly BaselineRatio[];
}

/**
 * A baseline group's Kubernetes counterpart: the profile's group (`local-node` for `local-node
 * (processes)`), else, for run folders compared one by one, the first Kubernetes group of the same profile.
 */
function counterpart(baseline: GroupResult, groups: readonly GroupResult[]): GroupResult | undefined {
  const target = baseline.group.runs[0]?.record.target;
  if (!target) return undefined;
  const kubernetes = groups.filter((g) => g.group.runs.length > 0 && g.group.runs.every((r) => !r.record.target));
  const profileOf = (g: GroupResult) => g.group.runs[0]?.record.profile.name;
  return (
    kubernetes.find((g) => baselineLabel(g.group.label, target) === baseline.group.label) ??
    (baseline.group.kind === 'run' ? kubernetes.find((g) => profileOf(g) === profileOf(baseline)) : undefined)
  );
}

export function baselinePairs(groups: readonly GroupResult[]): BaselinePair[] {
  return groups.flatMap((baseline) => {
    const kubernetes = counterpart(baseline, groups);
    if (!kubernetes) return [];
    const ratios = OPERATIONS.flatMap((operation) =>
      VERDICT_METRICS.flatMap((metric): BaselineRatio[] => {
        const [k, b] = [kubernetes.operations[operation], baseline.operations[operation]];
        if (!k || !b) return [];
        return [
          {
            operation,
            metric: metric.label,
            kubernetes: metric.pick(k),
            baseline: metric.pick(b),
            ratio: ratioOfMedians(metric.pick(k), metric.pick(b)),
          },
        ];
      }),
    );
    return [{ kubernetes, baseline, ratios }];
  });
}

const formatRatio = (r: Ratio | undefined) => {
  if (!r) return MISSING;
  const digits = (v: number) => v.toFixed(2);
  return `${digits(r.value)}×${r.interval ? ` [${digits(r.interval.low)}–${digits(r.interval.high)}]` : ''}`;
};

const RATIO_COLUMNS = ['operation', 'metric', 'Kubernetes', 'processes', 'Kubernetes / processes'];
const RATIO_RIGHT = [false, false, true, true, true];

function ratioRows(pair: BaselinePair): string[][] {
  return pair.ratios.map((r) => [
    r.operation,
    r.metric,
    formatNumber(r.kubernetes.median),
    formatNumber(r.baseline.median),
    formatRatio(r.ratio),
  ]);
}

/** What a ratio says, once. */
const RATIO_NOTE =
  'Kubernetes as a multiple of the same programs run directly on the machine (the process ' +
  "baseline): the ratio of the two groups' medians, " +
  'with a bootstrap 95% interval when both have several runs. For p50 and p99 above 1× ' +
  'means Kubernetes is slower; for ops/s below 1× means it is. ' +
  "It measures the pod network (veth, bridge), the node ports' NAT (kube-proxy) and the " +
  'cgroup limits; not the machine, the disk or the binary, which are the same.';

/** comparison.md's section: a table per profile that has both groups; nothing when none has. */
export function baselineMarkdown(pairs: readonly BaselinePair[]): string[] {
  if (pairs.length === 0) return [];
  return [
    '## Kubernetes against the process baseline',
    '',
    RATIO_NOTE,
    '',
    ...pairs.flatMap((p) => [
      `### ${p.kubernetes.group.label} / ${p.baseline.group.label}`,
      '',
      markdownTable(RATIO_COLUMNS, ratioRows(p), RATIO_RIGHT),
      '',
    ]),
  ];
}

/** The terminal's lines: a line per operation and metric. */
export function baselineTerminal(pairs: readonly BaselinePair[]): string[] {
  return pairs.flatMap((p) => [
    '',
    `${p.kubernetes.group.label} on Kubernetes as a multiple of ${p.baseline.group.label} ` +
      `(latency above 1× or ops/s below 1×: Kubernetes slower):`,
    ...ratioRows(p).map(
      ([op, metric, k, b, ratio]) =>
        `  ${op.padEnd(8)} ${metric.padEnd(6)} ${k.padStart(8)} vs ${b.padStart(8)}  ${ratio}`,
    ),
  ]);
}

/**
 * Where a baseline group ran, for comparison.md's "What was compared": each machine once, and the
 * binaries by digest.
 */
export function processesLines(runs: readonly LoadedRun[]): string[] {
  const targets = runs.flatMap((r) => (r.record.target ? [r.record.target] : []));
  const machines = new Set(
    targets.map(
      ({ machine: m, dataDir }) =>
        `- Processes on ${m.hostname} (${m.architecture}, ${m.cpus} CPU ${m.cpuModel}, ` +
        `${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB, ${m.os}, kernel ${m.kernel}); data on ` +
        `${dataDir.fsType}`,
    ),
  );
  const binaries = new Set(
    targets.flatMap((t) =>
      t.binaries.map(
        (b) => `- \`${b.imageDigest}\`: ${b.program} ${b.pathInImage} of ${b.image}, sha256 \`${b.sha256}\``,
      ),
    ),
  );
  return [...machines, '', 'Binaries (taken out of the images by digest):', '', ...binaries];
}
