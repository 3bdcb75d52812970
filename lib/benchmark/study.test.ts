import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError } from 'commander';
import { profileList, rounds } from '../runner/commands/benchmark.js';
import { RefusedError } from '../errors.js';
import {
  pendingEntries,
  planStudy,
  readStudy,
  secondsLeft,
  STUDY_SCHEMA,
  writeStudy,
  type StudyRecord,
} from './study.js';

const study = (entries: StudyRecord['entries']): StudyRecord => ({
  schema: STUDY_SCHEMA,
  id: 'studies/2026-12-06T05-00-00Z',
  createdAt: '2026-12-06T05:00:00.000Z',
  profiles: ['a', 'b'],
  repeat: 2,
  load: { duration_s: 10, warmup_s: 2, concurrency: 4, block_size_bytes: 4096, operations: ['stat', 'create'] },
  entries,
});

test('a study interleaves its profiles: each round runs every profile once, in the order given', () => {
  expect(planStudy(['a', 'b', 'c'], 2).map((e) => `${e.round}${e.profile}`)).toEqual([
    '1a',
    '1b',
    '1c',
    '2a',
    '2b',
    '2c',
  ]);
  expect(planStudy(['a', 'b'], 1).every((e) => e.status === undefined && e.reasons.length === 0)).toBe(true);
});

test('what is left: runs never started and interrupted ones; valid, invalid and failed runs are done', () => {
  const entries = planStudy(['a', 'b'], 2);
  entries[0] = { ...entries[0], run: 'a/1', status: 'valid', seconds: 40 };
  entries[1] = { ...entries[1], run: 'b/1', status: 'invalid', seconds: 60, reasons: ['the leader changed'] };
  entries[2] = { ...entries[2], run: 'a/2', status: 'interrupted', seconds: 5 };
  expect(pendingEntries(study(entries))).toEqual([2, 3]);
  entries[2] = { ...entries[2], status: 'failed', reasons: ['gate'] };
  expect(pendingEntries(study(entries))).toEqual([3]);
});

test('time left: the mean of the runs so far, or before any, the load plus the overhead per run', () => {
  const fresh = study(planStudy(['a', 'b'], 2));
  // 2 operations × (2 s warm-up + 10 s) + 45 s of deploy and gate, for each of 4 runs.
  expect(secondsLeft(fresh, 4, 45)).toBe(4 * 69);
  const entries = planStudy(['a', 'b'], 2);
  entries[0] = { ...entries[0], status: 'valid', seconds: 50 };
  entries[1] = { ...entries[1], status: 'valid', seconds: 70 };
  expect(secondsLeft(study(entries), 2, 45)).toBe(120);
});

test(
  'a study record is written and read back; a folder without one, or a broken one, is ' +
    'refused naming the file and field',
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'study-'));
    try {
      const record = study(planStudy(['a', 'b'], 2));
      writeStudy(dir, record);
      expect(readStudy(dir)).toEqual(record);
      writeFileSync(join(dir, 'study.json'), JSON.stringify({ ...record, repeat: 0 }));
      expect(() => readStudy(dir)).toThrow(/study\.json is not a study record: repeat: /);
      writeFileSync(join(dir, 'study.json'), '{');
      expect(() => readStudy(dir)).toThrow(/is not JSON/);
      expect(() => readStudy(join(dir, 'nothing'))).toThrow(RefusedError);
      expect(() => readStudy(join(dir, 'nothing'))).toThrow(/is not a study folder: it holds no study\.json/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('--profiles takes two or more distinct profile names; --repeat 1 to 100 rounds', () => {
  expect(profileList('local-node,local-node-xfs')).toEqual(['local-node', 'local-node-xfs']);
  for (const [bad, said] of [
    ['a', 'two or more'],
    ['a,a', 'each profile once'],
    ['a,B', '"B"'],
    ['a,', '""'],
    ['a,../x', '"../x"'],
  ]) {
    expect(() => profileList(bad)).toThrow(InvalidArgumentError);
    expect(() => profileList(bad)).toThrow(said);
  }
  expect(rounds('5')).toBe(5);
  for (const bad of ['0', '101', '2.5']) expect(() => rounds(bad)).toThrow(/whole number of rounds from 1 to 100/);
});
