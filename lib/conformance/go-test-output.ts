/**
 * Verdicts from a Go test binary's `-test.v` output (what `go test -v` prints, without `go test`'s
 * own `ok`/`FAIL <package>` line): each test's and subtest's PASS, FAIL or SKIP with its duration,
 * the lines it logged, and what became of tests the binary never judged (a panic, a timeout, a
 * killed container). Fed line by line, so that it can follow a log stream as it comes.
 *
 * The format (cmd/go's test2json reads the same lines): `=== RUN   Name`, `=== PAUSE`/`=== CONT`/
 * `=== NAME` (the test the next lines belong to), `--- PASS: Name (1.23s)`, indented by four
 * spaces per nesting level, then `PASS` or `FAIL` alone at the end; `panic: ...` when a test panics.
 */

export type Verdict = 'PASS' | 'FAIL' | 'SKIP';

export interface TestResult {
  /** The full name, subtests joined by `/` as Go names them (`TestDurabilitySmoke/DataSurvives...`). */
  readonly name: string;
  readonly verdict: Verdict;
  /** The duration the binary reported; undefined when it judged nothing (no verdict line). */
  readonly seconds?: number;
  /** Why a test without a verdict line counts as failed: the binary's end, in words. */
  readonly unjudged?: string;
  /** The lines the test logged (t.Log, t.Fatal), without their indentation. */
  readonly output: readonly string[];
}

export interface RunResult {
  /** Every test and subtest that ran, in the order each started. */
  readonly tests: readonly TestResult[];
  /** The binary's last word, `PASS` or `FAIL`; undefined when it ended without one. */
  readonly final?: 'PASS' | 'FAIL';
  /** The panic's first line (`panic: test timed out after 20m0s`), when the binary panicked. */
  readonly panic?: string;
}

const HEADER = /^=== (RUN|PAUSE|CONT|NAME)\s+(\S+)\s*$/;
const VERDICT = /^(\s*)--- (PASS|FAIL|SKIP): (\S+) \((\d+(?:\.\d+)?)s\)\s*$/;
const FINAL = /^(PASS|FAIL)\s*$/;
const PANIC = /^panic: /;

interface Running {
  verdict?: Verdict;
  seconds?: number;
  output: string[];
}

/** Reads `-test.v` lines as they come; `result()` says what they amount to so far. */
export class GoTestOutput {
  private readonly tests = new Map<string, Running>();
  /** The test the next indented lines belong to. */
  private current: string | undefined;
  private final: 'PASS' | 'FAIL' | undefined;
  private panic: string | undefined;

  public push(line: string): void {
    const header = HEADER.exec(line);
    if (header) {
      this.current = header[2];
      this.started(header[2]);
      return;
    }
    const verdict = VERDICT.exec(line);
    if (verdict) {
      const test = this.started(verdict[3]);
      test.verdict = verdict[2] as Verdict;
      test.seconds = Number(verdict[4]);
      // A parent's lines printed after its verdict (its subtests' summary comes next) are its own.
      this.current = verdict[3];
      return;
    }
    if (this.panic === undefined && PANIC.test(line)) {
      this.panic = line;
      return;
    }
    const final = FINAL.exec(line);
    if (final && this.panic === undefined) {
      this.final = final[1] as 'PASS' | 'FAIL';
      this.current = undefined;
      return;
    }
    if (this.current !== undefined && this.panic === undefined && /^\s/.test(line)) {
      this.tests.get(this.current)?.output.push(line.trim());
    }
  }

  public result(): RunResult {
    const unjudged = this.panic
      ? `no verdict: the binary panicked (${this.panic})`
      : 'no verdict: the binary ended without reporting it';
    const tests = [...this.tests].map(([name, t]): TestResult => {
      if (t.verdict) return { name, verdict: t.verdict, seconds: t.seconds, output: t.output };
      return { name, verdict: 'FAIL', unjudged, output: t.output };
    });
    return { tests, final: this.final, panic: this.panic };
  }

  private started(name: string): Running {
    let test = this.tests.get(name);
    if (!test) {
      test = { output: [] };
      this.tests.set(name, test);
    }
    return test;
  }
}

/** Parses a whole log at once. */
export function parseGoTestOutput(text: string): RunResult {
  const parser = new GoTestOutput();
  for (const line of text.split(/\r?\n/)) parser.push(line);
  return parser.result();
}

/** Whether the run passed: a final PASS, and every test judged PASS or SKIP. */
export function passed(run: RunResult): boolean {
  return run.final === 'PASS' && run.tests.every((t) => t.verdict !== 'FAIL');
}

/** How deep a test is: 0 for a top-level test, 1 for its subtests, and so on. */
const depthOf = (name: string) => name.split('/').length - 1;

/**
 * The summary: one line per test, subtests indented under their parent, with a failed test's logged
 * lines beneath it (the cause, where the test said it), and the count.
 */
export function summarize(run: RunResult): string[] {
  const lines: string[] = [];
  for (const t of run.tests) {
    const indent = '  '.repeat(depthOf(t.name));
    const shortName = t.name.split('/').at(-1) ?? t.name;
    const when = t.seconds !== undefined ? ` (${t.seconds.toFixed(2)}s)` : ` (${t.unjudged})`;
    lines.push(`${indent}${t.verdict.padEnd(4)} ${shortName}${when}`);
    if (t.verdict === 'FAIL') for (const o of t.output) lines.push(`${indent}       ${o}`);
  }
  const count = (v: Verdict) => run.tests.filter((t) => t.verdict === v).length;
  const ending =
    run.panic !== undefined
      ? `; the binary panicked: ${run.panic}`
      : run.final === undefined
        ? '; the binary ended without its final PASS/FAIL line'
        : '';
  lines.push(`${count('PASS')} passed, ${count('FAIL')} failed, ${count('SKIP')} skipped${ending}`);
  return lines;
}
