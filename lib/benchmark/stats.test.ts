import {
  ALPHA,
  bootstrapMedianInterval,
  BOOTSTRAP_RESAMPLES,
  criticalU,
  detectableDifference,
  exactUCounts,
  rankSumTest,
  runsEachNeeded,
  runsNeededBeside,
  seededRandom,
  shiftOf,
  smallestP,
  verdict,
} from './stats.js';

/**
 * The statistics against published reference values: each test names where its numbers were
 * printed. Values "printed by R" were printed by R 4.2.2's wilcox.test when its help page's example
 * (or the call shown) is run; R prints four significant digits, so those are compared to four.
 */

/**
 * R's wilcox.test help page example (Hollander & Wolfe 1973, p. 69): permeability constants of the
 * chorioamnion at term (x) and at 12–26 weeks (y).
 */
const TERM = [0.8, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46];
const EARLY = [1.15, 0.88, 0.9, 0.74, 1.21];

/** SciPy's mannwhitneyu documentation example: ages at diagnosis of type II diabetes. */
const MALES = [19, 22, 16, 29, 24];
const FEMALES = [20, 11, 17, 12];

/**
 * R's wilcox.test help page, formula example: airquality's Ozone in May and in August (R's datasets
 * package, NAs left out).
 */
const OZONE_MAY = [41, 36, 12, 18, 28, 23, 19, 8, 7, 16, 11, 14, 18, 14, 34, 6, 30, 11, 1, 11, 4, 32, 23, 45, 115, 37];
const OZONE_AUG = [
  39, 9, 16, 78, 35, 66, 122, 89, 110, 44, 28, 65, 22, 59, 23, 31, 44, 21, 9, 45, 168, 73, 76, 118, 84, 85,
];

/**
 * NAG Library, g08ajf/g08akf example programs (results published with the library's documentation):
 * two groups of 16 and 23.
 */
const NAG_1 = [13.0, 5.8, 11.7, 6.5, 12.3, 6.7, 9.2, 6.9, 10.0, 7.3, 16.0, 7.0, 10.5, 8.5, 9.0, 7.5];
const NAG_2 = [
  17.0, 6.2, 10.1, 8.0, 15.3, 8.2, 15.0, 9.6, 14.9, 10.4, 14.2, 9.8, 13.8, 11.0, 14.0, 11.1, 12.9, 11.6, 12.8, 12.0,
  13.1, 12.4, 11.9,
];
/** The same example rounded to whole numbers, with ties (g08akf/g08amf). */
const NAG_TIED_1 = [13, 6, 12, 7, 12, 7, 10, 7, 10, 7, 16, 7, 10, 8, 9, 8];
const NAG_TIED_2 = [17, 6, 10, 8, 15, 8, 15, 10, 15, 10, 14, 10, 14, 11, 14, 11, 13, 12, 13, 12, 13, 12, 12];

