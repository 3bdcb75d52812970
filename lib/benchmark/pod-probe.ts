/**
 * What a Sand Store container's own kernel view says about a run: its cgroup's CPU time and CFS
 * throttling (a CPU limit shows here first, as periods in which the container was stopped), and
 * the file system under its data volume as mounted (type, source, options). Read by one
 * read-only shell command in the container through the API server (pods/exec), before and after.
 */

/** Prints each file that exists, after a `==> path` line. Works with busybox's and Alpine's sh. */
export const PROBE_FILES = [
  '/sys/fs/cgroup/cpu.stat',
  '/sys/fs/cgroup/cpu.max', // cgroup v2
  '/sys/fs/cgroup/cpu/cpu.stat',
  '/sys/fs/cgroup/cpu/cpu.cfs_quota_us',
  '/sys/fs/cgroup/cpu/cpu.cfs_period_us',
  '/sys/fs/cgroup/cpuacct/cpuacct.usage', // cgroup v1
  '/proc/self/mountinfo',
] as const;
export const PROBE_COMMAND = [
  'sh',
  '-c',
  `for f in ${PROBE_FILES.join(' ')}; do [ -r "$f" ] && echo "==> $f" && cat "$f"; done; true`,
];

/** The probe's output, file by file. */
export function probeFiles(output: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const part of output.split(/^==> /m).slice(1)) {
    const newline = part.indexOf('\n');
    files.set(part.slice(0, newline), part.slice(newline + 1));
  }
  return files;
}

/** A container's cgroup CPU counters at one moment (cumulative since the container started). */
export interface CpuCounters {
  readonly cgroup: 'v1' | 'v2';
  readonly usageSeconds: number;
  readonly periods: number;
  readonly throttledPeriods: number;
  readonly throttledSeconds: number;
  /** The CFS quota in cores (the container's CPU limit); undefined without one. */
  readonly limitCores?: number;
}

const keyValues = (text: string | undefined) =>
  new Map(
    (text ?? '')
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [key, value] = l.trim().split(/\s+/);
        return [key, Number(value)] as const;
      }),
  );

const quotaCores = (quota: number, period: number) => (quota > 0 && period > 0 ? quota / period : undefined);

/** The CPU counters from the probe's files (cgroup v2 first), or undefined when neither version's files are there. */
export function cpuCounters(files: ReadonlyMap<string, string>): CpuCounters | undefined {
  const v2 = files.get('/sys/fs/cgroup/cpu.stat');
  if (v2 !== undefined) {
    const stat = keyValues(v2);
    const [quota, period] = (files.get('/sys/fs/cgroup/cpu.max') ?? 'max').trim().split(/\s+/);
    return {
      cgroup: 'v2',
      usageSeconds: (stat.get('usage_usec') ?? 0) / 1e6,
      periods: stat.get('nr_periods') ?? 0,
      throttledPeriods: stat.get('nr_throttled') ?? 0,
      throttledSeconds: (stat.get('throttled_usec') ?? 0) / 1e6,
      limitCores: quota === 'max' ? undefined : quotaCores(Number(quota), Number(period)),
    };
  }
  const v1 = files.get('/sys/fs/cgroup/cpu/cpu.stat');
  if (v1 === undefined) return undefined;
  const stat = keyValues(v1);
  const number = (path: string) => Number((files.get(path) ?? '').trim());
  return {
    cgroup: 'v1',
    usageSeconds: number('/sys/fs/cgroup/cpuacct/cpuacct.usage') / 1e9 || 0,
    periods: stat.get('nr_periods') ?? 0,
    throttledPeriods: stat.get('nr_throttled') ?? 0,
    throttledSeconds: (stat.get('throttled_time') ?? 0) / 1e9,
    limitCores: quotaCores(
      number('/sys/fs/cgroup/cpu/cpu.cfs_quota_us'),
      number('/sys/fs/cgroup/cpu/cpu.cfs_period_us'),
    ),
  };
}

/** after − before; the limit is after's. */
export function cpuDelta(before: CpuCounters, after: CpuCounters): CpuCounters {
  return {
    cgroup: after.cgroup,
    usageSeconds: after.usageSeconds - before.usageSeconds,
    periods: after.periods - before.periods,
    throttledPeriods: after.throttledPeriods - before.throttledPeriods,
    throttledSeconds: after.throttledSeconds - before.throttledSeconds,
    limitCores: after.limitCores,
  };
}

/** A mount as the container's kernel lists it in /proc/self/mountinfo. */
export interface MountFacts {
  readonly mountPoint: string;
  readonly fsType: string;
  /** The device (a loop device, a disk partition, ...) as the kernel names it. */
  readonly source: string;
  /** Per-mount options (rw, relatime, ...). */
  readonly options: string;
  /** The file system's own options (for ext4: data=ordered, ...; for xfs: logbufs, ...). */
  readonly superOptions: string;
}

// mountinfo escapes space, tab, newline and backslash in paths as octal (\040 ...).
const unoctal = (path: string) => path.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** The mount at `mountPoint` (the last one listed wins, as the kernel shows the top of a stack), or undefined. */
export function mountAt(mountinfo: string, mountPoint: string): MountFacts | undefined {
  let found: MountFacts | undefined;
  for (const line of mountinfo.split('\n')) {
    const [head, tail] = line.split(' - ');
    if (tail === undefined) continue;
    const fields = head.split(' ');
    const [fsType, source, superOptions] = tail.split(' ');
    if (unoctal(fields[4]) === mountPoint)
      found = { mountPoint, fsType, source: unoctal(source), options: fields[5], superOptions: superOptions ?? '' };
  }
  return found;
}
