/**
 * The statistics of a comparison, as pure functions: how sure a group's median is (a bootstrap
 * 95% confidence interval), whether two groups of runs differ (the two-sided Wilcoxon rank-sum /
 * Mann–Whitney U test), by how much (the Hodges–Lehmann shift and its 95% interval, the test
 * inverted), and the verdict that follows, with the smallest difference the runs could have shown.
 *
 * simple-statistics (a dependency already) gives the median, quantiles, resampling with a
 * caller's random source, the rank sum with mid-ranks for ties, and the error function; what it
 * lacks is written here: a seeded generator, the exact null distribution of U, the normal
 * approximation with tie and continuity corrections, and the shift's interval. Checked against
 * published reference values in stats.test.ts.
 */
import { errorFunction, median, quantileSorted, sampleWithReplacement, wilcoxonRankSum } from 'simple-statistics';

/** A closed interval [low, high]. */
export interface Interval {
  readonly low: number;
  readonly high: number;
}

/**
 * The level of every interval and test here: 95% intervals, p < 0.05 for a verdict (both literal: 1
 * − 0.95 is 0.05000000000000004 in floating point).
 */
export const CONFIDENCE = 0.95;
export const ALPHA = 0.05;

/**
 * Resamples per bootstrap interval: enough that another seed moves the interval's ends by a small
 * part of the runs' spread (stats.test.ts).
 */
export const BOOTSTRAP_RESAMPLES = 10_000;
/**
 * The bootstrap's seed. Fixed, and the generator is started afresh for every interval, so the same
 * runs always give the same interval, whatever else is compared beside them.
 */
export const BOOTSTRAP_SEED = 20_250_601;

/**
 * A seeded pseudo-random source in [0, 1): mulberry32 (Tommy Ettinger's 32-bit generator, public
 * domain). It only has to be reproducible and even enough to pick resample indices; a library for
 * it would add a dependency for six lines.
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export interface BootstrapOptions {
  readonly resamples?: number;
  readonly seed?: number;
  readonly confidence?: number;
}

/**
 * The percentile-bootstrap confidence interval of the median of `values`: the median of each of
 * `resamples` resamples (drawn with replacement, as many values as there are), and the
 * (1 − confidence) / 2 and (1 + confidence) / 2 quantiles of those medians (R's type 7).
 * Undefined for a single value: one run has no interval.
 *
 * With 2 to 5 values the interval is their range (min–max): the resample median falls on the
 * smallest value more often than 2.5% of the time (at 5 values, 5.8%), so the percentile bootstrap
 * cannot say more than the range, and the range covers the true median only with probability
 * 1 − 2^(1−n) (50% at 2 runs, 94% at 5). From 6 values on, the interval lies inside the range.
 */
export function bootstrapMedianInterval(values: readonly number[], opts: BootstrapOptions = {}): Interval | undefined {
  if (values.length < 2) return undefined;
  const resamples = opts.resamples ?? BOOTSTRAP_RESAMPLES;
  const confidence = opts.confidence ?? CONFIDENCE;
  // Sorted first: the interval depends on the values, not on the order the runs were read in.
  const sorted = [...values].sort((a, b) => a - b);
  const random = seededRandom(opts.seed ?? BOOTSTRAP_SEED);
  const medians = new Float64Array(resamples);
  for (let i = 0; i < resamples; i++) medians[i] = median(sampleWithReplacement(sorted, sorted.length, random));
  medians.sort();
  const tail = (1 - confidence) / 2;
  const all = [...medians];
  return { low: quantileSorted(all, tail), high: quantileSorted(all, 1 - tail) };
}

/** Whether some values are equal (a tie), which the exact distribution of U does not allow for. */
function hasTies(values: readonly number[]): boolean {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.some((v, i) => i > 0 && v === sorted[i - 1]);
}

/** The sizes of the groups of equal values in `values` (1 for a value with no equal). */
function tieSizes(values: readonly number[]): number[] {
  const counts = new Map<number, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts.values()];
}

