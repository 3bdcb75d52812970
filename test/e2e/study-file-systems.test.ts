import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunRecord } from '../../lib/benchmark/record.js';
import { readStudy } from '../../lib/benchmark/study.js';
import { expectExit, kubeFor, nodeMountAt, onNode, runCli, sandstoreSource } from './harness.js';

/**
 * The storage underneath as a profile choice, studied on the real node: local-node-ext4 against
 * local-node-xfs (the same profile on the node's loop-mounted ext4 and xfs images, through
 * local-path's nodePath), two short rounds. What the records say is checked against the node: the
 * file system each run's volumes were on against the kernel's mount table, and each run's claim
 * directories against the disk (new for every run, removed by local-path before the next).
 */
const PROFILES = ['local-node-ext4', 'local-node-xfs'] as const;
const FS_OF: Record<string, string> = { 'local-node-ext4': 'ext4', 'local-node-xfs': 'xfs' };
const kube = kubeFor();
const results = mkdtempSync(join(tmpdir(), 'study-fs-e2e-'));
const runRecord = (id: string) => RunRecord.parse(JSON.parse(readFileSync(join(results, id, 'run.json'), 'utf8')));
const nodePathOf = (record: RunRecord) => (record.profile.values.storage as { nodePath: string }).nodePath;
/** local-path's directory for a claim: <nodePath>/<volume>_<namespace>_<claim> (its default pathPattern). */
const claimDir = (record: RunRecord, claim: { name: string; volume?: string }) =>
  join(nodePathOf(record), `${claim.volume}_${record.cluster.namespace}_${claim.name}`);

afterAll(async () => {
  for (const p of PROFILES) await runCli(['destroy', `--profile=${p}`, '--timeout=120']);
});

test('a study of ext4 against xfs runs interleaved on new volumes each time, records the file system the node mounted, and compares', async () => {
  const before = new Set(PROFILES.flatMap((p) => readdirSync(onNode(`/var/lib/sandstore-node/${FS_OF[p]}`))));
  const r = await runCli([
    'benchmark',
    `--profiles=${PROFILES.join(',')}`,
    '--repeat=2',
    '--ops=write,read,stat',
    '--duration=2',
    '--warmup=1',
    '--concurrency=2',
    `--source=${sandstoreSource()}`,
    `--results-dir=${results}`,
    '--timeout=240',
  ]);
  expectExit(r, 0);
  const study = readStudy(join(results, 'studies', readdirSync(join(results, 'studies'))[0]));
  const records = study.entries.map((e) => runRecord(e.run!));
  // Interleaved (a b a b by the runs' own start times), each after a clean-slate deploy.
  expect(
    [...records].sort((a, b) => Date.parse(a.startedAt) - Date.parse(b.startedAt)).map((rec) => rec.profile.name),
  ).toEqual([...PROFILES, ...PROFILES]);
  expect(records.map((rec) => [rec.status, rec.fresh])).toEqual(records.map(() => ['valid', true]));

  for (const rec of records) {
    // The file system under every pod's data, as the container's kernel listed the mount, is the
    // one mounted at the profile's nodePath where the node sees it: the loop device and its type.
    const [fsType, source] = nodeMountAt(nodePathOf(rec));
    expect(fsType).toBe(FS_OF[rec.profile.name]);
    expect(rec.server?.pods.map((p) => [p.volume?.fsType, p.volume?.source])).toEqual(
      rec.server?.pods.map(() => [fsType, source]),
    );
  }

  // New claims and directories for every run: uids and volumes never repeat, no directory existed
  // before the study, and only the last run's are still on disk (local-path removed the others
  // when the next clean-slate deploy destroyed their profile).
  const claims = records.flatMap((rec) => (rec.cluster.claims ?? []).map((c) => ({ rec, c })));
  expect(claims).toHaveLength(4 * 4);
  expect(new Set(claims.map(({ c }) => c.uid)).size).toBe(claims.length);
  const dirs = claims.map(({ rec, c }) => ({ dir: claimDir(rec, c), last: rec === records.at(-1) }));
  expect(dirs.filter(({ dir }) => before.has(dir.split('/').at(-1)!))).toEqual([]);
  expect(
    dirs.map(({ dir }) => ({ dir, onDisk: existsSync(onNode(dir)) && statSync(onNode(dir)).isDirectory() })),
  ).toEqual(dirs.map(({ dir, last }) => ({ dir, onDisk: last })));
  // The last run's directories are the ones the API server's volumes point at.
  const live = (await kube.list('PersistentVolume')).items.filter(
    (pv) => pv.spec?.claimRef?.namespace === records.at(-1)!.cluster.namespace,
  );
  expect(live.map((pv) => pv.spec?.hostPath?.path ?? pv.spec?.local?.path).sort()).toEqual(
    dirs
      .filter((d) => d.last)
      .map((d) => d.dir)
      .sort(),
  );

  // The comparison: medians with intervals, a verdict section, the servers' table naming both file systems, the chart.
  const comparison = join(results, 'studies', readdirSync(join(results, 'studies'))[0], 'comparison');
  const markdown = readFileSync(join(comparison, 'comparison.md'), 'utf8');
  expect(markdown).toMatch(/\|\s*stat\s*\|\s*local-node-xfs\s*\|\s*[\d.]+ \[[\d.]+–[\d.]+\]/);
  expect(markdown).toContain('Verdicts against local-node-ext4');
  expect(markdown).toMatch(/^\| local-node-ext4 \| ext4 \(/m);
  expect(markdown).toMatch(/^\| local-node-xfs \| xfs \(/m);
  expect(statSync(join(comparison, 'chart.png')).size).toBeGreaterThan(10_000);
});
