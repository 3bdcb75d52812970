import { styleText } from 'node:util';
import type { KubeObject } from './kube.js';

type Style = Parameters<typeof styleText>[0];

/**
 * Everything the runner prints goes through here: progress lines with the elapsed time, problems
 * as they happen, and a final verdict. Colour only on a terminal (and never with NO_COLOR).
 */
export class Reporter {
  private readonly started = Date.now();
  private readonly color: boolean;
  private readonly seen = new Set<string>();
  private liveShown = false;

  public constructor(
    private readonly out: NodeJS.WritableStream = process.stdout,
    private readonly err: NodeJS.WritableStream = process.stderr,
  ) {
    this.color = Boolean((out as { isTTY?: boolean }).isTTY) && !process.env.NO_COLOR;
  }

  public paint(style: Style, text: string): string {
    return this.color ? styleText(style, text) : text;
  }

  public elapsed(): string {
    return `${((Date.now() - this.started) / 1000).toFixed(1)}s`;
  }

  /** On a terminal: live lines rewrite one status line in place; elsewhere each is a line of its own. */
  public get interactive(): boolean {
    return Boolean((this.out as { isTTY?: boolean }).isTTY);
  }

  /** A status line that replaces the previous one on a terminal (a long run's progress). */
  public live(line: string): void {
    this.out.write(this.interactive ? `\r\x1b[2K${line}` : `${line}\n`);
    this.liveShown = this.interactive;
  }

  /** Ends the live status line, so that what is printed next starts on a line of its own. */
  public endLive(): void {
    if (this.liveShown) this.out.write('\n');
    this.liveShown = false;
  }

  public info(line: string): void {
    this.out.write(`${line}\n`);
  }

  /** A progress line: `[ 12.3s] phase: what happened`. */
  public step(phase: string, line: string): void {
    this.out.write(`${this.paint('dim', `[${this.elapsed().padStart(6)}]`)} ${this.paint('bold', phase)}: ${line}\n`);
  }

  /** A problem seen while waiting; printed once per distinct text so a watch does not flood. */
  public problem(subject: string, text: string): void {
    const key = `${subject}\0${text}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.err.write(`${this.paint('yellow', `[${this.elapsed().padStart(6)}] ! ${subject}`)}: ${text}\n`);
  }

  public error(text: string): void {
    this.err.write(`${this.paint('red', 'error')}: ${text}\n`);
  }

  /** A line under an error (what failed, what to run next); on stderr with the error. */
  public detail(text: string): void {
    this.err.write(`  ${text}\n`);
  }

  public success(text: string): void {
    this.out.write(`${this.paint('green', 'done')}: ${text}\n`);
  }
}

/**
 * Objects counted by kind, in the order first seen: "3 Pod, 1 StatefulSet". With `terminating`,
 * terminating objects are counted apart ("2 Pod (terminating)"): they still hold what they held.
 */
export function countByKind(objects: readonly KubeObject[], opts: { terminating?: boolean } = {}): string {
  const counts = new Map<string, number>();
  for (const o of objects) {
    const key = `${o.kind}${opts.terminating && o.metadata.deletionTimestamp ? ' (terminating)' : ''}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([kind, n]) => `${n} ${kind}`).join(', ');
}
