/**
 * The benchmark's records: what the load driver writes (summary.json, beside its CSV and its
 * histograms) and what the benchmark command writes around it (run.json). One run is one folder,
 * results/<profile>/<UTC timestamp>/, never overwritten:
 *
 *   run.json        RunRecord: everything needed to trace a number back to what produced it
 *   results.csv     the driver's CSV: upstream's columns (clients/bench) plus ops_per_s
 *   summary.json    DriverSummary: per operation, percentiles, errors by kind, a per-second timeline
 *   <op>.hgrm       the driver's HdrHistogram percentile distribution per operation (HdrHistogram's text form)
 *   driver.log      the driver's own standard error, unchanged
 *   server/         each Sand Store pod's metrics and cgroup/mount probe before and after, verbatim (server-view.ts)
 *
 * The schemas are zod's, so that a record read back (by --compare, or by a test) is checked field
 * by field, and a broken or foreign file is named with what is wrong in it.
 */
import * as z from 'zod/mini';
import { ProcessTarget } from './baseline-record.js';

/** The five operations of upstream's clients/bench, in the order it runs them. */
export const OPERATIONS = ['write', 'read', 'stat', 'create', 'listdir'] as const;
export type Operation = (typeof OPERATIONS)[number];

export const DRIVER_SUMMARY_SCHEMA = 'sandstore-deploy/driver-summary/v1';
export const RUN_RECORD_SCHEMA = 'sandstore-deploy/benchmark-run/v1';

/** The upstream CSV's columns, then ours. */
export const CSV_COLUMNS = [
  'operation',
  'concurrency',
  'block_size_bytes',
  'p50_ms',
  'p95_ms',
  'p99_ms',
  'p100_ms',
  'total_ops',
  'error_count',
  'ops_per_s',
] as const;

const count = z.int().check(z.minimum(0));
const nonNegative = z.number().check(z.minimum(0));
const isoTime = z.iso.datetime({ offset: true });

/** Latency of the successful calls of one phase, in milliseconds (failed calls are not in it). */
const Latency = z.object({
  p50: nonNegative,
  p90: nonNegative,
  p95: nonNegative,
  p99: nonNegative,
  p999: nonNegative,
  p100: nonNegative,
  min: nonNegative,
  mean: nonNegative,
});

/** One second of a phase's measured window. */
const TimelineSecond = z.object({
  /** Whole seconds since the measured window began (0 is the first). */
  t: count,
  ok: count,
  errors: count,
  p50_ms: nonNegative,
  p99_ms: nonNegative,
  max_ms: nonNegative,
});

/** One operation's phase: a warm-up (discarded), then the measured window. */
export const Phase = z.object({
  operation: z.enum(OPERATIONS),
  /** When the measured window began (after the warm-up). */
  started_at: isoTime,
  /** Length of the measured window in seconds (shorter than asked when interrupted). */
  measured_s: nonNegative,
  /** False when the run was interrupted during this phase's measured window. */
  complete: z.boolean(),
  /** Every call in the measured window, failed ones included (upstream's total_ops). */
  total_ops: count,
  ok_ops: count,
  error_count: count,
  /** Failed calls by kind: gRPC code and message shape, e.g. "Unavailable: connection refused". */
  errors: z.record(z.string(), count),
  /** Successful calls per second of the measured window. */
  ops_per_s: nonNegative,
  latency_ms: Latency,
  /** The phase's HdrHistogram (values in microseconds), V2 compressed encoding, base64. */
  histogram: z.string(),
  timeline: z.array(TimelineSecond),
  warmup: z.object({ seconds: nonNegative, ops: count, errors: count }),
  /**
   * The driver's own CPU time (user + system) over the warm-up and the measured window: its cost
   * per call, and so its own ceiling apart from the target's (optional: drivers before it lack it).
   */
  cpu_s: z.optional(nonNegative),
});
export type Phase = z.infer<typeof Phase>;

/** What the driver was asked to do. */
export const DriverOptions = z.object({
  seeds: z.array(z.string()),
  concurrency: z.int().check(z.minimum(1)),
  block_size_bytes: z.int().check(z.minimum(1)),
  duration_s: z.number().check(z.positive()),
  warmup_s: nonNegative,
  operations: z.array(z.enum(OPERATIONS)),
});
export type DriverOptions = z.infer<typeof DriverOptions>;

/** The driver's summary.json. */
export const DriverSummary = z.object({
  schema: z.literal(DRIVER_SUMMARY_SCHEMA),
  driver: z.object({ version: z.string(), go: z.string() }),
  options: DriverOptions,
  started_at: isoTime,
  ended_at: isoTime,
  interrupted: z.boolean(),
  phases: z.array(Phase),
  /** The driver's own footprint: peak resident memory, and how many samples it recorded in all. */
  memory: z.object({ max_rss_bytes: count, samples: count }),
});
export type DriverSummary = z.infer<typeof DriverSummary>;

