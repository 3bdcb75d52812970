import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { RefusedError } from '../errors.js';
import {
  barLabel,
  CHART_HEIGHT,
  CHART_WIDTH,
  chartFontFiles,
  legendRows,
  PNG_SCALE,
  svgToPng,
  textWidth,
} from './chart.js';
import { compareRuns, type CompareOptions } from './compare.js';
import {
  DRIVER_SUMMARY_SCHEMA,
  DriverSummary,
  OPERATIONS,
  RUN_RECORD_SCHEMA,
  RunRecord,
  type Operation,
  type RunStatus,
} from './record.js';
import { fieldPath } from './runs.js';
import type { ProcessTarget } from './baseline-record.js';
import { ratioOfMedians } from './baseline-compare.js';
import { formatNumber, formatP, formatSigned, formatSpread } from './table.js';

/**
 * --compare on run folders built here, whose records go through record.ts's schemas (so a test
 * cannot pass on a record the benchmark command would never write). Every expected number is
 * computed by hand in the test, not by the code under test.
 */

/** What one phase measured; the rest of the phase is derived. */
interface PhaseSpec {
  readonly p50: number;
  readonly p95?: number;
  readonly p99?: number;
  readonly opsPerSecond?: number;
  readonly errors?: number;
}

interface RunSpec {
  readonly status?: RunStatus;
  readonly reasons?: string[];
  readonly phases?: Partial<Record<Operation, PhaseSpec>>;
  readonly startedAt?: string;
  /** A process baseline's run (--baseline=processes). */
  readonly target?: ProcessTarget;
}

const DRIVER_OPTIONS = {
  seeds: ['127.0.0.1:30001'],
  concurrency: 8,
  block_size_bytes: 4096,
  duration_s: 30,
  warmup_s: 5,
  operations: [...OPERATIONS],
};

function runRecord(id: string, spec: RunSpec): RunRecord {
  const profile = id.split('/')[0] ?? id;
  return RunRecord.parse({
    schema: RUN_RECORD_SCHEMA,
    id,
    status: spec.status ?? 'valid',
    reasons: spec.reasons ?? [],
    startedAt: spec.startedAt ?? '2025-06-01T10:00:00Z',
    endedAt: '2025-06-01T10:03:00Z',
    durationSeconds: 180,
    profile: { name: profile, values: { replicas: 3 }, distDigest: `sha256:${'a'.repeat(64)}` },
    cluster: {
      context: 'sandstore-local',
      server: 'https://127.0.0.1:6443',
      namespace: profile,
      nodes: [
        {
          name: 'node-1',
          kernelVersion: '6.1.0',
          osImage: 'Debian 12',
          containerRuntime: 'containerd://1.7',
          kubeletVersion: 'v1.28.15',
          architecture: 'amd64',
          cpu: '2',
          memory: '24Gi',
        },
      ],
      pods: [
        {
          name: 'sandstore-0',
          node: 'node-1',
          restarts: 0,
          containers: [
            {
              name: 'sandstore',
              image: 'sandstore:dev',
              imageID: `docker.io/library/sandstore@sha256:${'b'.repeat(64)}`,
            },
          ],
        },
      ],
    },
    leadership: { before: { leader: 'sandstore-0', term: 1 }, after: { leader: 'sandstore-0', term: 1 } },
    sandstore: { source: '/src/sandstore', revision: 'c'.repeat(40), contentDigest: `sha256:${'d'.repeat(64)}` },
    driver: {
      options: DRIVER_OPTIONS,
      binaryDigest: `sha256:${'e'.repeat(64)}`,
      exitCode: spec.status === 'failed' ? 1 : 0,
    },
    project: { revision: 'f'.repeat(40), dirty: false },
    ...(spec.target ? { target: spec.target } : {}),
  });
}

function driverSummary(spec: RunSpec): DriverSummary {
  const phases = Object.entries(spec.phases ?? {}).map(([operation, p]) => ({
    operation,
    started_at: '2025-06-01T10:00:05Z',
    measured_s: 30,
    complete: true,
    total_ops: 1000 + (p.errors ?? 0),
    ok_ops: 1000,
    error_count: p.errors ?? 0,
    errors: p.errors ? { 'Unavailable: connection refused': p.errors } : {},
    ops_per_s: p.opsPerSecond ?? 100,
    latency_ms: {
      p50: p.p50,
      p90: p.p95 ?? p.p50,
      p95: p.p95 ?? p.p50,
      p99: p.p99 ?? p.p50,
      p999: p.p99 ?? p.p50,
      p100: p.p99 ?? p.p50,
      min: 0,
      mean: p.p50,
    },
    histogram: 'HISTFAAAAAAA',
    timeline: [{ t: 0, ok: 100, errors: 0, p50_ms: p.p50, p99_ms: p.p99 ?? p.p50, max_ms: p.p99 ?? p.p50 }],
    warmup: { seconds: 5, ops: 50, errors: 0 },
  }));
  return DriverSummary.parse({
    schema: DRIVER_SUMMARY_SCHEMA,
    driver: { version: 'test', go: 'go1.23' },
    options: DRIVER_OPTIONS,
    started_at: '2025-06-01T10:00:00Z',
    ended_at: '2025-06-01T10:03:00Z',
    interrupted: spec.status === 'interrupted',
    phases,
    memory: { max_rss_bytes: 1 << 20, samples: 1000 },
  });
}

