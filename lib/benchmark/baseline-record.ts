/**
 * run.json's `target` for a process baseline (`--baseline=processes`): what ran instead of a
 * cluster. Absent in a record, the run measured the profile on Kubernetes (every record written
 * before the baseline existed). A baseline has no cluster: its `cluster` says `none` for context,
 * server and namespace, with no nodes or pods; this machine's facts are here instead.
 */
import * as z from 'zod/mini';

const count = z.int().check(z.minimum(0));

export const BASELINE_PROGRAMS = ['sandstore', 'etcd'] as const;

/** A program taken out of the profile's image by digest (image-binaries.ts). */
const Binary = z.object({
  program: z.enum(BASELINE_PROGRAMS),
  /** The image reference the manifests name. */
  image: z.string(),
  /** What the reference resolved to in the registry (a pod's imageID names the same digest). */
  imageDigest: z.string(),
  /** The manifest for this machine's platform (the same as imageDigest unless the image is an index). */
  manifestDigest: z.string(),
  platform: z.string(),
  pathInImage: z.string(),
  /** sha256 of the program's bytes, hex. */
  sha256: z.string(),
});

/** One process as it ran: what the pod's container had, with the differences applied. */
const ProcessRecord = z.object({
  /** The pod it stands for (sandstore-0, etcd-0): a node id, an etcd member name. */
  name: z.string(),
  program: z.enum(BASELINE_PROGRAMS),
  pid: count,
  address: z.string(),
  /** sha256 of /proc/<pid>/exe, read while the process ran: the binary that ran, not the one meant to. */
  exeSha256: z.string(),
  args: z.array(z.string()),
  env: z.record(z.string(), z.string()),
});

export const ProcessTarget = z.object({
  kind: z.literal('processes'),
  machine: z.object({
    hostname: z.string(),
    kernel: z.string(),
    os: z.string(),
    architecture: z.string(),
    cpus: count,
    cpuModel: z.string(),
    memoryBytes: count,
  }),
  /** Where the processes kept their data (removed afterwards), and its file system. */
  dataDir: z.object({ path: z.string(), fsType: z.string() }),
  binaries: z.array(Binary),
  processes: z.array(ProcessRecord),
  /** Each setting that differs from the StatefulSet's, with both values and why. */
  differences: z.array(
    z.object({ setting: z.string(), kubernetes: z.string(), processes: z.string(), why: z.string() }),
  ),
  /**
   * After the processes were stopped: what was left (a live pid, a port still bound, the data
   * folder); empty when nothing was.
   */
  leftovers: z.optional(z.array(z.string())),
});
export type ProcessTarget = z.infer<typeof ProcessTarget>;

/** What `--baseline` accepts: the profile's programs as plain processes on this machine. */
export const BASELINES = ['processes'] as const;
export type Baseline = (typeof BASELINES)[number];
