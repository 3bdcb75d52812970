import { performance } from 'node:perf_hooks';

/**
 * Where a command's time goes, for `SANDSTORE_TRACE=1` and the bench: named moments in
 * milliseconds since the process started (Node's performance clock starts with the process, so
 * the first mark includes start-up and loading the bundle).
 */
const marks: [string, number][] = [];

/** Records the first time `what` happens (later calls with the same name are ignored). */
export function mark(what: string): void {
  if (!marks.some(([w]) => w === what)) marks.push([what, performance.now()]);
}

/** Records `what` every time, keeping the last (e.g. the last API response). */
export function markLast(what: string): void {
  const i = marks.findIndex(([w]) => w === what);
  if (i >= 0) marks.splice(i, 1);
  marks.push([what, performance.now()]);
}

/** One line: `trace: bundle loaded 212ms, profile loaded 240ms, ...`, in time order. */
export function traceLine(): string {
  return `trace: ${[...marks]
    .sort((a, b) => a[1] - b[1])
    .map(([w, t]) => `${w} ${Math.round(t)}ms`)
    .join(', ')}`;
}