let root: string;
let results: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'sandstore-compare-'));
  results = join(root, 'results');
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** Writes results/<id>/ with run.json and (unless the run failed) summary.json; returns the folder. */
function writeRun(id: string, spec: RunSpec): string {
  const dir = join(results, id);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'run.json'), JSON.stringify(runRecord(id, spec), null, 2));
  if (spec.status !== 'failed') writeFileSync(join(dir, 'summary.json'), JSON.stringify(driverSummary(spec), null, 2));
  return dir;
}

const options = (selectors: string[] = [], more: Partial<CompareOptions> = {}): CompareOptions => ({
  selectors,
  resultsDir: results,
  outDir: join(root, 'out'),
  includeInvalid: false,
  ...more,
});

/** The cells of the results table's row for `op` and a group whose cell starts with `group`. */
function row(markdown: string, op: Operation, group: string): string[] {
  const line = markdown.split('\n').find((l) => {
    const cells = l.split('|').map((c) => c.trim());
    return cells[1] === op && (cells[2] ?? '').startsWith(group);
  });
  if (!line) throw new Error(`no row for ${op} ${group} in:\n${markdown}`);
  return line
    .split('|')
    .slice(1, -1)
    .map((c) => c.trim());
}

/** The reason a promise was refused (a RefusedError), for assertions on its words. */
async function refusal(promise: Promise<unknown>): Promise<RefusedError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RefusedError);
  return err as RefusedError;
}

const allText = (err: RefusedError) => [err.message, ...err.details].join('\n');

/** Three alpha runs and two beta runs, with numbers whose medians are worked out in the tests. */
function alphaAndBeta(): void {
  writeRun('alpha/2025-06-01T10-00-00Z', {
    phases: { write: { p50: 1, p95: 2, p99: 5, opsPerSecond: 100, errors: 1 }, stat: { p50: 0.2 } },
  });
  writeRun('alpha/2025-06-01T11-00-00Z', {
    phases: { write: { p50: 10, p95: 6, p99: 50, opsPerSecond: 300, errors: 2 }, stat: { p50: 0.4 } },
  });
  writeRun('alpha/2025-06-01T12-00-00Z', {
    phases: { write: { p50: 3, p95: 4, p99: 20, opsPerSecond: 200, errors: 3 }, stat: { p50: 0.3 } },
  });
  writeRun('beta/2025-06-02T10-00-00Z', {
    phases: { write: { p50: 2, p95: 3, p99: 9, opsPerSecond: 50 }, read: { p50: 1.5 } },
  });
  writeRun('beta/2025-06-02T11-00-00Z', {
    phases: { write: { p50: 4, p95: 5, p99: 11, opsPerSecond: 70 }, read: { p50: 2.5 } },
  });
}

describe('number formatting', () => {
  test('about three significant digits, never exponents', () => {
    expect([0.0123, 0.5, 3, 12.345, 150.4, 12345.6].map(formatNumber)).toEqual([
      '0.012',
      '0.500',
      '3.00',
      '12.3',
      '150',
      '12346',
    ]);
  });
  test('a median shows its 95% interval in brackets; one run has none', () => {
    expect(formatSpread({ median: 0.61, interval: { low: 0.55, high: 0.7 } })).toBe('0.610 [0.550–0.700]');
    expect(formatSpread({ median: 3, interval: undefined })).toBe('3.00');
  });
  test('differences carry their sign; p-values three decimals', () => {
    expect([-5, 0, 12.5].map(formatSigned)).toEqual(['-5.00', '0', '+12.5']);
    expect([0.0286, 0.5, 0.0004].map(formatP)).toEqual(['0.029', '0.500', '< 0.001']);
  });
  test('bar labels are short', () => {
    expect([0.213, 4.2, 37.8, 900, 1500, 15000].map(barLabel)).toEqual(['0.21', '4.2', '38', '900', '1.5k', '15k']);
  });
  test("zod's issue path reads as a field", () => {
    expect(fieldPath(['cluster', 'pods', 0, 'restarts'])).toBe('cluster.pods[0].restarts');
    expect(fieldPath([])).toBe('(the whole file)');
  });
});

