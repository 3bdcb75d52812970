/**
 * Sand Store's own latency histograms (Prometheus, port 2112, internal/metrics/prometheus), read
 * before and after a run: the difference is what the servers spent on the run's calls, per
 * component (Raft replication, the chunk service, the metadata control plane, the log store, gRPC)
 * and operation. Beside the client's numbers it says where the time goes.
 */

/** One histogram series: a family and an operation, summed over the pods it was read from. */
export interface HistogramSeries {
  /** The family without `sandstore_` and `_latency_seconds`: raft_replicator, chunk_service, ... */
  readonly component: string;
  readonly operation: string;
  readonly count: number;
  readonly sumSeconds: number;
  /** Cumulative counts by upper bound (seconds, ascending; the last is +Inf). */
  readonly buckets: readonly (readonly [le: number, count: number])[];
}

const FAMILY = /^sandstore_(\w+)_latency_seconds_(bucket|sum|count)$/;
// name{labels} value [timestamp]; label values are quoted with \\, \" and \n escaped (the text
// format's rules). parse-prometheus-text-format 1.1.1 was tried first: it keeps only the last
// labelled series of a histogram family, so Sand Store's per-operation histograms came out as one.
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?/g;

const unescape = (value: string) => value.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));

function labelsOf(text: string | undefined): Map<string, string> {
  return new Map([...(text ?? '').matchAll(LABEL)].map((m) => [m[1], unescape(m[2])]));
}

const sampleValue = (text: string) => (text === '+Inf' ? Infinity : text === '-Inf' ? -Infinity : Number(text));

interface MutableSeries {
  component: string;
  operation: string;
  count: number;
  sumSeconds: number;
  buckets: Map<number, number>;
}

/** Sand Store's latency histograms in one scrape (the text exposition format), one entry per family and operation. */
export function parseSandstoreHistograms(text: string): HistogramSeries[] {
  return combine(
    text.split('\n').flatMap((line) => {
      const sample = SAMPLE.exec(line.trim());
      const family = sample && FAMILY.exec(sample[1]);
      if (!sample || !family) return [];
      const labels = labelsOf(sample[2]);
      const value = sampleValue(sample[3]);
      const part = family[2];
      const le = part === 'bucket' ? sampleValue(labels.get('le') ?? 'NaN') : NaN;
      return [
        {
          component: family[1],
          operation: labels.get('operation') ?? '',
          count: part === 'count' ? value : 0,
          sumSeconds: part === 'sum' ? value : 0,
          buckets: part === 'bucket' ? [[le, value] as const] : [],
        },
      ];
    }),
  );
}

/** The sum of several scrapes' series (the pods of one deployment), by component and operation. */
export function sumSeries(scrapes: readonly (readonly HistogramSeries[])[]): HistogramSeries[] {
  return combine(scrapes.flat());
}

/**
 * after − before, series by series: what happened between the two scrapes. A series only in `after`
 * is counted whole.
 */
export function seriesDelta(before: readonly HistogramSeries[], after: readonly HistogramSeries[]): HistogramSeries[] {
  const negated = before.map((s) => ({
    ...s,
    count: -s.count,
    sumSeconds: -s.sumSeconds,
    buckets: s.buckets.map(([le, c]) => [le, -c] as const),
  }));
  const afterKeys = new Set(after.map(keyOf));
  return combine([...after, ...negated.filter((s) => afterKeys.has(keyOf(s)))]);
}

const keyOf = (s: HistogramSeries) => `${s.component}\u0000${s.operation}`;

function combine(all: readonly HistogramSeries[]): HistogramSeries[] {
  const out = new Map<string, MutableSeries>();
  for (const s of all) {
    const entry = out.get(keyOf(s)) ?? {
      component: s.component,
      operation: s.operation,
      count: 0,
      sumSeconds: 0,
      buckets: new Map(),
    };
    out.set(keyOf(s), entry);
    entry.count += s.count;
    entry.sumSeconds += s.sumSeconds;
    for (const [le, c] of s.buckets) entry.buckets.set(le, (entry.buckets.get(le) ?? 0) + c);
  }
  return [...out.values()].map((s) => ({ ...s, buckets: [...s.buckets].sort((a, b) => a[0] - b[0]) }));
}

/**
 * The q-quantile of a histogram, as Prometheus's histogram_quantile computes it: linear within the
 * bucket the rank falls into, the first bucket starting at 0, and the highest finite bound when the
 * rank falls into the +Inf bucket. NaN when the histogram is empty.
 */
export function histogramQuantile(q: number, buckets: readonly (readonly [number, number])[]): number {
  const total = buckets.at(-1)?.[1] ?? 0;
  if (buckets.length < 2 || total <= 0 || buckets.at(-1)![0] !== Infinity) return NaN;
  const rank = q * total;
  const i = buckets.findIndex(([, count]) => count >= rank);
  if (i === buckets.length - 1) return buckets[i - 1][0];
  const [upper, count] = buckets[i];
  const [lower, below] = i === 0 ? [0, 0] : buckets[i - 1];
  return count === below ? upper : lower + (upper - lower) * ((rank - below) / (count - below));
}
