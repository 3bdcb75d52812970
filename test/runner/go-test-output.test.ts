import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  GoTestOutput,
  parseGoTestOutput,
  passed,
  summarize,
  type RunResult,
} from '../../lib/conformance/go-test-output.js';
import { projectRoot } from '../../lib/paths.js';

/**
 * The verdicts `conformance` reports, read from real `-test.v` output: the fixtures were printed by
 * a Go test binary (go 1.26, `go test -c`) built from fixtures/go-test/fixture_test.go.txt, run
 * plainly (pass-fail.txt), with PANIC=1 (panic.txt) and with SLOW=1 -test.timeout=2s (timeout.txt).
 */
const fixture = (name: string) =>
  readFileSync(join(projectRoot(), 'test', 'runner', 'fixtures', 'go-test', name), 'utf8');
const verdicts = (run: RunResult) => Object.fromEntries(run.tests.map((t) => [t.name, t.verdict]));

test('nested subtests: each its own verdict and duration, in the order they started; the logged lines go to the test that logged them', () => {
  const run = parseGoTestOutput(fixture('pass-fail.txt'));
  expect(verdicts(run)).toEqual({
    TestA: 'PASS',
    TestB: 'FAIL',
    'TestB/One': 'PASS',
    'TestB/Two': 'FAIL',
    'TestB/Two/Deep': 'FAIL',
    'TestB/Three': 'SKIP',
    TestC: 'PASS',
  });
  expect(run.tests.map((t) => t.name)).toEqual([
    'TestA',
    'TestB',
    'TestB/One',
    'TestB/Two',
    'TestB/Two/Deep',
    'TestB/Three',
    'TestC',
  ]);
  expect(run.tests.every((t) => t.seconds === 0)).toBe(true);
  const deep = run.tests.find((t) => t.name === 'TestB/Two/Deep')!;
  expect(deep.output).toEqual([
    'x_test.go:14: kubectl delete pod 10 failed: exit status 1',
    'Error from server (NotFound): pods "10" not found',
  ]);
  expect(run.tests.find((t) => t.name === 'TestA')!.output).toEqual(['x_test.go:9: leader elected: sandstore-0']);
  expect(run.final).toBe('FAIL');
  expect(passed(run)).toBe(false);
});

test('the summary: subtests indented under their parent, a failed test with its cause beneath, the counts', () => {
  const lines = summarize(parseGoTestOutput(fixture('pass-fail.txt')));
  expect(lines).toEqual([
    'PASS TestA (0.00s)',
    'FAIL TestB (0.00s)',
    '  PASS One (0.00s)',
    '  FAIL Two (0.00s)',
    '    FAIL Deep (0.00s)',
    '           x_test.go:14: kubectl delete pod 10 failed: exit status 1',
    '           Error from server (NotFound): pods "10" not found',
    '  SKIP Three (0.00s)',
    'PASS TestC (0.00s)',
    '3 passed, 3 failed, 1 skipped',
  ]);
});

test('a panic: the verdicts printed before it stand, the stack is no test output, and the summary names the panic', () => {
  const run = parseGoTestOutput(fixture('panic.txt'));
  expect(verdicts(run)).toMatchObject({ TestC: 'FAIL', 'TestC/Sub': 'FAIL', TestA: 'PASS' });
  expect(run.panic).toBe('panic: boom [recovered, repanicked]');
  expect(run.final).toBeUndefined();
  expect(run.tests.find((t) => t.name === 'TestC/Sub')!.output).toEqual([]);
  expect(summarize(run).at(-1)).toBe(
    '2 passed, 5 failed, 1 skipped; the binary panicked: panic: boom [recovered, repanicked]',
  );
  expect(passed(run)).toBe(false);
});

test('a timeout: the test still running when the binary panicked fails, saying so', () => {
  const run = parseGoTestOutput(fixture('timeout.txt'));
  const c = run.tests.find((t) => t.name === 'TestC')!;
  expect(c).toMatchObject({
    verdict: 'FAIL',
    unjudged: 'no verdict: the binary panicked (panic: test timed out after 2s)',
  });
  expect(c.seconds).toBeUndefined();
  expect(summarize(run)).toContain('FAIL TestC (no verdict: the binary panicked (panic: test timed out after 2s))');
});

test('a binary that exits without its final line (a killed container): the tests it never judged fail, the run does not pass', () => {
  const text = fixture('pass-fail.txt');
  const cut = text.slice(0, text.indexOf('--- FAIL: TestB'));
  const run = parseGoTestOutput(cut);
  expect(verdicts(run)).toEqual({
    TestA: 'PASS',
    TestB: 'FAIL',
    'TestB/One': 'FAIL',
    'TestB/Two': 'FAIL',
    'TestB/Two/Deep': 'FAIL',
    'TestB/Three': 'FAIL',
  });
  expect(run.tests[1].unjudged).toBe('no verdict: the binary ended without reporting it');
  expect(summarize(run).at(-1)).toBe(
    '1 passed, 5 failed, 0 skipped; the binary ended without its final PASS/FAIL line',
  );
  expect(passed(run)).toBe(false);
  // Every line judged but no final PASS: a binary that died between its last verdict and its end.
  expect(passed(parseGoTestOutput('=== RUN   TestA\n--- PASS: TestA (0.01s)\n'))).toBe(false);
  expect(passed(parseGoTestOutput('=== RUN   TestA\n--- PASS: TestA (0.01s)\nPASS\n'))).toBe(true);
});

test('fed in any split into lines as a stream delivers them, the verdicts are those of the whole text', () => {
  const text = fixture('pass-fail.txt');
  const lines = text.split('\n');
  const whole = parseGoTestOutput(text);
  fc.assert(
    fc.property(fc.integer({ min: 0, max: lines.length }), (n) => {
      const parser = new GoTestOutput();
      for (const line of lines.slice(0, n)) parser.push(line);
      const partial = parser.result();
      // What is judged so far is judged as in the whole output, or not yet (then FAIL, unjudged).
      for (const t of partial.tests) {
        const final = whole.tests.find((w) => w.name === t.name)!;
        if (t.unjudged === undefined) expect(t.verdict).toBe(final.verdict);
      }
      for (const line of lines.slice(n)) parser.push(line);
      expect(parser.result()).toEqual(whole);
    }),
  );
});

test('a line a test logs that looks like a verdict or the final word is the test’s, not the binary’s', () => {
  const run = parseGoTestOutput(
    [
      '=== RUN   TestA',
      '    a_test.go:1: PASS',
      '    a_test.go:2: --- FAIL: nothing',
      '--- PASS: TestA (1.50s)',
      'PASS',
    ].join('\n'),
  );
  expect(run.tests).toEqual([
    { name: 'TestA', verdict: 'PASS', seconds: 1.5, output: ['a_test.go:1: PASS', 'a_test.go:2: --- FAIL: nothing'] },
  ]);
  expect(run.final).toBe('PASS');
});
