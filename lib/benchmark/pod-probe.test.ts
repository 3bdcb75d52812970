import { cpuCounters, cpuDelta, mountAt, PROBE_FILES, probeFiles } from './pod-probe.js';

// As a container on the local cluster's real node (cgroup v1) printed them, and as the kernel's
// cgroup v2 documentation (Documentation/admin-guide/cgroup-v2.rst, "cpu.stat", "cpu.max") lays them out.
const V1 = `==> /sys/fs/cgroup/cpu/cpu.stat
nr_periods 538
nr_throttled 12
throttled_time 1500000000
nr_bursts 0
burst_time 0
==> /sys/fs/cgroup/cpu/cpu.cfs_quota_us
50000
==> /sys/fs/cgroup/cpu/cpu.cfs_period_us
100000
==> /sys/fs/cgroup/cpuacct/cpuacct.usage
1375647427
`;
const V2 = `==> /sys/fs/cgroup/cpu.stat
usage_usec 2500000
user_usec 2000000
system_usec 500000
nr_periods 40
nr_throttled 4
throttled_usec 300000
==> /sys/fs/cgroup/cpu.max
max 100000
`;

describe('cpuCounters', () => {
  it('reads cgroup v1: cpu.stat in nanoseconds, cpuacct.usage, the quota over the period as cores', () => {
    expect(cpuCounters(probeFiles(V1))).toEqual({
      cgroup: 'v1',
      usageSeconds: 1.375647427,
      periods: 538,
      throttledPeriods: 12,
      throttledSeconds: 1.5,
      limitCores: 0.5,
    });
  });
  it('reads cgroup v2: cpu.stat in microseconds, no limit when cpu.max says max', () => {
    expect(cpuCounters(probeFiles(V2))).toEqual({
      cgroup: 'v2',
      usageSeconds: 2.5,
      periods: 40,
      throttledPeriods: 4,
      throttledSeconds: 0.3,
      limitCores: undefined,
    });
    expect(cpuCounters(probeFiles(V2.replace('max 100000', '200000 100000')))?.limitCores).toBe(2);
  });
  it("is undefined when neither version's files were readable", () => {
    expect(cpuCounters(probeFiles('==> /proc/self/mountinfo\n'))).toBeUndefined();
  });
  it('subtracts before from after', () => {
    const before = cpuCounters(probeFiles(V1))!;
    expect(
      cpuDelta(before, {
        ...before,
        usageSeconds: before.usageSeconds + 2,
        periods: 600,
        throttledPeriods: 20,
        throttledSeconds: 2,
      }),
    ).toEqual({
      cgroup: 'v1',
      usageSeconds: 2,
      periods: 62,
      throttledPeriods: 8,
      throttledSeconds: 0.5,
      limitCores: 0.5,
    });
  });
  it('asks for every file it reads', () => {
    for (const path of [...V1.matchAll(/^==> (\S+)/gm), ...V2.matchAll(/^==> (\S+)/gm)].map((m) => m[1]))
      expect(PROBE_FILES).toContain(path);
  });
});

// Lines as the real node's containers list them (proc(5) describes the fields), and an xfs loop
// mount with a space in its path, which mountinfo writes as \\040.
const MOUNTINFO = [
  '310 211 0:96 / / ro,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w',
  '326 310 254:0 /state/pods/3de7/volumes/kubernetes.io~empty-dir/tmp /tmp rw,relatime - ext4 /dev/vda rw,discard',
  '332 310 254:0 /state/node/volumes/pvc-80b0_sandstore-node_data-sandstore-0 ' +
    '/var/lib/sandstore rw,relatime - ext4 /dev/vda rw,discard,resuid=65534',
  '340 310 7:1 /pvc-1 /data\\040dir rw,noatime shared:5 - xfs /dev/loop1 rw,attr2,inode64,logbufs=8,noquota',
].join('\n');

describe('mountAt', () => {
  it('finds the mount at the data directory with its type, source and both sets of options', () => {
    expect(mountAt(MOUNTINFO, '/var/lib/sandstore')).toEqual({
      mountPoint: '/var/lib/sandstore',
      fsType: 'ext4',
      source: '/dev/vda',
      options: 'rw,relatime',
      superOptions: 'rw,discard,resuid=65534',
    });
  });
  it('decodes octal escapes and skips optional fields', () => {
    expect(mountAt(MOUNTINFO, '/data dir')).toMatchObject({
      fsType: 'xfs',
      source: '/dev/loop1',
      options: 'rw,noatime',
    });
  });
  it('is undefined for a path that is not a mount point', () => {
    expect(mountAt(MOUNTINFO, '/var/lib')).toBeUndefined();
  });
});
