import {
  histogramQuantile,
  parseSandstoreHistograms,
  seriesDelta,
  sumSeries,
  type HistogramSeries,
} from './server-metrics.js';

/**
 * Prometheus's own histogram_quantile test data (promql's engine tests, series
 * testhistogram_bucket{start="positive"}: cumulative counts 5, 7, 11, 12 at bounds 0.1, 0.2, 1, +Inf)
 * and the values Prometheus returns for it: 0.048 (φ 0.2), 0.15 (0.5), 0.72 (0.8), 1 (1), 0 (0).
 */
const PROMETHEUS_POSITIVE = [
  [0.1, 5],
  [0.2, 7],
  [1, 11],
  [Infinity, 12],
] as const;

describe('histogramQuantile, as Prometheus computes it', () => {
  it.each([
    [0.2, 0.048],
    [0.5, 0.15],
    [0.8, 0.72],
    [1, 1],
    [0, 0],
  ])('φ %p gives %p', (q, expected) => {
    expect(histogramQuantile(q, PROMETHEUS_POSITIVE)).toBeCloseTo(expected, 10);
  });
  it('is NaN for an empty histogram and for one without its +Inf bucket', () => {
    expect(
      histogramQuantile(0.5, [
        [0.1, 0],
        [Infinity, 0],
      ]),
    ).toBeNaN();
    expect(
      histogramQuantile(0.5, [
        [0.1, 3],
        [0.2, 4],
      ]),
    ).toBeNaN();
  });
});

// The form Sand Store 7ab6010 prints (internal/metrics/prometheus), cut to two operations, plus a
// label value with the text format's escapes.
const SCRAPE = `# HELP sandstore_chunk_service_latency_seconds Histogram of latency for Sandstore chunk service operations
# TYPE sandstore_chunk_service_latency_seconds histogram
sandstore_chunk_service_latency_seconds_bucket{node="sandstore-0",operation="read_chunk",service="LocalDiscChunkService",le="0.005"} 8
sandstore_chunk_service_latency_seconds_bucket{node="sandstore-0",operation="read_chunk",service="LocalDiscChunkService",le="0.01"} 9
sandstore_chunk_service_latency_seconds_bucket{node="sandstore-0",operation="read_chunk",service="LocalDiscChunkService",le="+Inf"} 10
sandstore_chunk_service_latency_seconds_sum{node="sandstore-0",operation="read_chunk",service="LocalDiscChunkService"} 0.04
sandstore_chunk_service_latency_seconds_count{node="sandstore-0",operation="read_chunk",service="LocalDiscChunkService"} 10
sandstore_chunk_service_latency_seconds_bucket{node="sandstore-0",operation="odd \\"name\\", \\\\ here",service="x",le="0.005"} 1
sandstore_chunk_service_latency_seconds_bucket{node="sandstore-0",operation="odd \\"name\\", \\\\ here",service="x",le="+Inf"} 1
sandstore_chunk_service_latency_seconds_sum{node="sandstore-0",operation="odd \\"name\\", \\\\ here",service="x"} 1e-3
sandstore_chunk_service_latency_seconds_count{node="sandstore-0",operation="odd \\"name\\", \\\\ here",service="x"} 1
go_gc_duration_seconds_count 3
promhttp_metric_handler_requests_total{code="200"} 4
`;

describe('parseSandstoreHistograms', () => {
  const parsed = parseSandstoreHistograms(SCRAPE);
  it(
    'keeps each operation of a family apart, with its count, sum and buckets in order, and ' +
      'nothing of other families',
    () => {
      expect(parsed).toEqual([
        {
          component: 'chunk_service',
          operation: 'read_chunk',
          count: 10,
          sumSeconds: 0.04,
          buckets: [
            [0.005, 8],
            [0.01, 9],
            [Infinity, 10],
          ],
        },
        {
          component: 'chunk_service',
          operation: 'odd "name", \\ here',
          count: 1,
          sumSeconds: 0.001,
          buckets: [
            [0.005, 1],
            [Infinity, 1],
          ],
        },
      ]);
    },
  );
});

const series = (count: number, sumSeconds: number, low: number): HistogramSeries => ({
  component: 'raft_replicator',
  operation: 'replicate',
  count,
  sumSeconds,
  buckets: [
    [0.005, low],
    [Infinity, count],
  ],
});

describe('seriesDelta and sumSeries', () => {
  it('subtracts before from after, bucket by bucket, and counts a series that appeared during the run whole', () => {
    const appeared = { ...series(2, 0.2, 0), operation: 'append' };
    expect(seriesDelta([series(10, 1, 6)], [series(30, 1.5, 20), appeared])).toEqual([
      { ...series(20, 0.5, 14) },
      appeared,
    ]);
  });
  it("adds the pods' series of the same component and operation", () => {
    expect(sumSeries([[series(1, 0.1, 1)], [series(2, 0.3, 0)]])).toEqual([series(3, 0.4, 1)]);
  });
});
