/**
 * The comparison's verdicts: every group after the first against the first (the reference), per
 * operation both measured, on p50, p99 and throughput, by stats.ts's rank-sum verdict over the
 * groups' runs.
 */
import { OPERATIONS, type Operation } from './record.js';
import type { GroupResult, OperationStats, Spread } from './runs.js';
import { verdict, type Better, type Verdict } from './stats.js';

/** A metric a verdict is given on, and which way is better. */
export interface VerdictMetric {
  readonly label: string;
  readonly unit: string;
  readonly better: Better;
  readonly pick: (s: OperationStats) => Spread;
}

/** The three: the typical call, the slow tail, and throughput. */
export const VERDICT_METRICS: readonly VerdictMetric[] = [
  { label: 'p50', unit: 'ms', better: 'lower', pick: (s) => s.p50 },
  { label: 'p99', unit: 'ms', better: 'lower', pick: (s) => s.p99 },
  { label: 'ops/s', unit: 'ops/s', better: 'higher', pick: (s) => s.opsPerSecond },
];

/** One group against the reference on one operation and metric. */
export interface GroupVerdict {
  readonly operation: Operation;
  readonly metric: VerdictMetric;
  readonly group: GroupResult;
  /** The reference's median, for differences as a share of it. */
  readonly referenceMedian: number;
  readonly runs: { readonly reference: number; readonly group: number };
  readonly verdict: Verdict;
}

/**
 * Every group after the first against the first, operation by operation (the driver's order),
 * metric by metric; an operation one of the two did not measure has no verdict (the results
 * table shows it missing). None with fewer than two groups.
 */
export function verdictsAgainstReference(groups: readonly GroupResult[]): GroupVerdict[] {
  const [reference, ...others] = groups;
  if (!reference) return [];
  return OPERATIONS.flatMap((operation) =>
    VERDICT_METRICS.flatMap((metric) =>
      others.flatMap((group): GroupVerdict[] => {
        const ref = reference.operations[operation];
        const own = group.operations[operation];
        if (!ref || !own) return [];
        const refSpread = metric.pick(ref);
        const ownSpread = metric.pick(own);
        return [
          {
            operation,
            metric,
            group,
            referenceMedian: refSpread.median,
            runs: { reference: refSpread.values.length, group: ownSpread.values.length },
            verdict: verdict(refSpread.values, ownSpread.values, metric.better),
          },
        ];
      }),
    ),
  );
}
