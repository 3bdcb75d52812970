import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as hdr from 'hdr-histogram-js';
import { CSV_COLUMNS, DriverSummary, OPERATIONS } from '../../lib/benchmark/record.js';

/** A run folder's files read back for the e2e suites (the benchmark on the cluster, and its process baseline). */

const readSummary = (dir: string) => DriverSummary.parse(JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')));

/** The driver's CSV and histograms: every operation, uncapped, consistent with a closed loop of `workers`. */
export function checkCsvAndHistograms(dir: string, workers: number): void {
  const [header, ...rows] = readFileSync(join(dir, 'results.csv'), 'utf8').trim().split('\n');
  expect(header).toBe(CSV_COLUMNS.join(','));
  const csv = rows.map((row) => Object.fromEntries(row.split(',').map((cell, i) => [CSV_COLUMNS[i], cell])));
  expect(csv.map((c) => c.operation)).toEqual([...OPERATIONS]);
  const summary = readSummary(dir);
  for (const phase of summary.phases) {
    const row = csv.find((c) => c.operation === phase.operation)!;
    expect({ op: phase.operation, errors: Number(row.error_count), complete: phase.complete }).toEqual({
      op: phase.operation,
      errors: 0,
      complete: true,
    });
    expect(Number(row.total_ops)).toBe(phase.total_ops);
    // Decoded by HdrHistogram's JavaScript implementation: every successful call is in it.
    const histogram = hdr.decodeFromCompressedBase64(phase.histogram);
    expect({ op: phase.operation, count: histogram.totalCount }).toEqual({ op: phase.operation, count: phase.ok_ops });
    expect(histogram.getValueAtPercentile(50) / 1000).toBeCloseTo(Number(row.p50_ms), 1);
    // Uncapped: every whole second of the window served calls (upstream's client stops recording
    // once 1000 samples per worker fill its channel), and the seconds add up to the total. Only
    // where no call takes near a second (stat, create): a slow call (a 2 MiB write flush, a read
    // of a whole chunk, a listdir of a full root) can leave a second with none begun.
    const full = phase.timeline.filter((s) => s.t < Math.floor(phase.measured_s));
    const idle = phase.latency_ms.p100 < 250 ? full.filter((s) => s.ok === 0).map((s) => s.t) : [];
    expect({ op: phase.operation, idle }).toEqual({ op: phase.operation, idle: [] });
    expect(phase.timeline.reduce((n, s) => n + s.ok + s.errors, 0)).toBe(phase.total_ops);
    // A closed loop of `workers` keeps at most `workers` calls in flight: the time its calls took
    // adds up to no more than workers × (the window + the longest call, for calls begun in the
    // window and ended after it). A fabricated or double-counted total would not fit.
    const busy = (phase.ok_ops * histogram.mean) / 1e6;
    const capacity = workers * (phase.measured_s + phase.latency_ms.p100 / 1000) * 1.02;
    expect({ op: phase.operation, busy: Math.min(busy, capacity) }).toEqual({ op: phase.operation, busy });
  }
}