describe('the rank-sum (Mann–Whitney U) test', () => {
  test('SciPy documentation: U1 = 17.0, exact p = 0.1111111111111111, asymptotic p = 0.11134688653314041', () => {
    const exact = rankSumTest(MALES, FEMALES);
    expect(exact).toMatchObject({ u: 17, method: 'exact' });
    expect(exact.p).toBeCloseTo(0.1111111111111111, 12);
    const normal = rankSumTest(MALES, FEMALES, { exact: false });
    expect(normal.method).toBe('normal');
    // simple-statistics' error function is accurate to about 1e-7 (Numerical Recipes' erfc).
    expect(normal.p).toBeCloseTo(0.11134688653314041, 7);
    // The statistic of the second sample is mn − U1 = 3, and the two-sided p is the same.
    expect(rankSumTest(FEMALES, MALES)).toMatchObject({ u: 3 });
    expect(rankSumTest(FEMALES, MALES).p).toBeCloseTo(exact.p, 12);
  });

  test(
    'R help example (Hollander & Wolfe): W = 35, exact one-sided p = 0.1272; normal, no ' +
      'continuity correction, one-sided p = 0.1103',
    () => {
      const exact = rankSumTest(TERM, EARLY);
      expect(exact).toMatchObject({ u: 35, method: 'exact' });
      // Two-sided is twice the smaller tail, the "greater" one here; R prints 0.2544 for it.
      expect(exact.p / 2).toBeCloseTo(0.1272, 4);
      expect(exact.p).toBeCloseTo(0.2544, 4);
      const normal = rankSumTest(TERM, EARLY, { exact: false, continuity: false });
      expect(normal.p / 2).toBeCloseTo(0.1103, 4);
    },
  );

  test(
    'R help example with ties (airquality Ozone, May vs August): W = 127.5, p-value = ' +
      '0.0001208 (normal, continuity corrected)',
    () => {
      const t = rankSumTest(OZONE_MAY, OZONE_AUG);
      expect(t).toMatchObject({ u: 127.5, method: 'normal' });
      expect(t.p).toBeCloseTo(0.0001208, 7);
    },
  );

  test("ties on both sides (endmemo.com's wilcox.test example): W = 51.5, p-value = 0.5966", () => {
    const t = rankSumTest([1, 5, 9, 24, 56, 21, 3, 7, 21, 4], [12, 15, 5, 9, 9, 14, 56, 22, 3, 7, 32, 5]);
    expect(t).toMatchObject({ u: 51.5, method: 'normal' });
    expect(t.p).toBeCloseTo(0.5966, 4);
  });

  test('NAG g08ajf: U = 86, normal statistic −2.7838, exact one-tail probability 0.0022, approximate 0.0027', () => {
    const exact = rankSumTest(NAG_1, NAG_2);
    expect(exact).toMatchObject({ u: 86, method: 'exact' });
    expect(exact.p / 2).toBeCloseTo(0.0022, 4);
    const normal = rankSumTest(NAG_1, NAG_2, { exact: false });
    expect(normal.z).toBeCloseTo(-2.7838, 4);
    expect(normal.p / 2).toBeCloseTo(0.0027, 4);
  });

  test('NAG g08akf, tied data: U = 86, normal statistic (tie corrected) −2.8039, tail probability 0.0025', () => {
    const t = rankSumTest(NAG_TIED_1, NAG_TIED_2);
    expect(t).toMatchObject({ u: 86, method: 'normal' });
    expect(t.z).toBeCloseTo(-2.8039, 4);
    expect(t.p / 2).toBeCloseTo(0.0025, 4);
  });

  test('every value the same: nothing tells the groups apart, p = 1', () => {
    expect(rankSumTest([2, 2, 2], [2, 2, 2, 2])).toEqual({ u: 6, p: 1, method: 'normal' });
  });
});

describe("U's exact null distribution", () => {
  test(
    'small cases by hand: m = n = 2 has orderings per U of 1, 1, 2, 1, 1; m = n = 3 of 1, ' +
      '1, 2, 3, 3, 3, 3, 2, 1, 1',
    () => {
      expect([...exactUCounts(2, 2)]).toEqual([1, 1, 2, 1, 1]);
      expect([...exactUCounts(3, 3)]).toEqual([1, 1, 2, 3, 3, 3, 3, 2, 1, 1]);
      expect([...exactUCounts(1, 3)]).toEqual([1, 1, 1, 1]);
    },
  );

  test('the counts add up to C(m + n, m) and are symmetric', () => {
    const counts = [...exactUCounts(10, 12)];
    expect(counts.reduce((s, c) => s + c, 0)).toBe(646_646); // C(22, 10)
    expect(counts).toEqual([...counts].reverse());
  });

  test(
    'critical values of U, two-tailed α = 0.05, as tabled (e.g. numeracy-bank.net, after ' +
      'Siegel & Castellan): U at or below them is significant',
    () => {
      // [n1, n2, critical U]; n1 = n2 = 5 gives 2: P(U ≤ 2) = 4/252 = 0.016, P(U ≤ 3) = 7/252 = 0.028.
      const table: [number, number, number][] = [
        [5, 5, 2],
        [6, 6, 5],
        [8, 8, 13],
        [10, 10, 23],
        [5, 10, 8],
        [13, 16, 59],
        [20, 20, 127],
        [4, 4, 0],
        [3, 5, 0],
        [2, 8, 0],
      ];
      for (const [m, n, c] of table) expect([m, n, criticalU(m, n)]).toEqual([m, n, c]);
      // Too few for any: no U is rare enough.
      expect(criticalU(3, 3)).toBe(-1);
      expect(criticalU(2, 7)).toBe(-1);
    },
  );
});

