/**
 * The driver's live progress (JSON lines on its standard output, one a second) turned into what a
 * person watching a run of minutes wants: the operation and stage, elapsed and remaining time, the
 * live rate. Pure: the lines in, the text out; run-driver.ts does the I/O.
 */
import type { Operation } from './record.js';

/** One line of the driver's standard output. */
export type DriverEvent =
  | {
      readonly type: 'progress';
      readonly operation: Operation;
      readonly stage: 'warmup' | 'measure';
      readonly elapsed_s: number;
      readonly stage_s: number;
      readonly ok: number;
      readonly errors: number;
      readonly rate: number;
    }
  | {
      readonly type: 'phase';
      readonly operation: Operation;
      readonly ops_per_s: number;
      readonly p50_ms: number;
      readonly p99_ms: number;
      readonly errors: number;
    }
  | { readonly type: 'done'; readonly interrupted: boolean };

/** A line of the driver's output as an event; undefined for anything else (it is logged, not parsed). */
export function parseDriverEvent(line: string): DriverEvent | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const event = JSON.parse(line) as { type?: unknown };
    return event.type === 'progress' || event.type === 'phase' || event.type === 'done'
      ? (event as DriverEvent)
      : undefined;
  } catch {
    return undefined;
  }
}

/** What the run was asked to do: enough to say how much remains. */
export interface RunPlan {
  readonly operations: readonly Operation[];
  readonly warmupSeconds: number;
  readonly durationSeconds: number;
}

/** Seconds left in the run after this progress event (set-up between phases not counted: it is short). */
export function remainingSeconds(plan: RunPlan, event: Extract<DriverEvent, { type: 'progress' }>): number {
  const index = plan.operations.indexOf(event.operation);
  const later = plan.operations.length - index - 1;
  const perPhase = plan.warmupSeconds + plan.durationSeconds;
  const inStage = Math.max(0, event.stage_s - event.elapsed_s);
  const inPhase = event.stage === 'warmup' ? inStage + plan.durationSeconds : inStage;
  return inPhase + later * perPhase;
}

const clock = (seconds: number) => {
  const s = Math.max(0, Math.round(seconds));
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
};

/** `write 2/5 measure  12s of 30s  1,234 ok/s  0 errors  ~1m40s left` */
export function progressLine(plan: RunPlan, event: Extract<DriverEvent, { type: 'progress' }>): string {
  const index = plan.operations.indexOf(event.operation) + 1;
  const rate = Math.round(event.rate).toLocaleString('en-US');
  const stage = event.stage === 'warmup' ? 'warm-up' : 'measure';
  const errors = `${event.errors} error${event.errors === 1 ? '' : 's'}`;
  const times = `${clock(event.elapsed_s)} of ${clock(event.stage_s)}`;
  return (
    `${event.operation} ${index}/${plan.operations.length} ${stage.padEnd(7)} ${times}  ` +
    `${rate} ok/s  ${errors}  ~${clock(remainingSeconds(plan, event))} left`
  );
}

/** `write: 1,234 ops/s, p50 0.61 ms, p99 4.20 ms, 0 errors` */
export function phaseLine(event: Extract<DriverEvent, { type: 'phase' }>): string {
  return (
    `${Math.round(event.ops_per_s).toLocaleString('en-US')} ops/s, p50 ` +
    `${event.p50_ms.toFixed(2)} ms, p99 ${event.p99_ms.toFixed(2)} ms, ${event.errors} ` +
    `error${event.errors === 1 ? '' : 's'}`
  );
}
