import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError } from 'commander';
import { blockSize, concurrency, durationSeconds, operations, warmupSeconds } from '../runner/commands/benchmark.js';
import { describeChanges } from './gate.js';
import { parseDriverEvent, progressLine, remainingSeconds, type DriverEvent, type RunPlan } from './progress.js';
import { checkResultsDir, createRunDir, MIN_FREE_BYTES, runFolderName, writeFileAtomic } from './results-dir.js';
import { FailedError, RefusedError } from '../errors.js';

describe('benchmark options', () => {
  const refused = (parse: (v: string) => unknown, value: string) => {
    try {
      parse(value);
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidArgumentError);
      return (err as Error).message;
    }
    throw new Error(`${value} was accepted`);
  };

  test('block sizes in bytes, Ki or Mi, from 1 byte to 16Mi', () => {
    expect([blockSize('4096'), blockSize('64Ki'), blockSize('1Mi'), blockSize('16Mi')]).toEqual([
      4096, 65536, 1048576, 16777216,
    ]);
    for (const bad of ['0', '17Mi', '4k', '-1', '1.5Ki', '4096B'])
      expect(refused(blockSize, bad)).toContain(`got "${bad}"`);
    expect(refused(blockSize, '4k')).toContain('such as 4096, 64Ki or 1Mi');
  });

  test("operations: known ones, each once, run in upstream's order", () => {
    expect(operations('listdir,write')).toEqual(['write', 'listdir']);
    expect(operations('write,read,stat,create,listdir')).toEqual(['write', 'read', 'stat', 'create', 'listdir']);
    expect(refused(operations, 'write,delete')).toContain('unknown "delete"');
    expect(refused(operations, 'stat,stat')).toContain('stat more than once');
    expect(refused(operations, 'write,')).toContain('unknown ""');
  });

  test('durations, warm-ups and workers within their ranges', () => {
    expect([durationSeconds('30'), durationSeconds('2.5'), warmupSeconds('0'), concurrency('1024')]).toEqual([
      30, 2.5, 0, 1024,
    ]);
    for (const bad of ['0', '-1', '1e3', '86401', 'ten'])
      expect(refused(durationSeconds, bad)).toContain('seconds per phase');
    expect(refused(warmupSeconds, '3601')).toContain('from 0 to 3600');
    for (const bad of ['0', '1025', '2.5']) expect(refused(concurrency, bad)).toContain('whole number of workers');
  });
});

describe('progress', () => {
  const plan: RunPlan = { operations: ['write', 'read', 'stat'], warmupSeconds: 5, durationSeconds: 30 };
  const at = (operation: 'write' | 'read' | 'stat', stage: 'warmup' | 'measure', elapsed: number) =>
    ({
      type: 'progress',
      operation,
      stage,
      elapsed_s: elapsed,
      stage_s: stage === 'warmup' ? 5 : 30,
      ok: 10,
      errors: 0,
      rate: 1234.4,
    }) as Extract<DriverEvent, { type: 'progress' }>;

  test('time left counts the rest of this stage, this phase and every later phase', () => {
    expect(remainingSeconds(plan, at('write', 'warmup', 0))).toBe(5 + 30 + 2 * 35);
    expect(remainingSeconds(plan, at('read', 'measure', 10))).toBe(20 + 35);
    expect(remainingSeconds(plan, at('stat', 'measure', 30))).toBe(0);
  });

  test('a line says the phase, the stage, elapsed and remaining time, and the live rate', () => {
    expect(progressLine(plan, at('read', 'measure', 10))).toBe(
      'read 2/3 measure 10s of 30s  1,234 ok/s  0 errors  ~55s left',
    );
    expect(progressLine(plan, at('write', 'warmup', 0))).toContain('~1m45s left');
  });

  test("only the driver's JSON events are parsed; anything else on its output is not", () => {
    expect(parseDriverEvent('{"type":"done","interrupted":true}')).toEqual({ type: 'done', interrupted: true });
    expect(parseDriverEvent('{"type":"other"}')).toBeUndefined();
    expect(parseDriverEvent('{"type": broken')).toBeUndefined();
    expect(parseDriverEvent('write benchmark complete')).toBeUndefined();
  });
});

