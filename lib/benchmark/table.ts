/**
 * The comparison as tables. The results: one row per operation and group, with p50, p95, p99
 * (ms), ops/s, errors and the number of runs; a group of several runs shows the median and, after
 * it in brackets, the bootstrap 95% confidence interval of that median. The verdicts: each group
 * against the first on p50, p99 and ops/s. Both print aligned for the terminal and as Markdown for
 * comparison.md.
 */
import { OPERATIONS } from './record.js';
import type { GroupResult, OperationStats, Spread } from './runs.js';
import { runsEachNeeded, runsNeededBeside, type Verdict } from './stats.js';
import type { GroupVerdict } from './verdicts.js';

/** What a cell shows for an operation a group did not measure. */
export const MISSING = '–';

export const COLUMNS = ['operation', 'group', 'p50 ms', 'p95 ms', 'p99 ms', 'ops/s', 'errors', 'runs'] as const;
/** Numbers right-aligned, names left. */
const RIGHT_ALIGNED: readonly boolean[] = [false, false, true, true, true, true, true, true];

/**
 * A number to about three significant digits, never in exponent notation: latencies run from
 * tenths of a millisecond to seconds, and a reader compares digits, not mantissas.
 */
export function formatNumber(value: number): string {
  const abs = Math.abs(value);
  const decimals = abs === 0 || abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return value.toFixed(decimals);
}

/** The median, then its 95% interval when there is one (two runs or more): `12.3 [11.0–14.1]`. */
export function formatSpread(s: Pick<Spread, 'median' | 'interval'>): string {
  const median = formatNumber(s.median);
  if (!s.interval) return median;
  return `${median} [${formatNumber(s.interval.low)}–${formatNumber(s.interval.high)}]`;
}

function statsCells(stats: OperationStats | undefined): string[] {
  if (!stats) return [MISSING, MISSING, MISSING, MISSING, MISSING, MISSING];
  return [
    formatSpread(stats.p50),
    formatSpread(stats.p95),
    formatSpread(stats.p99),
    formatSpread(stats.opsPerSecond),
    String(stats.errors),
    String(stats.n),
  ];
}

/** A group's name in the table: marked when some of its runs are not counted, or counted although not valid. */
export function groupCell(result: GroupResult): string {
  const notValid = result.counted.some((r) => r.record.status !== 'valid');
  return `${result.group.label}${result.excluded.length > 0 ? ' *' : ''}${notValid ? ' †' : ''}`;
}

/** The table's rows (without the header): operations in the driver's order, each with every group. */
export function tableRows(results: readonly GroupResult[]): string[][] {
  const measured = OPERATIONS.filter((op) => results.some((r) => r.operations[op]));
  return measured.flatMap((op) => results.map((r) => [op, groupCell(r), ...statsCells(r.operations[op])]));
}

const width = (text: string) => [...text].length;

function pad(text: string, to: number, right: boolean): string {
  const fill = ' '.repeat(Math.max(0, to - width(text)));
  return right ? fill + text : text + fill;
}

function columnWidths(header: readonly string[], rows: readonly (readonly string[])[]): number[] {
  return header.map((_, i) => Math.max(...[header, ...rows].map((row) => width(row[i] ?? ''))));
}

/**
 * Plain text, columns aligned, a rule under the header, and a blank line between operations (the
 * first column) when an operation has several rows, so that they read as a block.
 */
function alignedTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  rightAligned: readonly boolean[],
): string {
  const widths = columnWidths(header, rows);
  const line = (row: readonly string[]) =>
    row
      .map((cell, i) => pad(cell, widths[i] ?? 0, rightAligned[i] ?? false))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '─'.repeat(w)).join('  ');
  const blocks = new Set(rows.map((r) => r[0])).size < rows.length;
  const out = [line(header), rule];
  rows.forEach((row, i) => {
    if (blocks && i > 0 && row[0] !== rows[i - 1]?.[0]) out.push('');
    out.push(line(row));
  });
  return out.join('\n');
}

/** The results as plain text. */
export function terminalTable(results: readonly GroupResult[]): string {
  return alignedTable(COLUMNS, tableRows(results), RIGHT_ALIGNED);
}

/** A Markdown cell: pipes escaped, so a reason or a label cannot break the table. */
export const markdownCell = (text: string) => text.replace(/\|/g, '\\|');