/**
 * How many of the C(m + n, m) orderings of m x's and n y's give U = u, for every u in 0..mn (U:
 * the pairs with x above y). The standard recursion on where the largest value is: an x above all
 * n y's adds n to U, a y adds nothing, so N(u; m, n) = N(u − n; m − 1, n) + N(u; m, n − 1).
 * Additions only, so doubles stay accurate (relative error near 1e-15) up to the sizes used here.
 */
export function exactUCounts(m: number, n: number): Float64Array {
  // row[j] holds N(·; i, j) for the current i; i = 0: one ordering, U = 0.
  let row: Float64Array[] = Array.from({ length: n + 1 }, () => Float64Array.of(1));
  for (let i = 1; i <= m; i++) {
    const next: Float64Array[] = [Float64Array.of(1)];
    for (let j = 1; j <= n; j++) {
      const counts = new Float64Array(i * j + 1);
      const xLargest = row[j] ?? new Float64Array(0);
      const yLargest = next[j - 1] ?? new Float64Array(0);
      for (let u = 0; u < counts.length; u++) counts[u] = (u >= j ? (xLargest[u - j] ?? 0) : 0) + (yLargest[u] ?? 0);
      next.push(counts);
    }
    row = next;
  }
  return row[n] ?? Float64Array.of(1);
}

const cumulativeCache = new Map<string, Float64Array>();

/**
 * P(U ≤ u) for every u, under the null hypothesis (every ordering equally likely); kept per size,
 * as a comparison asks for the same sizes again and again.
 */
function exactUCumulative(m: number, n: number): Float64Array {
  const key = `${m},${n}`;
  const cached = cumulativeCache.get(key);
  if (cached) return cached;
  const counts = exactUCounts(m, n);
  const total = counts.reduce((s, c) => s + c, 0);
  const cumulative = new Float64Array(counts.length);
  let sum = 0;
  counts.forEach((c, u) => {
    sum += c;
    cumulative[u] = sum / total;
  });
  cumulativeCache.set(key, cumulative);
  return cumulative;
}

/** Below this size (each group, as R's wilcox.test) and without ties, the p-value is exact. */
export const EXACT_BELOW = 50;

/** A two-sided rank-sum test of x against y. */
export interface RankSumTest {
  /** U of x: the pairs (x, y) with x above y, a tie counting ½ (R's W, SciPy's U1). */
  readonly u: number;
  /** The two-sided p-value. */
  readonly p: number;
  /** Exact (the null distribution of U, no ties) or the normal approximation (with tie and continuity corrections). */
  readonly method: 'exact' | 'normal';
  /** The normal approximation's z (undefined when exact, or when every value is the same). */
  readonly z?: number;
}

export interface RankSumOptions {
  /**
   * Force (true) or forbid (false) the exact p-value; by default exact without ties and when both
   * groups are under EXACT_BELOW.
   */
  readonly exact?: boolean;
  /** The normal approximation's continuity correction (½ towards the mean); on by default, as in R and SciPy. */
  readonly continuity?: boolean;
}

/** The standard normal's upper tail beyond |z|, doubled: 1 − erf(|z| / √2). */
const twoSidedNormalP = (z: number) => Math.min(1, 1 - errorFunction(Math.abs(z) / Math.SQRT2));

/**
 * The two-sided Wilcoxon rank-sum (Mann–Whitney U) test: U from simple-statistics' rank sum, then
 * the exact p-value (twice the smaller tail of U's null distribution, as R and SciPy compute it)
 * or the normal approximation, whose variance shrinks by Σ(t³ − t) / (N(N − 1)) over the groups of
 * t tied values and whose distance from the mean shrinks by ½ for continuity.
 */