test('the pods compared before and after a run: replaced, restarted, gone and new pods are each named', () => {
  const before = [
    { name: 'sandstore-0', uid: 'a', restarts: 0 },
    { name: 'sandstore-1', uid: 'b', restarts: 1 },
    { name: 'sandstore-2', uid: 'c', restarts: 0 },
  ];
  expect(describeChanges(before, before)).toEqual([]);
  expect(
    describeChanges(before, [
      { name: 'sandstore-0', uid: 'x', restarts: 0 },
      { name: 'sandstore-1', uid: 'b', restarts: 2 },
      { name: 'sandstore-3', uid: 'd', restarts: 0 },
    ]),
  ).toEqual([
    'pod sandstore-0 was replaced (deleted and created again)',
    'pod sandstore-1 restarted (1 → 2 restarts)',
    'pod sandstore-2 is gone',
    'pod sandstore-3 appeared',
  ]);
});

describe('results/', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'results-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('a run folder is named by its UTC start, without colons, and never reused', () => {
    const when = new Date('2026-12-06T04:31:07.123Z');
    expect(runFolderName(when)).toBe('2026-12-06T04-31-07Z');
    const first = createRunDir(dir, 'local-node', when);
    const second = createRunDir(dir, 'local-node', when);
    expect([first.id, second.id]).toEqual(['local-node/2026-12-06T04-31-07Z', 'local-node/2026-12-06T04-31-08Z']);
    expect(readdirSync(join(dir, 'local-node')).sort()).toEqual(['2026-12-06T04-31-07Z', '2026-12-06T04-31-08Z']);
  });

  test('a results directory that cannot be created is refused, naming it', () => {
    expect(() => checkResultsDir('/etc/passwd/results')).toThrow(RefusedError);
    expect(() => checkResultsDir('/etc/passwd/results')).toThrow(
      /results directory \/etc\/passwd\/results is not writable: ENOTDIR/,
    );
    checkResultsDir(join(dir, 'new', 'results'));
    expect(existsSync(join(dir, 'new', 'results'))).toBe(true);
  });

  test('a results directory on a nearly full file system is refused before anything is measured', () => {
    // A real small file system (root: CI and the e2e suite run as root), so the guard reads real numbers.
    const mount = join(dir, 'small');
    mkdirSync(mount);
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${MIN_FREE_BYTES / 2}`, 'tmpfs', mount]);
    try {
      expect(() => checkResultsDir(mount)).toThrow(/has 32\.0 MiB free, less than the 64 MiB a run needs/);
    } finally {
      execFileSync('umount', [mount]);
    }
    checkResultsDir(dir);
  });

  test('a record the disk has no room for: one sentence naming it and ENOSPC, the previous record whole, no temporary file', () => {
    // A real tmpfs that fills up (root), a record bigger than the room left.
    const mount = join(dir, 'full');
    mkdirSync(mount);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mount]);
    try {
      const record = join(mount, 'run.json');
      writeFileAtomic(record, '{"previous": true}\n');
      const big = `${JSON.stringify({ samples: 'x'.repeat(128 * 1024) })}\n`;
      expect(() => writeFileAtomic(record, big)).toThrow(FailedError);
      expect(() => writeFileAtomic(record, big)).toThrow(
        new RegExp(`^cannot write ${record}: no space left on the device \\(ENOSPC\\)$`),
      );
      expect(readFileSync(record, 'utf8')).toBe('{"previous": true}\n');
      expect(readdirSync(mount)).toEqual(['run.json']);
      // The control: a record that fits replaces it.
      writeFileAtomic(record, '{"next": true}\n');
      expect(readFileSync(record, 'utf8')).toBe('{"next": true}\n');
    } finally {
      execFileSync('umount', [mount]);
    }
  });
});