describe('how many runs a verdict needs', () => {
  test('the smallest two-sided p is 2 / C(m + n, m): 1/3 with 2 runs each, 0.1 with 3, 2/70 with 4', () => {
    expect(smallestP(2, 2)).toBeCloseTo(1 / 3, 12);
    expect(smallestP(3, 3)).toBeCloseTo(0.1, 12);
    expect(smallestP(4, 4)).toBeCloseTo(2 / 70, 12);
    expect(smallestP(1, 1)).toBe(1);
  });

  test('4 runs each, or 3 beside 5, 2 beside 8, 1 beside 40', () => {
    expect(runsEachNeeded()).toBe(4);
    expect([1, 2, 3, 4].map(runsNeededBeside)).toEqual([40, 8, 5, 4]);
  });
});

describe('the shift (Hodges–Lehmann) and its 95% interval', () => {
  test(
    'R, wilcox.test(x, y, conf.int = TRUE) on its help example: difference in location ' +
      '0.305, 95% interval −0.15 to 0.76',
    () => {
      const s = shiftOf(TERM, EARLY);
      expect(s.estimate).toBeCloseTo(0.305, 10);
      expect(s.interval?.low).toBeCloseTo(-0.15, 10);
      expect(s.interval?.high).toBeCloseTo(0.76, 10);
    },
  );

  test('R on the NAG data: −3.1, interval −4.9 to −1.1', () => {
    const s = shiftOf(NAG_1, NAG_2);
    expect(s.estimate).toBeCloseTo(-3.1, 10);
    expect([s.interval?.low, s.interval?.high].map((v) => Number(v?.toFixed(10)))).toEqual([-4.9, -1.1]);
  });

  test(
    'with ties (airquality): R finds −31.99996 in −52.99999 to −14.99998 by root-finding; ' +
      'the order statistics are −32, −53, −15',
    () => {
      const s = shiftOf(OZONE_MAY, OZONE_AUG);
      expect(s.estimate).toBe(-32);
      expect(s.interval).toEqual({ low: -53, high: -15 });
    },
  );

  test(
    'too few runs: no interval; otherwise the detectable difference is the distance from ' +
      "the estimate to the interval's end on zero's side",
    () => {
      expect(shiftOf([1, 2, 3], [4, 5, 6]).interval).toBeUndefined();
      expect(detectableDifference({ estimate: 1, interval: undefined })).toBeUndefined();
      expect(detectableDifference({ estimate: 0.305, interval: { low: -0.15, high: 0.76 } })).toBeCloseTo(0.455, 12);
      // Lopsided intervals: a rise of 1 in [0.5, 4] needed only 0.5 to be seen (and was); a fall of 1
      // in [−4, 0.5] needed 1.5.
      expect(detectableDifference({ estimate: 1, interval: { low: 0.5, high: 4 } })).toBe(0.5);
      expect(detectableDifference({ estimate: -1, interval: { low: -4, high: 0.5 } })).toBe(1.5);
      // No direction: the farther end.
      expect(detectableDifference({ estimate: 0, interval: { low: -1, high: 3 } })).toBe(3);
    },
  );

  test('a verdict comes exactly when the change exceeds the detectable difference (exact test, no ties)', () => {
    const random = seededRandom(11);
    for (let trial = 0; trial < 200; trial++) {
      const reference = Array.from({ length: 4 + (trial % 5) }, () => 10 + random() * 4);
      const shift = (random() - 0.5) * 8;
      const other = Array.from({ length: 4 + ((trial >> 2) % 5) }, () => 10 + shift + random() * 4);
      const v = verdict(reference, other, 'lower');
      if (v.kind === 'no verdict possible' || v.detectable === undefined)
        throw new Error('4 runs each allow a verdict');
      expect([trial, v.kind !== 'no difference']).toEqual([trial, Math.abs(v.shift.estimate) > v.detectable]);
    }
  });
});