export function rankSumTest(x: readonly number[], y: readonly number[], opts: RankSumOptions = {}): RankSumTest {
  const m = x.length;
  const n = y.length;
  if (m === 0 || n === 0) throw new Error('the rank-sum test needs at least one value in each group');
  const u = wilcoxonRankSum([...x], [...y]) - (m * (m + 1)) / 2;
  const exact = opts.exact ?? (m < EXACT_BELOW && n < EXACT_BELOW && !hasTies([...x, ...y]));
  if (exact) {
    const cumulative = exactUCumulative(m, n);
    // U is an integer without ties; P(U ≥ u) = 1 − P(U ≤ u − 1).
    const below = cumulative[Math.floor(u)] ?? 1;
    const above = 1 - (u >= 1 ? (cumulative[Math.ceil(u) - 1] ?? 0) : 0);
    return { u, p: Math.min(1, 2 * Math.min(below, above)), method: 'exact' };
  }
  const total = m + n;
  const ties = tieSizes([...x, ...y]).reduce((s, t) => s + t ** 3 - t, 0);
  const variance = ((m * n) / 12) * (total + 1 - ties / (total * (total - 1)));
  // Every value the same: nothing tells the groups apart.
  if (variance <= 0) return { u, p: 1, method: 'normal' };
  const distance = u - (m * n) / 2;
  const corrected = opts.continuity === false ? distance : distance - Math.sign(distance) * 0.5;
  const z = corrected / Math.sqrt(variance);
  return { u, p: twoSidedNormalP(z), method: 'normal', z };
}

/** n choose k, as a double (exact while it is below 2^53). */
function choose(n: number, k: number): number {
  let result = 1;
  for (let i = 1; i <= k; i++) result = (result * (n - k + i)) / i;
  return Math.round(result);
}

/**
 * The smallest two-sided p-value the rank-sum test can give with m and n runs: complete
 * separation, one ordering at each end of C(m + n, m), so 2 / C(m + n, m). At or above ALPHA no
 * data can give a verdict (2 and 2 runs: 1/3; 3 and 3: 0.1; 4 and 4: 0.029).
 */
export function smallestP(m: number, n: number): number {
  return Math.min(1, 2 / choose(m + n, m));
}

/** Whether m and n runs can give p < ALPHA at all. */
export const verdictPossible = (m: number, n: number) => smallestP(m, n) < ALPHA;

/** The fewest runs each group needs for a verdict to be possible, with equal groups: 4 at 5%. */
export function runsEachNeeded(): number {
  let n = 1;
  while (!verdictPossible(n, n)) n++;
  return n;
}

/** The fewest runs a group needs beside one of `m` runs for a verdict to be possible (m = 1 needs 40). */
export function runsNeededBeside(m: number): number {
  let n = 1;
  while (!verdictPossible(m, n)) n++;
  return n;
}

/** The location shift of x from y (x − y) with its 95% interval, from the rank-sum test. */
export interface Shift {
  /** The Hodges–Lehmann estimate: the median of all pairwise differences x_i − y_j. */
  readonly estimate: number;
  /**
   * The shifts d the two-sided test at ALPHA would not reject for x − d against y: the test
   * inverted (R's wilcox.test conf.int). Undefined when no shift could be rejected (too few runs).
   */
  readonly interval: Interval | undefined;
}

/** The standard normal's 97.5% point (R: qnorm(0.975)), for the 95% interval. */
const Z_975 = 1.959963984540054;

/**
 * The largest U that the two-sided exact test at ALPHA rejects, for m and n values without ties:
 * the largest c with P(U ≤ c) < ALPHA / 2 (R: qwilcox(alpha / 2, m, n) − 1), the number in a
 * textbook's table of critical values of U. −1 when no U is that rare (too few runs).
 */
export function criticalU(m: number, n: number): number {
  const cumulative = exactUCumulative(m, n);
  let c = -1;
  while ((cumulative[c + 1] ?? 1) < ALPHA / 2) c++;
  return c;
}

/**
 * The same for the normal approximation with ties (its tie and continuity corrections):
 * P(U ≤ c) ≈ Φ((c + ½ − mn/2) / σ) < ALPHA / 2, so c < mn/2 − ½ − z·σ. This gives the classical
 * large-sample interval (Hollander & Wolfe); R instead finds the interval's ends by root-finding,
 * so with ties the ends can differ from R's by a pairwise difference.
 */
