import { DRIVER_SUMMARY_SCHEMA, DriverSummary, RUN_RECORD_SCHEMA, RunRecord } from './record.js';

/** The records' schemas: what --compare and the tests rely on when they read a run back. */

const phase = {
  operation: 'write',
  started_at: '2026-12-06T04:31:12Z',
  measured_s: 30,
  complete: true,
  total_ops: 1200,
  ok_ops: 1198,
  error_count: 2,
  errors: { 'Unavailable: connection refused': 2 },
  ops_per_s: 39.93,
  latency_ms: { p50: 0.6, p90: 1.1, p95: 1.4, p99: 4.2, p999: 9.8, p100: 12.1, min: 0.3, mean: 0.75 },
  histogram: 'HISTFAAAA...',
  timeline: [{ t: 0, ok: 40, errors: 0, p50_ms: 0.6, p99_ms: 4, max_ms: 5 }],
  warmup: { seconds: 5, ops: 200, errors: 0 },
};
const options = {
  seeds: ['10.213.0.2:30380'],
  concurrency: 4,
  block_size_bytes: 4096,
  duration_s: 30,
  warmup_s: 5,
  operations: ['write'],
};
const summary = {
  schema: DRIVER_SUMMARY_SCHEMA,
  driver: { version: '1', go: 'go1.26.8' },
  options,
  started_at: '2026-12-06T04:31:07Z',
  ended_at: '2026-12-06T04:31:43Z',
  interrupted: false,
  phases: [phase],
  memory: { max_rss_bytes: 31_000_000, samples: 1400 },
};
const record = {
  schema: RUN_RECORD_SCHEMA,
  id: 'local-node/2026-12-06T04-31-07Z',
  status: 'invalid',
  reasons: ['pod sandstore-1 restarted (0 → 1 restarts)'],
  startedAt: '2026-12-06T04:31:07.000Z',
  endedAt: '2026-12-06T04:31:44.000Z',
  durationSeconds: 37,
  profile: { name: 'local-node', values: { name: 'local-node' }, distDigest: 'sha256:ab' },
  cluster: {
    context: 'sandstore-local',
    server: 'https://127.0.0.1:6443',
    namespace: 'sandstore-node',
    nodes: [
      {
        name: 'n',
        kernelVersion: '6.1.0',
        osImage: 'Debian',
        containerRuntime: 'containerd://1.6.20',
        kubeletVersion: 'v1.28.15',
        architecture: 'amd64',
        cpu: '2',
        memory: '24Gi',
      },
    ],
    pods: [
      {
        name: 'sandstore-0',
        node: 'n',
        restarts: 0,
        containers: [
          {
            name: 'sandstore',
            image: 'localhost:5000/sandstore-node:x',
            imageID: 'localhost:5000/sandstore-node@sha256:00',
          },
        ],
      },
    ],
  },
  leadership: { before: { leader: 'sandstore-0', term: 3 }, after: { term: 4 } },
  sandstore: { source: '/src', contentDigest: 'sha256:cd' },
  driver: { options, binaryDigest: 'sha256:ef', exitCode: 0 },
  project: { revision: 'abc', dirty: false },
};

const problems = (schema: typeof RunRecord | typeof DriverSummary, value: unknown) =>
  (schema.safeParse(value).error?.issues ?? []).map((i) => i.path.join('.'));

test('a run record and a driver summary as the command and the driver write them are accepted', () => {
  expect(RunRecord.safeParse(record).success).toBe(true);
  expect(DriverSummary.safeParse(summary).success).toBe(true);
});

test('a broken record is refused field by field, each by its path', () => {
  expect(problems(RunRecord, { ...record, status: 'great' })).toEqual(['status']);
  expect(problems(RunRecord, { ...record, startedAt: 'yesterday' })).toEqual(['startedAt']);
  expect(problems(RunRecord, { ...record, schema: 'sandstore-deploy/benchmark-run/v0' })).toEqual(['schema']);
  expect(
    problems(RunRecord, {
      ...record,
      cluster: { ...record.cluster, pods: [{ ...record.cluster.pods[0], restarts: -1 }] },
    }),
  ).toEqual(['cluster.pods.0.restarts']);
  expect(problems(DriverSummary, { ...summary, phases: [{ ...phase, operation: 'delete' }] })).toEqual([
    'phases.0.operation',
  ]);
  expect(problems(DriverSummary, { ...summary, phases: [{ ...phase, total_ops: 1.5 }] })).toEqual([
    'phases.0.total_ops',
  ]);
  expect(problems(DriverSummary, { ...summary, options: { ...options, concurrency: 0 } })).toEqual([
    'options.concurrency',
  ]);
  const { memory: _memory, ...withoutMemory } = summary;
  expect(problems(DriverSummary, withoutMemory)).toEqual(['memory']);
});

test(
  "a process baseline's target is optional (records before it parse), and checked field " + 'by field when present',
  () => {
    const target = {
      kind: 'processes',
      machine: {
        hostname: 'h',
        kernel: '6.1',
        os: 'Debian',
        architecture: 'amd64',
        cpus: 2,
        cpuModel: 'c',
        memoryBytes: 1,
      },
      dataDir: { path: '/tmp/x', fsType: 'ext4' },
      binaries: [
        {
          program: 'etcd',
          image: 'i',
          imageDigest: 'sha256:1',
          manifestDigest: 'sha256:1',
          platform: 'linux/amd64',
          pathInImage: '/usr/local/bin/etcd',
          sha256: '2',
        },
      ],
      processes: [
        { name: 'etcd-0', program: 'etcd', pid: 7, address: '127.0.0.1:1', exeSha256: '2', args: [], env: {} },
      ],
      differences: [{ setting: 's', kubernetes: 'k', processes: 'p', why: 'w' }],
    };
    expect(RunRecord.safeParse(record).success).toBe(true);
    expect(RunRecord.safeParse({ ...record, target }).success).toBe(true);
    expect(problems(RunRecord, { ...record, target: { ...target, kind: 'docker' } })).toEqual(['target.kind']);
    expect(
      problems(RunRecord, { ...record, target: { ...target, processes: [{ ...target.processes[0], pid: -1 }] } }),
    ).toEqual(['target.processes.0.pid']);
    expect(
      problems(RunRecord, { ...record, target: { ...target, binaries: [{ ...target.binaries[0], program: 'java' }] } }),
    ).toEqual(['target.binaries.0.program']);
  },
);
