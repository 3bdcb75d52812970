/**
 * The comparison as a table: one row per operation and group, with p50, p95, p99 (ms), ops/s,
 * errors and the number of runs; a group of several runs shows the median and, after it, the
 * range. The same rows print aligned for the terminal and as Markdown for comparison.md.
 */
import { OPERATIONS } from './record.js';
import type { GroupResult, OperationStats, Spread } from './runs.js';

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

/** The median, then the range when the runs differ: `12.3 (11.0–14.1)`. */
export function formatSpread(s: Spread, n: number): string {
  const median = formatNumber(s.median);
  if (n < 2) return median;
  return `${median} (${formatNumber(s.min)}–${formatNumber(s.max)})`;
}

function statsCells(stats: OperationStats | undefined): string[] {
  if (!stats) return [MISSING, MISSING, MISSING, MISSING, MISSING, MISSING];
  return [
    formatSpread(stats.p50, stats.n),
    formatSpread(stats.p95, stats.n),
    formatSpread(stats.p99, stats.n),
    formatSpread(stats.opsPerSecond, stats.n),
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

function columnWidths(rows: readonly (readonly string[])[]): number[] {
  return COLUMNS.map((_, i) => Math.max(...rows.map((row) => width(row[i] ?? ''))));
}

/** Plain text, columns aligned, a rule under the header and between operations. */
export function terminalTable(results: readonly GroupResult[]): string {
  const rows = tableRows(results);
  const widths = columnWidths([[...COLUMNS], ...rows]);
  const line = (row: readonly string[]) => row.map((cell, i) => pad(cell, widths[i] ?? 0, RIGHT_ALIGNED[i] ?? false)).join('  ').trimEnd();
  const rule = widths.map((w) => '─'.repeat(w)).join('  ');
  const out = [line(COLUMNS), rule];
  rows.forEach((row, i) => {
    // A blank-ish separator between operations keeps the groups of one operation together.
    if (i > 0 && results.length > 1 && i % results.length === 0) out.push('');
    out.push(line(row));
  });
  return out.join('\n');
}

/** A Markdown cell: pipes escaped, so a reason or a label cannot break the table. */
export const markdownCell = (text: string) => text.replace(/\|/g, '\\|');

/** A Markdown table, padded so that it also reads as text. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[], rightAligned: readonly boolean[]): string {
  const cells = [header, ...rows].map((row) => row.map(markdownCell));
  const widths = header.map((_, i) => Math.max(3, ...cells.map((row) => width(row[i] ?? ''))));
  const line = (row: readonly string[]) => `| ${row.map((c, i) => pad(c, widths[i] ?? 0, rightAligned[i] ?? false)).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (rightAligned[i] ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [line(cells[0] ?? []), rule, ...cells.slice(1).map(line)].join('\n');
}

/** The results table in Markdown. */
export function resultsMarkdown(results: readonly GroupResult[]): string {
  return markdownTable(COLUMNS, tableRows(results), RIGHT_ALIGNED);
}
