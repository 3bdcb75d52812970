import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { CommandContext } from '../runner/commands/context.js';
import { Reporter } from '../runner/report.js';
import type { RunStatus } from './record.js';
import { INVALID_REPEATS, runStudy, type StudyHooks } from './run-study.js';
import { planStudy, readStudy, STUDY_SCHEMA, type StudyRecord } from './study.js';

/**
 * The study's own decisions, with the runs themselves stood in for (each outcome is what runOne
 * reports; the real runs are test/e2e/study*.test.ts's): what is measured again, and what is kept.
 */
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function studyOf(profiles: string[]): StudyRecord {
  return {
    schema: STUDY_SCHEMA,
    id: 'studies/2026-12-06T05-00-00Z',
    createdAt: '2026-12-06T05:00:00.000Z',
    profiles,
    repeat: 1,
    load: { duration_s: 1, warmup_s: 0, concurrency: 1, block_size_bytes: 4096, operations: ['stat'] },
    entries: planStudy(profiles, 1),
  };
}

/** Runs a one-profile study whose runs end with `outcomes`, in order; returns the record as written. */
async function studyWith(outcomes: RunStatus[]): Promise<{ record: StudyRecord; runs: number; said: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'run-study-'));
  dirs.push(dir);
  const err = new PassThrough();
  let said = '';
  err.on('data', (d: Buffer) => (said += d.toString()));
  let runs = 0;
  const hooks: StudyHooks = {
    report: new Reporter(new PassThrough().resume(), err),
    signal: new AbortController().signal,
    openContext: () => Promise.resolve({ ctx: {} as CommandContext, release: () => Promise.resolve() }),
    runOne: () => {
      const status = outcomes[runs++];
      return Promise.resolve({ id: `a/${runs}`, status, reasons: status === 'valid' ? [] : ['the leader changed'] });
    },
    resumeCommand: 'npm run benchmark -- --resume',
  };
  await runStudy(dir, studyOf(['a']), hooks);
  return { record: readStudy(dir), runs, said };
}

test('an invalid run is measured again once; the study counts the new run and keeps the invalid one', async () => {
  const { record, runs, said } = await studyWith(['invalid', 'valid']);
  expect(runs).toBe(2);
  expect(record.entries[0]).toMatchObject({
    run: 'a/2',
    status: 'valid',
    replaced: [{ run: 'a/1', reasons: ['the leader changed'] }],
  });
  expect(said).toContain('run a/1 is invalid (the leader changed); measuring it again');
});

test(`an entry invalid ${INVALID_REPEATS + 1} times stays invalid: the study shows it rather than trying forever`, async () => {
  const { record, runs } = await studyWith(['invalid', 'invalid', 'valid']);
  expect(runs).toBe(INVALID_REPEATS + 1);
  expect(record.entries[0]).toMatchObject({ run: 'a/2', status: 'invalid', replaced: [{ run: 'a/1' }] });
});

test('valid and failed runs are not measured again', async () => {
  for (const status of ['valid', 'failed'] as const) {
    const { record, runs } = await studyWith([status, 'valid']);
    expect(runs).toBe(1);
    expect(record.entries[0].replaced).toBeUndefined();
  }
});