/** A node of the cluster as the API server reports it. */
const NodeRecord = z.object({
  name: z.string(),
  kernelVersion: z.string(),
  osImage: z.string(),
  containerRuntime: z.string(),
  kubeletVersion: z.string(),
  architecture: z.string(),
  cpu: z.string(),
  memory: z.string(),
});

/** A pod of the profile, with the image each container runs as the API server reports it. */
const PodRecord = z.object({
  name: z.string(),
  node: z.optional(z.string()),
  restarts: count,
  containers: z.array(z.object({ name: z.string(), image: z.string(), imageID: z.string() })),
});

/** A counter that may go down between two readings only if the pod was replaced; kept as read. */
const signed = z.number();

/** The servers' side of the run (server-view.ts): per pod, and per component from Sand Store's own histograms. */
export const ServerRecord = z.object({
  pods: z.array(
    z.object({
      name: z.string(),
      /** The file system under the pod's data volume, as the container's kernel lists the mount. */
      volume: z.optional(
        z.object({
          mountPoint: z.string(),
          fsType: z.string(),
          source: z.string(),
          options: z.string(),
          superOptions: z.string(),
        }),
      ),
      /** The container's cgroup CPU time and CFS throttling over the run (after − before). */
      cpu: z.optional(
        z.object({
          cgroup: z.enum(['v1', 'v2']),
          usageSeconds: signed,
          periods: signed,
          throttledPeriods: signed,
          throttledSeconds: signed,
          limitCores: z.optional(nonNegative),
        }),
      ),
      unavailable: z.array(z.string()),
    }),
  ),
  components: z.array(
    z.object({
      // p50Ms and p99Ms are estimated from the buckets (Sand Store uses Prometheus's default bounds:
      // 5 ms, 10 ms, 25 ms, ...).
      component: z.string(),
      operation: z.string(),
      calls: signed,
      totalSeconds: signed,
      meanMs: signed,
      p50Ms: signed,
      p99Ms: signed,
    }),
  ),
});
export type ServerRecord = z.infer<typeof ServerRecord>;

const Leadership = z.object({ leader: z.optional(z.string()), term: z.optional(count) });

/**
 * valid: measured as asked, leader and pods unchanged; invalid: measured, but the leader changed
 * or a pod restarted (reasons say which); interrupted: stopped by Ctrl-C, what was measured kept;
 * failed: the driver failed (exit code and its words in reasons).
 */
export const RUN_STATUSES = ['valid', 'invalid', 'interrupted', 'failed'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/** run.json. */
export const RunRecord = z.object({
  schema: z.literal(RUN_RECORD_SCHEMA),
  /** <profile>/<UTC timestamp>: the folder's path under results/. */
  id: z.string(),
  status: z.enum(RUN_STATUSES),
  reasons: z.array(z.string()),
  /**
   * Whether the profile was deployed from a clean slate right before this run (--fresh). A run on a
   * deployment that earlier runs wrote to is not like the first: Sand Store's root directory holds
   * their files, and listdir and create slow down as it grows.
   */
  fresh: z.optional(z.boolean()),
  startedAt: isoTime,
  endedAt: isoTime,
  durationSeconds: nonNegative,
  profile: z.object({
    name: z.string(),
    /** The profile's values as loaded (profiles/<name>.ts). */
    values: z.record(z.string(), z.unknown()),
    /** sha256 over dist/<profile>/'s files (names and contents, in name order). */
    distDigest: z.string(),
  }),
  cluster: z.object({
    context: z.string(),
    server: z.string(),
    namespace: z.string(),
    nodes: z.array(NodeRecord),
    pods: z.array(PodRecord),
    /**
     * The profile's claims and the volumes bound to them: new uids and volumes on every run after
     * a clean-slate deploy, the same ones on a run over a used deployment.
     */
    claims: z.optional(z.array(z.object({ name: z.string(), uid: z.string(), volume: z.optional(z.string()) }))),
  }),
  leadership: z.object({ before: Leadership, after: Leadership }),
  /** Absent in records written before the server side was read. */
  server: z.optional(ServerRecord),
  sandstore: z.object({
    source: z.string(),
    /** git revision of the checkout when it is a git work tree with no changes, else undefined. */
    revision: z.optional(z.string()),
    /** sha256 over the checkout's Go sources and module files: what the driver was built from. */
    contentDigest: z.string(),
  }),
  driver: z.object({
    options: DriverOptions,
    /** sha256 of the driver binary that ran. */
    binaryDigest: z.string(),
    exitCode: z.optional(z.int()),
  }),
  project: z.object({
    /** This project's git revision, and whether its work tree had changes. */
    revision: z.optional(z.string()),
    dirty: z.boolean(),
  }),
  /** A process baseline's processes (baseline-record.ts); absent: the run measured Kubernetes. */
  target: z.optional(ProcessTarget),
});
export type RunRecord = z.infer<typeof RunRecord>;
