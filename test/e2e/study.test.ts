import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunRecord } from '../../lib/benchmark/record.js';
import { readStudy } from '../../lib/benchmark/study.js';
import { expectExit, projectWithVariant, runCli, sandstoreSource } from './harness.js';

/**
 * A study on the real node: the local-node profile against a variant that differs only in Sand
 * Store's CPU limit (500m, the limit local-node had before a benchmark showed its leader throttled),
 * two rounds, interleaved, each run after a clean-slate deploy; stopped by Ctrl-C half way and
 * resumed without redoing what was finished; then compared per profile.
 */
const work = projectWithVariant(
  'local-node',
  'local-node-500m',
  `namespace: 'sandstore-node-500m', storage: { ...base.storage, className: 'sandstore-node-500m-ssd' },
  clientAccess: { nodePortBase: 30780 },
  resources: { ...base.resources, sandstore: { ...base.resources.sandstore, limits: { ...base.resources.sandstore.limits, cpu: '500m' } } }`,
);
const results = mkdtempSync(join(tmpdir(), 'study-e2e-'));
const PROFILES = ['local-node', 'local-node-500m'];
const common = [`--source=${sandstoreSource()}`, `--results-dir=${results}`, '--timeout=240'];
const studyDir = () => join(results, 'studies', readdirSync(join(results, 'studies'))[0]);
const runRecord = (id: string) => RunRecord.parse(JSON.parse(readFileSync(join(results, id, 'run.json'), 'utf8')));

afterAll(async () => {
  for (const p of PROFILES) await runCli(['destroy', `--profile=${p}`, '--timeout=120'], { cwd: work });
});

test('a study stopped by Ctrl-C in its second run keeps the first, marks the second interrupted and says how to resume', async () => {
  let sent = false;
  const r = await runCli(
    [
      'benchmark',
      `--profiles=${PROFILES.join(',')}`,
      '--repeat=2',
      '--ops=stat',
      '--duration=3',
      '--warmup=0',
      ...common,
    ],
    {
      cwd: work,
      onStdout: (text, child) => {
        if (sent || !/run 2 of 4: local-node-500m[\s\S]*stat 1\/1 measure/.test(text)) return;
        sent = true;
        child.kill('SIGINT');
      },
    },
  );
  expectExit(r, 130);
  expect(r.stderr).toContain(`npm run benchmark -- --resume=${studyDir()}`);
  const study = readStudy(studyDir());
  expect(study.entries.map((e) => [e.round, e.profile, e.status])).toEqual([
    [1, 'local-node', 'valid'],
    [1, 'local-node-500m', 'interrupted'],
    [2, 'local-node', undefined],
    [2, 'local-node-500m', undefined],
  ]);
});

test('--resume runs what is left, interleaved, each after a clean slate, then compares the profiles', async () => {
  const before = readStudy(studyDir());
  const r = await runCli(['benchmark', `--resume=${studyDir()}`, ...common], { cwd: work });
  expectExit(r, 0);
  const study = readStudy(studyDir());
  expect(study.entries.map((e) => e.status)).toEqual(['valid', 'valid', 'valid', 'valid']);
  // Not redone: the first run is the one recorded before the interruption; the interrupted one is kept, marked.
  expect(study.entries[0].run).toBe(before.entries[0].run);
  expect(study.entries[1].run).not.toBe(before.entries[1].run);
  expect(runRecord(before.entries[1].run!).status).toBe('interrupted');
  // Interleaved, as planned: a b a b by the runs' own start times.
  const records = study.entries.map((e) => runRecord(e.run!));
  expect(
    [...records].sort((a, b) => Date.parse(a.startedAt) - Date.parse(b.startedAt)).map((rec) => rec.profile.name),
  ).toEqual([...PROFILES, ...PROFILES]);
  // A clean slate before each run: deployed fresh, on claims and volumes no other run had.
  expect(records.every((rec) => rec.fresh === true)).toBe(true);
  const claims = records.flatMap((rec) => rec.cluster.claims ?? []);
  expect(claims).toHaveLength(4 * 4);
  expect(new Set(claims.map((c) => c.uid)).size).toBe(claims.length);
  expect(new Set(claims.map((c) => c.volume)).size).toBe(claims.length);
  // The two profiles differ in Sand Store's CPU limit only, as the records show.
  const limits = records
    .slice(0, 2)
    .map((rec) => (rec.profile.values.resources as { sandstore: { limits: { cpu: string } } }).sandstore.limits.cpu);
  expect(limits).toEqual(['2', '500m']);
  // ... and as the containers' cgroups enforced it: the variant's quota is half a core, and under
  // load its leader was stopped for part of some periods, which the record counts.
  for (const rec of records) {
    const leader = rec.server?.pods.find((p) => p.name === rec.leadership.before.leader);
    expect({ run: rec.id, limit: leader?.cpu?.limitCores }).toEqual({
      run: rec.id,
      limit: rec.profile.name === 'local-node' ? 2 : 0.5,
    });
    if (rec.profile.name === 'local-node-500m') expect(leader!.cpu!.throttledPeriods).toBeGreaterThan(0);
  }
  const markdown = readFileSync(join(studyDir(), 'comparison', 'comparison.md'), 'utf8');
  expect(markdown).toMatch(/\|\s*stat\s*\|\s*local-node\s*\|/);
  expect(markdown).toMatch(/\|\s*stat\s*\|\s*local-node-500m\s*\|/);
  expect(markdown).toContain('Verdicts against local-node');
  expect(markdown).toMatch(
    /^\| local-node-500m \| \w+ \([^)]*\) \| 0\.5 \| \d+\.\d\d \| \d+\.\d% \| \w+ \w+ \d+\.\d\d/m,
  );
  expect(existsSync(join(studyDir(), 'comparison', 'chart.png'))).toBe(true);
});