/** A Markdown table, padded so that it also reads as text. */
export function markdownTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  rightAligned: readonly boolean[],
): string {
  const cells = [header, ...rows].map((row) => row.map(markdownCell));
  const widths = header.map((_, i) => Math.max(3, ...cells.map((row) => width(row[i] ?? ''))));
  const line = (row: readonly string[]) =>
    `| ${row.map((c, i) => pad(c, widths[i] ?? 0, rightAligned[i] ?? false)).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (rightAligned[i] ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [line(cells[0] ?? []), rule, ...cells.slice(1).map(line)].join('\n');
}

/** The results table in Markdown. */
export function resultsMarkdown(results: readonly GroupResult[]): string {
  return markdownTable(COLUMNS, tableRows(results), RIGHT_ALIGNED);
}

export const VERDICT_COLUMNS = [
  'operation',
  'metric',
  'group',
  'verdict',
  'change',
  '95% CI of change',
  'p',
  'test',
  'detectable',
] as const;
const VERDICT_RIGHT_ALIGNED: readonly boolean[] = [false, false, false, false, true, true, true, false, true];

/** A difference with its sign: `+1.50`, `-0.320`, `0`. */
export function formatSigned(value: number): string {
  return `${value > 0 ? '+' : ''}${formatNumber(value)}`;
}

/** `value` as a share of `reference`, signed or not: `+12%`, `3.5%`; empty when the reference is zero. */
function share(value: number, reference: number, signed: boolean): string {
  if (reference === 0) return '';
  const percent = (value / Math.abs(reference)) * 100;
  const digits = Math.abs(percent) < 10 ? 1 : 0;
  return ` (${signed && percent > 0 ? '+' : ''}${percent.toFixed(digits)}%)`;
}

/** A p-value to three decimals; tiny ones as a bound. */
export function formatP(p: number): string {
  return p < 0.001 ? '< 0.001' : p.toFixed(3);
}

/** How many runs a verdict needs, in words: `at least 4 runs in each group (or 3 beside 5, 2 beside 8)`. */
export function runsNeededText(): string {
  const each = runsEachNeeded();
  const fewer = Array.from({ length: each - 2 }, (_, i) => each - 1 - i).map(
    (m) => `${m} beside ${runsNeededBeside(m)}`,
  );
  return `at least ${each} runs in each group${fewer.length > 0 ? ` (or ${fewer.join(', ')})` : ''}`;
}

/** What the verdict says, in words. */
export function verdictText(v: Verdict, runs: GroupVerdict['runs']): string {
  switch (v.kind) {
    case 'faster':
    case 'slower':
      return v.kind;
    case 'no difference':
      return 'no difference the data can show';
    case 'no verdict possible':
      return `no verdict possible (${runs.group} + ${runs.reference} runs)`;
  }
}

/**
 * One verdict's cells. Too few runs: the p column says how low p could have gone at best, and
 * the detectable column that no difference could have been shown.
 */
function verdictRow(gv: GroupVerdict, withTest: boolean): string[] {
  const { verdict: v, metric, referenceMedian } = gv;
  const head = [gv.operation, metric.label, groupCell(gv.group), verdictText(v, gv.runs)];
  const test = (cell: string) => (withTest ? [cell] : []);
  if (v.kind === 'no verdict possible') {
    return [
      ...head,
      MISSING,
      MISSING,
      `≥ ${formatP(v.smallestP)}`,
      ...test(MISSING),
      `none: ${runsEachNeeded()} runs each needed`,
    ];
  }
  const unit = ` ${metric.unit}`;
  const interval = v.shift.interval
    ? `[${formatSigned(v.shift.interval.low)}, ${formatSigned(v.shift.interval.high)}]`
    : MISSING;
  return [
    ...head,
    `${formatSigned(v.shift.estimate)}${unit}${share(v.shift.estimate, referenceMedian, true)}`,
    interval,
    formatP(v.test.p),
    ...test(v.test.method === 'exact' ? 'exact' : 'normal approx.'),
    v.detectable === undefined
      ? MISSING
      : `${formatNumber(v.detectable)}${unit}${share(v.detectable, referenceMedian, false)}`,
  ];
}

/** The groups none of whose verdicts is possible (one run, say): said in a line each, not in rows of dashes. */
function hopeless(verdicts: readonly GroupVerdict[]): Set<GroupResult> {
  const groups = new Set(verdicts.map((v) => v.group));
  for (const v of verdicts) if (v.verdict.kind !== 'no verdict possible') groups.delete(v.group);
  return groups;
}

/** A line for each group that cannot have a verdict at all. */
export function hopelessLines(verdicts: readonly GroupVerdict[]): string[] {
  return [...hopeless(verdicts)].map((group) => {
    const runs = verdicts.find((v) => v.group === group)?.runs;
    return (
      `${group.group.label}: no verdict possible on any operation with ${runs?.group ?? 0} ` +
      `run${runs?.group === 1 ? '' : 's'} beside ${runs?.reference ?? 0}; a verdict needs ` +
      `${runsNeededText()}.`
    );
  });
}

interface VerdictTable {
  readonly header: readonly string[];
  readonly rows: readonly (readonly string[])[];
  readonly rightAligned: readonly boolean[];
}

/** The rows of the groups that can have verdicts; the terminal's leaves out the test column, for width. */
function verdictTable(verdicts: readonly GroupVerdict[], withTest: boolean): VerdictTable {
  const left = hopeless(verdicts);
  const keep = (_: unknown, i: number) => withTest || VERDICT_COLUMNS[i] !== 'test';
  return {
    header: VERDICT_COLUMNS.filter(keep),
    rows: verdicts.filter((v) => !left.has(v.group)).map((v) => verdictRow(v, withTest)),
    rightAligned: VERDICT_RIGHT_ALIGNED.filter(keep),
  };
}

/** The verdicts as plain text: the table (when any group can have verdicts), then a line per group that cannot. */
export function terminalVerdicts(verdicts: readonly GroupVerdict[]): string {
  const t = verdictTable(verdicts, false);
  const lines = hopelessLines(verdicts);
  return [
    ...(t.rows.length > 0 ? [alignedTable(t.header, t.rows, t.rightAligned)] : []),
    ...(t.rows.length > 0 && lines.length > 0 ? [''] : []),
    ...lines,
  ].join('\n');
}

/** The verdicts in Markdown: the table, then a bullet per group that cannot have any. */
export function verdictsMarkdown(verdicts: readonly GroupVerdict[]): string {
  const t = verdictTable(verdicts, true);
  const lines = hopelessLines(verdicts).map((l) => `- ${markdownCell(l)}`);
  return [
    ...(t.rows.length > 0 ? [markdownTable(t.header, t.rows, t.rightAligned)] : []),
    ...(t.rows.length > 0 && lines.length > 0 ? [''] : []),
    ...lines,
  ].join('\n');
}
