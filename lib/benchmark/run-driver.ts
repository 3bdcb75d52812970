/**
 * Runs the load driver as a child process: its standard output is its live progress (JSON lines),
 * its standard error its own words, kept unchanged in driver.log. Ctrl-C (the command's abort
 * signal) reaches it as SIGINT: it stops the phase at once, writes what it measured and exits 130.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { FailedError } from '../errors.js';
import type { Reporter } from '../runner/report.js';
import { parseDriverEvent, phaseLine, progressLine, type DriverEvent, type RunPlan } from './progress.js';
import type { DriverOptions } from './record.js';

/** Off a terminal, a progress line this often (and at each stage change), so a CI log stays readable. */
const LOGGED_PROGRESS_SECONDS = 10;

export interface DriverRun {
  readonly exitCode: number;
  /** The driver's last words on standard error: what to show when it failed. */
  readonly lastErrors: readonly string[];
}

/** The driver's command line for these options, its files written into `outDir`. */
export function driverArgs(options: DriverOptions, outDir: string): string[] {
  return [
    `--seeds=${options.seeds.join(',')}`,
    `--duration=${options.duration_s}`,
    `--warmup=${options.warmup_s}`,
    `--concurrency=${options.concurrency}`,
    `--block-size=${options.block_size_bytes}`,
    `--ops=${options.operations.join(',')}`,
    `--out=${outDir}`,
  ];
}

export async function runDriver(
  binary: string,
  options: DriverOptions,
  outDir: string,
  logPath: string,
  report: Reporter,
  signal?: AbortSignal,
): Promise<DriverRun> {
  const child = spawn(binary, driverArgs(options, outDir), { stdio: ['ignore', 'pipe', 'pipe'], cwd: outDir });
  const log = createWriteStream(logPath, { flags: 'wx' });
  const lastErrors: string[] = [];
  child.stderr.pipe(log);
  createInterface({ input: child.stderr }).on('line', (line) => {
    lastErrors.push(line);
    if (lastErrors.length > 20) lastErrors.shift();
  });
  const show = progressShower(report, {
    operations: options.operations,
    warmupSeconds: options.warmup_s,
    durationSeconds: options.duration_s,
  });
  createInterface({ input: child.stdout }).on('line', (line) => {
    const event = parseDriverEvent(line);
    if (event) show(event);
  });
  const interrupt = () => child.kill('SIGINT');
  signal?.addEventListener('abort', interrupt);
  try {
    const exitCode = await new Promise<number>((resolve, reject) => {
      child.once('error', (err) => reject(new FailedError(`cannot run the load driver ${binary}: ${err.message}`)));
      child.once('close', (code, signalName) => resolve(code ?? (signalName === 'SIGINT' ? 130 : 1)));
    });
    return { exitCode, lastErrors };
  } finally {
    signal?.removeEventListener('abort', interrupt);
    report.endLive();
    await new Promise<void>((resolve) => log.end(resolve));
  }
}

/** Shows driver events: a live line on a terminal; elsewhere, one every LOGGED_PROGRESS_SECONDS. */
function progressShower(report: Reporter, plan: RunPlan): (event: DriverEvent) => void {
  let lastStage = '';
  let lastLogged = 0;
  return (event) => {
    if (event.type === 'progress') {
      const stage = `${event.operation}/${event.stage}`;
      const due = Date.now() - lastLogged >= LOGGED_PROGRESS_SECONDS * 1000;
      if (report.interactive || stage !== lastStage || due) {
        report.live(progressLine(plan, event));
        lastLogged = Date.now();
      }
      lastStage = stage;
    } else if (event.type === 'phase') {
      report.endLive();
      report.step(event.operation, phaseLine(event));
    }
  };
}