describe('the table', () => {
  test(
    'per profile: medians over its runs, their 95% interval, summed errors, n; operations ' +
      'in the driver\'s order; "–" where a group lacks one',
    async () => {
      alphaAndBeta();
      const c = await compareRuns(options(['alpha', 'beta']));
      const md = readFileSync(c.markdownPath, 'utf8');
      // alpha write: p50 of 1, 10, 3 is 3; p95 of 2, 6, 4 is 4; p99 of 5, 50, 20 is 20; ops/s of 100,
      // 300, 200 is 200; errors 1 + 2 + 3.
      // With 2 to 5 runs the bootstrap interval of the median is the runs' range (stats.test.ts).
      expect(row(md, 'write', 'alpha')).toEqual([
        'write',
        'alpha',
        '3.00 [1.00–10.0]',
        '4.00 [2.00–6.00]',
        '20.0 [5.00–50.0]',
        '200 [100–300]',
        '6',
        '3',
      ]);
      // beta write, two runs: the median is the mean of the two: (2 + 4) / 2, (3 + 5) / 2, (9 + 11) / 2, (50 + 70) / 2.
      expect(row(md, 'write', 'beta')).toEqual([
        'write',
        'beta',
        '3.00 [2.00–4.00]',
        '4.00 [3.00–5.00]',
        '10.0 [9.00–11.0]',
        '60.0 [50.0–70.0]',
        '0',
        '2',
      ]);
      expect(row(md, 'read', 'alpha')).toEqual(['read', 'alpha', '–', '–', '–', '–', '–', '–']);
      expect(row(md, 'read', 'beta').slice(2, 3)).toEqual(['2.00 [1.50–2.50]']);
      expect(row(md, 'stat', 'alpha').slice(2, 3)).toEqual(['0.300 [0.200–0.400]']);
      expect(md).toContain('95% confidence interval of that median: a percentile bootstrap (10,000 resamples, seeded');
      expect(md).toContain('One run: no interval.');
      // write, read, stat (the driver's order), and neither create nor listdir: no run measured them.
      const ops = md
        .split('\n')
        .map((l) => l.split('|')[1]?.trim())
        .filter((op): op is Operation => (OPERATIONS as readonly string[]).includes(op ?? ''));
      expect([...new Set(ops)]).toEqual(['write', 'read', 'stat']);
      expect(c.groups.map((g) => g.group.label)).toEqual(['alpha', 'beta']);
    },
  );

  test('the Markdown says what was compared: run ids, profiles, driver options, image digests', async () => {
    alphaAndBeta();
    const c = await compareRuns(options());
    const md = readFileSync(c.markdownPath, 'utf8');
    expect(md).toMatch(/^# Sand Store benchmark comparison/);
    for (const id of ['alpha/2025-06-01T10-00-00Z', 'alpha/2025-06-01T12-00-00Z', 'beta/2025-06-02T11-00-00Z'])
      expect(md).toContain(`\`${id}\``);
    expect(md).toContain('### alpha');
    expect(md).toContain('### beta');
    expect(md).toContain(`docker.io/library/sandstore@sha256:${'b'.repeat(64)}`);
    expect(md).toMatch(/\| +8 \| +4096 \| 30 \(\+5\) /);
    expect(md).toContain('![Latency percentiles and throughput per operation](chart.png)');
  });

  test('the terminal table is aligned plain text with the same numbers', async () => {
    alphaAndBeta();
    const c = await compareRuns(options(['alpha', 'beta']));
    const [results = '', verdicts = ''] = c.terminalTable.split('\nAgainst alpha ');
    const lines = results.split('\n').filter((l) => l !== '');
    expect(lines[0]).toMatch(/^operation +group +p50 ms +p95 ms +p99 ms +ops\/s +errors +runs$/);
    // The last column is right-aligned, so every line of the table ends in the same column.
    expect(new Set(lines.map((l) => [...l].length)).size).toBe(1);
    expect(c.terminalTable).toMatch(/write +alpha +3\.00 \[1\.00–10\.0\] +4\.00 \[2\.00–6\.00\]/);
    // Then the verdicts against the first group, aligned as well.
    // beta's 2 runs beside alpha's 3 allow no verdict anywhere: one line says so instead of a table of dashes.
    expect(verdicts).toBe(
      '(rank-sum test over the runs, p < 0.05 for a verdict; see comparison.md):\n' +
        'beta: no verdict possible on any operation with 2 runs beside 3; a verdict needs at ' +
        'least 4 runs in each group (or 3 beside 5, 2 beside 8).',
    );
    expect(c.terminalTable).not.toContain('\x1b[');
  });

  test('one column per run when run folders are named', async () => {
    alphaAndBeta();
    const first = join(results, 'alpha/2025-06-01T10-00-00Z');
    const c = await compareRuns(options([first, 'beta/2025-06-02T10-00-00Z', first]));
    expect(c.groups.map((g) => g.group.label)).toEqual(['alpha/2025-06-01T10-00-00Z', 'beta/2025-06-02T10-00-00Z']);
    const md = readFileSync(c.markdownPath, 'utf8');
    expect(row(md, 'write', 'alpha/2025-06-01T10-00-00Z')).toEqual([
      'write',
      'alpha/2025-06-01T10-00-00Z',
      '1.00',
      '2.00',
      '5.00',
      '100',
      '1',
      '1',
    ]);
  });

  test('a run id the command made absolute from where npm was started still names the run', async () => {
    alphaAndBeta();
    const saved = process.env.INIT_CWD;
    process.env.INIT_CWD = join(root, 'elsewhere');
    try {
      const c = await compareRuns(options([join(root, 'elsewhere', 'beta/2025-06-02T11-00-00Z')]));
      expect(c.runs.map((r) => r.dir)).toEqual([join(results, 'beta/2025-06-02T11-00-00Z')]);
    } finally {
      if (saved === undefined) delete process.env.INIT_CWD;
      else process.env.INIT_CWD = saved;
    }
  });

  test('runs that measured nothing are refused', async () => {
    writeRun('delta/2025-06-04T10-00-00Z', { phases: {} });
    const err = await refusal(compareRuns(options(['delta'])));
    expect(err.message).toContain('measured no operation');
    expect(existsSync(join(root, 'out'))).toBe(false);
  });
});

/**
 * Four runs each of a reference (slow) and a faster profile: enough for a verdict (the smallest
 * two-sided p with 4 and 4 runs is 2/70). write p50: slow 10–13, fast 5–8, apart; p99: 20–50
 * against 25–55, interleaved; ops/s: 100–106 against 150–156, apart.
 */
function slowAndFast(): void {
  const slow = [
    [10, 20, 100],
    [11, 30, 102],
    [12, 40, 104],
    [13, 50, 106],
  ] as const;
  const fast = [
    [5, 25, 150],
    [6, 35, 152],
    [7, 45, 154],
    [8, 55, 156],
  ] as const;
  slow.forEach(([p50, p99, ops], i) =>
    writeRun(`slow/2025-06-05T1${i}-00-00Z`, {
      phases: { write: { p50, p95: p50, p99, opsPerSecond: ops }, stat: { p50: 1 + i } },
    }),
  );
  // Only two of fast's runs measured stat: too few for a verdict on it.
  fast.forEach(([p50, p99, ops], i) =>
    writeRun(`fast/2025-06-06T1${i}-00-00Z`, {
      phases: { write: { p50, p95: p50, p99, opsPerSecond: ops }, ...(i < 2 ? { stat: { p50: 0.5 + i } } : {}) },
    }),
  );
}

/** The cells of the verdicts table's row for `op`, `metric` and `group`. */
function verdictRow(markdown: string, op: Operation, metric: string, group: string): string[] {
  const section = markdown.split('## Verdicts against ')[1] ?? '';
  const line = section.split('\n').find((l) => {
    const cells = l.split('|').map((c) => c.trim());
    return cells[1] === op && cells[2] === metric && cells[3] === group;
  });
  if (!line) throw new Error(`no verdict for ${op} ${metric} ${group} in:\n${markdown}`);
  return line
    .split('|')
    .slice(1, -1)
    .map((c) => c.trim());
}

describe('verdicts against the first group', () => {
  test(
    '4 runs each: faster, or no difference the data can show, with p, the change, its ' +
      'interval and the detectable difference',
    async () => {
      slowAndFast();
      const c = await compareRuns(options(['slow', 'fast']));
      const md = readFileSync(c.markdownPath, 'utf8');
      expect(md).toContain('## Verdicts against slow');
      // p50: every fast run below every slow one: U = 0, exact p = 2/70 = 0.029. The 16 differences
      // fast − slow run from 5 − 13 = −8 to 8 − 10 = −2, their median −5, which is −43% of slow's
      // median 11.5; criticalU(4, 4) = 0 leaves all 16 in the interval, −8 to −2, and half its
      // width, 3, is the detectable difference (26% of 11.5).
      expect(verdictRow(md, 'write', 'p50', 'fast')).toEqual([
        'write',
        'p50',
        'fast',
        'faster',
        '-5.00 ms (-43%)',
        '[-8.00, -2.00]',
        '0.029',
        'exact',
        '3.00 ms (26%)',
      ]);
      // p99: 25, 35, 45, 55 against 20, 30, 40, 50: U = 1 + 2 + 3 + 4 = 10 of 16; P(U ≥ 10) for 4 and 4 is
      // (7 + 5 + 5 + 3 + 2 + 1 + 1) / 70 = 24/70, so p = 48/70 = 0.686. The differences run from −25 to 35,
      // median 5 (+14% of 35); the detectable difference is half of 60, 30 (86% of 35).
      expect(verdictRow(md, 'write', 'p99', 'fast')).toEqual([
        'write',
        'p99',
        'fast',
        'no difference the data can show',
        '+5.00 ms (+14%)',
        '[-25.0, +35.0]',
        '0.686',
        'exact',
        '30.0 ms (86%)',
      ]);
      // ops/s: higher is faster. Differences 44 to 56, median 50, +49% of 103; detectable 6 (5.8%).
      expect(verdictRow(md, 'write', 'ops/s', 'fast')).toEqual([
        'write',
        'ops/s',
        'fast',
        'faster',
        '+50.0 ops/s (+49%)',
        '[+44.0, +56.0]',
        '0.029',
        'exact',
        '6.00 ops/s (5.8%)',
      ]);
      // stat: 2 runs beside 4 cannot reach p < 0.05: at best 2 / C(6, 2) = 0.133.
      expect(verdictRow(md, 'stat', 'p50', 'fast')).toEqual([
        'stat',
        'p50',
        'fast',
        'no verdict possible (2 + 4 runs)',
        '–',
        '–',
        '≥ 0.133',
        '–',
        'none: 4 runs each needed',
      ]);
      expect(c.verdicts.map((v) => `${v.operation} ${v.metric.label} ${v.verdict.kind}`)).toEqual([
        'write p50 faster',
        'write p99 no difference',
        'write ops/s faster',
        'stat p50 no verdict possible',
        'stat p99 no verdict possible',
        'stat ops/s no verdict possible',
      ]);
      // The other way round, the same runs are slower: +5 is 77% of fast's median 6.5, and 3 is 46% of it.
      const back = await compareRuns(options(['fast', 'slow'], { outDir: join(root, 'back') }));
      expect(verdictRow(readFileSync(back.markdownPath, 'utf8'), 'write', 'p50', 'slow').slice(3, 5)).toEqual([
        'slower',
        '+5.00 ms (+77%)',
      ]);
      expect(back.terminalTable).toMatch(
        /write +p50 +slow +slower +\+5\.00 ms \(\+77%\) +\[\+2\.00, \+8\.00\] +0\.029 +3\.00 ms \(46%\)/,
      );
      // The terminal leaves the test column out, for width; comparison.md has it.
      expect(back.terminalTable).not.toMatch(/\bexact\b/);
    },
  );

  test(
    'a group too small for any verdict gets a line saying so and how many runs are needed, ' + 'not rows of dashes',
    async () => {
      alphaAndBeta();
      const c = await compareRuns(options(['alpha', 'beta']));
      const md = readFileSync(c.markdownPath, 'utf8');
      // 2 and 3 runs: the smallest two-sided p is 2 / C(5, 2) = 0.2. Only write was measured by both.
      expect(c.verdicts.map((v) => `${v.operation} ${v.metric.label} ${v.verdict.kind}`)).toEqual([
        'write p50 no verdict possible',
        'write p99 no verdict possible',
        'write ops/s no verdict possible',
      ]);
      const section = md.split('## Verdicts against alpha\n')[1]?.split('\n## ')[0] ?? '';
      expect(section).toContain(
        '\n- beta: no verdict possible on any operation with 2 runs beside 3; a verdict needs ' +
          'at least 4 runs in each group (or 3 beside 5, 2 beside 8).\n',
      );
      expect(section).not.toContain('| write');
      expect(section).toContain('A verdict needs at least 4 runs in each group (or 3 beside 5, 2 beside 8)');
    },
  );

  test('a single group has nothing to be compared with: no verdicts', async () => {
    alphaAndBeta();
    const c = await compareRuns(options(['alpha']));
    expect(c.verdicts).toEqual([]);
    expect(readFileSync(c.markdownPath, 'utf8')).not.toContain('## Verdicts');
    expect(c.terminalTable).not.toContain('Against');
  });
});

describe('invalid, interrupted and failed runs', () => {
  beforeEach(() => {
    alphaAndBeta();
    writeRun('alpha/2025-06-01T13-00-00Z', {
      status: 'invalid',
      reasons: ['pod sandstore-1 restarted'],
      phases: { write: { p50: 1000 } },
    });
    writeRun('alpha/2025-06-01T14-00-00Z', {
      status: 'failed',
      reasons: ['driver exited with code 1: no route to host'],
    });
  });

  test('are listed with status and reasons but left out of the numbers', async () => {
    const c = await compareRuns(options(['alpha']));
    const md = readFileSync(c.markdownPath, 'utf8');
    expect(row(md, 'write', 'alpha *').slice(2, 3)).toEqual(['3.00 [1.00–10.0]']);
    expect(row(md, 'write', 'alpha *')[7]).toBe('3');
    expect(md).toContain('- alpha/2025-06-01T13-00-00Z: invalid (pod sandstore-1 restarted)');
    expect(md).toContain('- alpha/2025-06-01T14-00-00Z: failed (driver exited with code 1: no route to host)');
    expect(c.terminalTable).toContain('alpha/2025-06-01T13-00-00Z: invalid (pod sandstore-1 restarted)');
    expect(c.runs.filter((r) => !r.counted).map((r) => r.status)).toEqual(['invalid', 'failed']);
  });

  test('--include-invalid counts invalid ones (marked), never failed ones', async () => {
    const c = await compareRuns(options(['alpha'], { includeInvalid: true }));
    const md = readFileSync(c.markdownPath, 'utf8');
    // p50 of 1, 10, 3, 1000: the mean of the middle two, (3 + 10) / 2; four runs: the interval is their range.
    expect(row(md, 'write', 'alpha * †').slice(2, 3)).toEqual(['6.50 [1.00–1000]']);
    expect(row(md, 'write', 'alpha * †')[7]).toBe('4');
    expect(md).toContain('counted although not valid');
    expect(c.runs.filter((r) => !r.counted).map((r) => r.status)).toEqual(['failed']);
  });

  test(
    'nothing countable is refused, saying which runs were left out, why, and what ' +
      '--include-invalid does; nothing written',
    async () => {
      writeRun('gamma/2025-06-03T10-00-00Z', {
        status: 'interrupted',
        reasons: ['interrupted (Ctrl-C) during read'],
        phases: { write: { p50: 1 } },
      });
      writeRun('gamma/2025-06-03T11-00-00Z', { status: 'failed', reasons: ['driver exited with code 2'] });
      const err = await refusal(compareRuns(options(['gamma'])));
      expect(err.exitCode).toBe(2);
      expect(allText(err)).toContain('gamma/2025-06-03T10-00-00Z: interrupted (interrupted (Ctrl-C) during read)');
      expect(allText(err)).toContain('gamma/2025-06-03T11-00-00Z: failed (driver exited with code 2)');
      expect(allText(err)).toContain('--include-invalid');
      expect(existsSync(join(root, 'out'))).toBe(false);
      // The interrupted run counts when asked.
      const c = await compareRuns(options(['gamma'], { includeInvalid: true }));
      expect(c.runs.filter((r) => r.counted).map((r) => r.id)).toEqual(['gamma/2025-06-03T10-00-00Z']);
    },
  );
});

describe('refusals write nothing', () => {
  beforeEach(alphaAndBeta);
  const out = () => join(root, 'out');

  test('a run.json with a wrong field names the file and the field', async () => {
    const path = join(results, 'alpha/2025-06-01T11-00-00Z/run.json');
    const record = JSON.parse(readFileSync(path, 'utf8')) as { cluster: { pods: { restarts: number }[] } };
    record.cluster.pods[0].restarts = -1;
    writeFileSync(path, JSON.stringify(record));
    const err = await refusal(compareRuns(options()));
    expect(err.message).toContain(path);
    expect(err.message).toContain('cluster.pods[0].restarts');
    expect(existsSync(out())).toBe(false);
  });

  test('a foreign JSON file names its schema field; a file that is not JSON says so', async () => {
    const runPath = join(results, 'beta/2025-06-02T10-00-00Z/run.json');
    writeFileSync(runPath, JSON.stringify({ schema: 'someone-else/v9', id: 'x' }));
    const err = await refusal(compareRuns(options(['beta'])));
    expect(err.message).toContain(runPath);
    expect(err.message).toContain('field schema');
    const summaryPath = join(results, 'alpha/2025-06-01T10-00-00Z/summary.json');
    writeFileSync(summaryPath, '{"schema": ');
    const notJson = await refusal(compareRuns(options(['alpha'])));
    expect(notJson.message).toContain(summaryPath);
    expect(notJson.message).toContain('not JSON');
    expect(existsSync(out())).toBe(false);
  });

  test('a summary.json missing beside a counted run is named', async () => {
    const path = join(results, 'beta/2025-06-02T11-00-00Z/summary.json');
    rmSync(path);
    const err = await refusal(compareRuns(options(['beta'])));
    expect(err.message).toContain(path);
    expect(existsSync(out())).toBe(false);
  });

  test('an unknown selector is named, with the profiles and runs that exist', async () => {
    const err = await refusal(compareRuns(options(['alpha', 'gamma'])));
    expect(err.message).toContain('gamma');
    expect(allText(err)).toContain('alpha (3 runs), beta (2 runs)');
    expect(allText(err)).toContain('beta/2025-06-02T11-00-00Z');
    const path = await refusal(compareRuns(options([join(root, 'nowhere/2025-01-01T00-00-00Z')])));
    expect(path.message).toContain(join(root, 'nowhere/2025-01-01T00-00-00Z'));
    expect(existsSync(out())).toBe(false);
  });

  test(
    "a results folder without runs is refused; folders without run.json (a comparison's, " + 'say) are not profiles',
    async () => {
      const empty = join(root, 'empty-results');
      mkdirSync(join(empty, 'comparisons', '2025-06-01T00-00-00Z'), { recursive: true });
      const err = await refusal(compareRuns(options([], { resultsDir: empty })));
      expect(err.message).toContain(empty);
      expect(allText(err)).toContain('npm run benchmark -- --profile=<name>');
      mkdirSync(join(results, 'comparisons', '2025-06-01T00-00-00Z'), { recursive: true });
      const c = await compareRuns(options());
      expect(c.groups.map((g) => g.group.label)).toEqual(['alpha', 'beta']);
    },
  );

  test('an output folder that is not empty is refused and left as it was', async () => {
    mkdirSync(out());
    writeFileSync(join(out(), 'notes.txt'), 'mine');
    await refusal(compareRuns(options()));
    expect(readdirSync(out())).toEqual(['notes.txt']);
  });
});

describe('the chart', () => {
  let svg: string;
  let png: Buffer;
  let stated: { width: number; height: number };
  beforeEach(async () => {
    alphaAndBeta();
    const c = await compareRuns(options(['alpha', 'beta']));
    svg = readFileSync(c.svgPath, 'utf8');
    png = readFileSync(c.pngPath);
    stated = c.png;
  });

  /** Every text the SVG draws (echarts writes each label as a <text> element). */
  function svgTexts(text: string): string[] {
    const found: string[] = [];
    const walk = (node: unknown, inText: boolean): void => {
      if (typeof node === 'string' || typeof node === 'number') {
        if (inText) found.push(String(node));
      } else if (Array.isArray(node)) {
        for (const n of node) walk(n, inText);
      } else if (node && typeof node === 'object') {
        for (const [key, value] of Object.entries(node)) walk(value, key === 'text' || (inText && key === '#text'));
      }
    };
    walk(new XMLParser({ ignoreAttributes: true, textNodeName: '#text' }).parse(text), false);
    return found;
  }

  test('the SVG is XML with the series names, operations, titles and axis names as text', () => {
    expect(XMLValidator.validate(svg)).toBe(true);
    const texts = svgTexts(svg);
    for (const t of [
      'alpha',
      'beta',
      'write',
      'read',
      'stat',
      'p50 latency (ms)',
      'p99 latency (ms)',
      'successful operations per second',
      '95% CI of the median (bootstrap)',
    ]) {
      expect(texts).toContain(t);
    }
    expect(texts.some((t) => t.startsWith('Sand Store benchmark: alpha vs beta'))).toBe(true);
    expect(svg).toContain('font-family:DejaVu Sans');
  });

  test('the PNG decodes to the stated size (signature, then IHDR)', () => {
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect(png.toString('latin1', 12, 16)).toBe('IHDR');
    expect({ width: png.readUInt32BE(16), height: png.readUInt32BE(20) }).toEqual(stated);
    expect(stated).toEqual({ width: CHART_WIDTH * PNG_SCALE, height: CHART_HEIGHT * PNG_SCALE });
  });

  test('labels are drawn with the font that ships in node_modules, and only with it', async () => {
    const files = chartFontFiles();
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(readFileSync(f).readUInt32BE(0)).toBe(0x00010000); // a TrueType file
    const withoutText = svg.replace(/<text\b[^>]*>[^<]*<\/text>/g, '');
    expect(withoutText).not.toEqual(svg);
    const blank = (await svgToPng(withoutText)).data;
    // With the shipped font the labels make a different picture than no labels at all ...
    expect((await svgToPng(svg)).data.equals(blank)).toBe(false);
    // ... and without it (resvg is never let at the machine's fonts) they would not be drawn: the
    // font is what draws them.
    expect((await svgToPng(svg, [])).data.equals(blank)).toBe(true);
  });

  test("echarts' text layout uses the font's widths: a legend of long names wraps into rows", () => {
    expect(textWidth('iiii', '14px DejaVu Sans')).toBeLessThan(textWidth('WWWW', '14px DejaVu Sans'));
    expect(textWidth('abc', 'bold 16px DejaVu Sans')).toBeGreaterThan(textWidth('abc', '16px DejaVu Sans'));
    expect(legendRows(['alpha', 'beta'])).toBe(1);
    expect(legendRows(Array.from({ length: 8 }, (_, i) => `local-node/2025-06-01T1${i}-00-00Z`))).toBe(2);
  });
});

describe('the process baseline beside Kubernetes', () => {
  const target: ProcessTarget = {
    kind: 'processes',
    machine: {
      hostname: 'box',
      kernel: '6.1.0',
      os: 'Debian 12',
      architecture: 'amd64',
      cpus: 2,
      cpuModel: 'CPU',
      memoryBytes: 2 ** 34,
    },
    dataDir: { path: '/tmp/sandstore-baseline-x', fsType: 'ext4' },
    binaries: [
      {
        program: 'sandstore',
        image: 'localhost:5000/sandstore-node:t',
        imageDigest: `sha256:${'1'.repeat(64)}`,
        manifestDigest: `sha256:${'1'.repeat(64)}`,
        platform: 'linux/amd64',
        pathInImage: '/usr/local/bin/sandstore',
        sha256: '2'.repeat(64),
      },
    ],
    processes: [],
    differences: [],
    leftovers: [],
  };

  test(
    "a profile's baseline runs are a group of their own, and Kubernetes is a ratio of them " +
      'per operation, with the bootstrap interval',
    async () => {
      writeRun('alpha/2025-06-01T10-00-00Z', { phases: { write: { p50: 4, p99: 40, opsPerSecond: 100 } } });
      writeRun('alpha/2025-06-01T11-00-00Z', { phases: { write: { p50: 6, p99: 60, opsPerSecond: 200 } } });
      writeRun('alpha/2025-06-01T12-00-00Z', { target, phases: { write: { p50: 1, p99: 10, opsPerSecond: 300 } } });
      writeRun('alpha/2025-06-01T13-00-00Z', { target, phases: { write: { p50: 3, p99: 30, opsPerSecond: 500 } } });
      const c = await compareRuns(options(['alpha']));
      expect(c.groups.map((g) => [g.group.label, g.counted.length])).toEqual([
        ['alpha', 2],
        ['alpha (processes)', 2],
      ]);
      // Medians: Kubernetes p50 5, ops/s 150; processes p50 2, ops/s 400. With two runs a side the bootstrap's
      // 2.5% tail is the lowest ratio a resample can give (each side's lowest median over the other's highest:
      // 1/16 of the resamples, above 2.5%), and its 97.5% the highest.
      const write = (metric: string) =>
        c.baselines[0]?.ratios.find((r) => r.operation === 'write' && r.metric === metric)?.ratio;
      expect(write('p50')).toEqual({ value: 2.5, interval: { low: 4 / 3, high: 6 } });
      expect(write('ops/s')).toEqual({ value: 0.375, interval: { low: 100 / 500, high: 200 / 300 } });
      const markdown = readFileSync(c.markdownPath, 'utf8');
      expect(markdown).toContain('### alpha / alpha (processes)');
      expect(markdown).toMatch(/\| write +\| p50 +\| +5\.00 \| +2\.00 \| +2\.50× \[1\.33–6\.00\] \|/);
      expect(markdown).toMatch(/\| write +\| ops\/s +\| +150 \| +400 \| +0\.38× \[0\.20–0\.67\] \|/);
      expect(markdown).toContain(
        `- \`sha256:${'1'.repeat(64)}\`: sandstore /usr/local/bin/sandstore of ` +
          `localhost:5000/sandstore-node:t, sha256 \`${'2'.repeat(64)}\``,
      );
      expect(markdown).toContain(
        '- Processes on box (amd64, 2 CPU CPU, 16.0 GiB, Debian 12, kernel 6.1.0); data on ext4',
      );
      expect(c.terminalTable).toContain('alpha on Kubernetes as a multiple of alpha (processes)');
    },
  );

  test(
    'a ratio of single runs has no interval, a zero baseline no ratio, and the same runs ' +
      'always give the same interval',
    () => {
      expect(ratioOfMedians({ median: 3, values: [3] }, { median: 2, values: [2] })).toEqual({
        value: 1.5,
        interval: undefined,
      });
      expect(ratioOfMedians({ median: 3, values: [3, 3] }, { median: 0, values: [0, 0] })).toBeUndefined();
      const k = { median: 5, values: [4, 5, 6, 9, 2, 5] };
      const b = { median: 2, values: [1, 2, 3, 2, 2, 4] };
      expect(ratioOfMedians(k, b)).toEqual(ratioOfMedians(k, b));
      const r = ratioOfMedians(k, b)!;
      expect(r.interval!.low).toBeLessThanOrEqual(r.value);
      expect(r.interval!.high).toBeGreaterThanOrEqual(r.value);
    },
  );

  test(
    'run folders named one by one: the baseline run is marked, and set against the ' + 'Kubernetes run of its profile',
    async () => {
      const k8s = writeRun('alpha/2025-06-01T10-00-00Z', { phases: { stat: { p50: 3 } } });
      const other = writeRun('beta/2025-06-01T10-30-00Z', { phases: { stat: { p50: 9 } } });
      const processes = writeRun('alpha/2025-06-01T11-00-00Z', { target, phases: { stat: { p50: 2 } } });
      const c = await compareRuns(options([other, processes, k8s]));
      expect(c.groups.map((g) => g.group.label)).toEqual([
        'beta/2025-06-01T10-30-00Z',
        'alpha/2025-06-01T11-00-00Z (processes)',
        'alpha/2025-06-01T10-00-00Z',
      ]);
      expect(
        c.baselines.map((p) => [
          p.kubernetes.group.label,
          p.ratios.map((r) => [r.operation, r.metric, r.ratio?.value])[0],
        ]),
      ).toEqual([['alpha/2025-06-01T10-00-00Z', ['stat', 'p50', 1.5]]]);
    },
  );

  test('with only baseline runs there is no ratio, and the group is still compared', async () => {
    writeRun('alpha/2025-06-01T12-00-00Z', { target, phases: { write: { p50: 1 } } });
    const c = await compareRuns(options(['alpha']));
    expect(c.groups.map((g) => g.group.label)).toEqual(['alpha (processes)']);
    expect(c.baselines).toEqual([]);
  });
});