describe('verdicts', () => {
  // 4 runs each, completely separated: U = 16 of 16, p = 2/70. Differences other − reference:
  // 5..8 minus 1..4 run from 1 to 7, their median is 4; criticalU(4, 4) = 0 keeps them all, so the
  // interval is 1 to 7 and the detectable difference (7 − 1) / 2 = 3.
  test('separated groups: slower on latency, faster on throughput, p = 2/70, shift 4 in [1, 7], detectable 3', () => {
    const slower = verdict([1, 2, 3, 4], [5, 6, 7, 8], 'lower');
    expect(slower).toMatchObject({
      kind: 'slower',
      test: { u: 16, method: 'exact' },
      shift: { estimate: 4, interval: { low: 1, high: 7 } },
      detectable: 3,
    });
    if (slower.kind === 'no verdict possible') throw new Error('unexpected');
    expect(slower.test.p).toBeCloseTo(2 / 70, 12);
    expect(verdict([1, 2, 3, 4], [5, 6, 7, 8], 'higher').kind).toBe('faster');
    expect(verdict([5, 6, 7, 8], [1, 2, 3, 4], 'lower').kind).toBe('faster');
  });

  test('overlapping groups: no difference the data can show, with the difference it could have', () => {
    const v = verdict([1, 3, 5, 7], [2, 4, 6, 8], 'lower');
    expect(v.kind).toBe('no difference');
    if (v.kind === 'no verdict possible') throw new Error('unexpected');
    expect(v.test.p).toBeGreaterThanOrEqual(ALPHA);
    // Differences 2..8 minus 1..7: −5 to 7; all kept (criticalU(4, 4) = 0): half of 12.
    expect(v.detectable).toBe(6);
  });

  test('3 runs each cannot give a verdict, however far apart: the smallest p is 0.1', () => {
    expect(verdict([1, 2, 3], [100, 200, 300], 'lower')).toEqual({ kind: 'no verdict possible', smallestP: 0.1 });
    // Ties would let the normal approximation dip under 5% (p = 0.047 here); the exact bound still says no.
    expect(rankSumTest([1, 1, 1], [2, 2, 2]).p).toBeLessThan(ALPHA);
    expect(verdict([1, 1, 1], [2, 2, 2], 'lower').kind).toBe('no verdict possible');
  });
});