function criticalUNormal(x: readonly number[], y: readonly number[]): number {
  const m = x.length;
  const n = y.length;
  const total = m + n;
  const ties = tieSizes([...x, ...y]).reduce((s, t) => s + t ** 3 - t, 0);
  const sigma = Math.sqrt(((m * n) / 12) * (total + 1 - ties / (total * (total - 1))));
  return Math.ceil((m * n) / 2 - 0.5 - Z_975 * sigma) - 1;
}

/**
 * The Hodges–Lehmann shift of x from y and its 95% interval (the same choice of exact or normal as
 * rankSumTest's default).
 */
export function shiftOf(x: readonly number[], y: readonly number[]): Shift {
  if (x.length === 0 || y.length === 0) throw new Error('a shift needs at least one value in each group');
  const differences = x.flatMap((a) => y.map((b) => a - b)).sort((a, b) => a - b);
  const exact = x.length < EXACT_BELOW && y.length < EXACT_BELOW && !hasTies([...x, ...y]);
  // c differences lie outside the interval on each side.
  const c = exact ? criticalU(x.length, y.length) : criticalUNormal(x, y);
  const estimate = median(differences);
  if (c < 0) return { estimate, interval: undefined };
  const low = differences[c];
  const high = differences[differences.length - 1 - c];
  return { estimate, interval: low === undefined || high === undefined ? undefined : { low, high } };
}

/** Which way is better for a metric: lower latency, higher throughput. */
export type Better = 'lower' | 'higher';

/** Two groups of runs compared on one metric. */
export type Verdict =
  | {
      readonly kind: 'faster' | 'slower' | 'no difference';
      readonly test: RankSumTest;
      readonly shift: Shift;
      /**
       * The smallest difference these runs could have shown (see detectableDifference); undefined
       * when the interval is.
       */
      readonly detectable: number | undefined;
    }
  | {
      readonly kind: 'no verdict possible';
      /** The smallest p-value these sizes can give. */
      readonly smallestP: number;
    };

/**
 * The smallest difference this study could have detected, in the direction the runs moved: how
 * far the estimated shift lies from the end of its 95% interval on zero's side (for an estimate
 * of exactly zero, the farther end). The interval's shape comes from the runs' spread and count,
 * not from the shift (moving one group moves every pairwise difference alike), so the same runs
 * shifted by any amount beyond this would have put zero outside the interval, which is p < 0.05;
 * a smaller difference they cannot tell from noise. Hence a verdict comes exactly when the change
 * exceeds it (without ties; with ties, where the test and the interval are both approximations,
 * nearly so). It is no promise about the next study: a true difference this large is found about
 * half the time, since a fresh set of runs spreads differently.
 *
 * Not half the interval's width: the interval of a few runs is often lopsided, and half its width
 * could exceed a change that the test did detect.
 */
export function detectableDifference(shift: Shift): number | undefined {
  if (!shift.interval) return undefined;
  const below = shift.estimate - shift.interval.low;
  const above = shift.interval.high - shift.estimate;
  if (shift.estimate > 0) return below;
  if (shift.estimate < 0) return above;
  return Math.max(below, above);
}

/**
 * `other` against `reference` on a metric where `better` is lower or higher: "faster" or "slower"
 * when the two-sided rank-sum test gives p < ALPHA (the direction from U: which group's runs
 * rank higher), else "no difference"; "no verdict possible" when the group sizes cannot reach
 * p < ALPHA whatever the data (checked on the exact distribution: with ties the normal
 * approximation could dip under ALPHA at sizes where no permutation test could).
 */
export function verdict(reference: readonly number[], other: readonly number[], better: Better): Verdict {
  if (!verdictPossible(other.length, reference.length))
    return { kind: 'no verdict possible', smallestP: smallestP(other.length, reference.length) };
  const test = rankSumTest(other, reference);
  const shift = shiftOf(other, reference);
  const detectable = detectableDifference(shift);
  if (test.p >= ALPHA) return { kind: 'no difference', test, shift, detectable };
  const otherHigher = test.u > (other.length * reference.length) / 2;
  return { kind: otherHigher === (better === 'higher') ? 'faster' : 'slower', test, shift, detectable };
}