describe('the bootstrap interval of the median', () => {
  test('one run: no interval', () => {
    expect(bootstrapMedianInterval([3])).toBeUndefined();
    expect(bootstrapMedianInterval([])).toBeUndefined();
  });

  test(
    "2 to 5 runs: the interval is their range (a resample's median is the smallest value " +
      'more often than 2.5% of the time)',
    () => {
      expect(bootstrapMedianInterval([2, 4])).toEqual({ low: 2, high: 4 });
      expect(bootstrapMedianInterval([1, 10, 3])).toEqual({ low: 1, high: 10 });
      expect(bootstrapMedianInterval([4, 1, 3, 2])).toEqual({ low: 1, high: 4 });
      expect(bootstrapMedianInterval([5, 1, 4, 2, 3])).toEqual({ low: 1, high: 5 });
    },
  );

  /**
   * For an odd n = 2k − 1, the bootstrap distribution of the median is known exactly (Maritz &
   * Jarrett 1978; Efron 1982, ch. 10): the resample's median is at most the j-th smallest value
   * when at least k of the n draws are, so P(median* ≤ x(j)) = P(Binomial(n, j/n) ≥ k). The
   * percentile interval's ends are then the order statistics where that crosses 2.5% and 97.5%.
   */
  function exactPercentileEnds(sorted: readonly number[]): [number, number] {
    const n = sorted.length;
    const k = (n + 1) / 2;
    const binomialAtLeast = (p: number) => {
      let sum = 0;
      for (let i = k; i <= n; i++) {
        let c = 1;
        for (let j = 1; j <= i; j++) c = (c * (n - i + j)) / j;
        sum += c * p ** i * (1 - p) ** (n - i);
      }
      return sum;
    };
    const cdf = sorted.map((_, j) => binomialAtLeast((j + 1) / n));
    const low = cdf.findIndex((c) => c > 0.025);
    const high = cdf.findIndex((c) => c >= 0.975);
    return [sorted[low] ?? NaN, sorted[high] ?? NaN];
  }

  test(
    "Efron & Tibshirani's mouse data (treatment group, days survived): the exact bootstrap " +
      'distribution puts the ends at the 2nd and 6th of 7',
    () => {
      const mice = [94, 197, 16, 38, 99, 141, 23];
      const sorted = [...mice].sort((a, b) => a - b);
      expect(exactPercentileEnds(sorted)).toEqual([23, 141]);
      expect(bootstrapMedianInterval(mice)).toEqual({ low: 23, high: 141 });
      // 2.5% of the exact distribution sits far from an order statistic's edge at n = 7 (1.0% at the
      // smallest, 10.8% up to the 2nd), so 10,000 resamples find the same ends.
      expect(BOOTSTRAP_RESAMPLES).toBe(10_000);
    },
  );

  test('from 6 runs on it lies inside the range, around the median', () => {
    const values = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    const ci = bootstrapMedianInterval(values);
    if (!ci) throw new Error('no interval');
    expect(ci.low).toBeGreaterThan(1);
    expect(ci.high).toBeLessThan(10);
    expect(ci.low).toBeLessThanOrEqual(5.5);
    expect(ci.high).toBeGreaterThanOrEqual(5.5);
  });

  test('reproducible: the same runs in any order give the same interval; another seed moves it little', () => {
    const values = [0.61, 0.55, 0.7, 0.58, 0.66, 0.63, 0.59, 0.72];
    const ci = bootstrapMedianInterval(values);
    expect(bootstrapMedianInterval([...values].reverse())).toEqual(ci);
    expect(bootstrapMedianInterval(values)).toEqual(ci);
    const other = bootstrapMedianInterval(values, { seed: 1 });
    expect(Math.abs((other?.low ?? 0) - (ci?.low ?? 0))).toBeLessThan(0.03);
    expect(Math.abs((other?.high ?? 0) - (ci?.high ?? 0))).toBeLessThan(0.03);
  });

  test('the seeded source is reproducible, in [0, 1) and even (a χ² test over 10 bins of 100,000 draws)', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const first = Array.from({ length: 5 }, a);
    expect(Array.from({ length: 5 }, b)).toEqual(first);
    expect(Array.from({ length: 5 }, seededRandom(43))).not.toEqual(first);
    const bins = new Array<number>(10).fill(0);
    const r = seededRandom(7);
    let outside = 0;
    for (let i = 0; i < 100_000; i++) {
      const u = r();
      if (u < 0 || u >= 1) outside++;
      else bins[Math.floor(u * 10)] = (bins[Math.floor(u * 10)] ?? 0) + 1;
    }
    expect(outside).toBe(0);
    const chi2 = bins.reduce((s, o) => s + (o - 10_000) ** 2 / 10_000, 0);
    // χ² with 9 degrees of freedom: 21.67 is its 99th percentile.
    expect(chi2).toBeLessThan(21.67);
  });
});
