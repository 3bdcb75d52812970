import { spawn } from 'node:child_process';
import { lineSplitter } from '../lines.js';

/** Running the docker CLI (found by lib/executables.ts) with its output forwarded line by line. */

export function describeExit(exitCode: number | null): string {
  return exitCode === null ? 'killed by a signal' : `exit code ${exitCode}`;
}

export interface Finished {
  readonly exitCode: number | null;
  readonly timedOut: boolean;
  /** Only collected when output is not forwarded. */
  readonly stdout: string;
  readonly firstStderrLine: string | undefined;
  readonly lastStderrLine: string | undefined;
}

/**
 * Runs a command to completion. With `onLine`, stdout and stderr are forwarded line by line as
 * they arrive (docker's progress); otherwise stdout is collected. Rejects only when the process
 * cannot be started.
 */
export function run(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  onLine?: (line: string) => void,
  timeoutMs?: number,
): Promise<Finished> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let firstStderrLine: string | undefined;
    let lastStderrLine: string | undefined;
    let timedOut = false;
    let settled = false;
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
          }, timeoutMs);

    const outLines = lineSplitter((line) => onLine?.(line));
    const errLines = lineSplitter((line) => {
      if (line.trim() !== '') {
        firstStderrLine ??= line.trim();
        lastStderrLine = line.trim();
      }
      onLine?.(line);
    });
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      if (onLine) outLines.push(chunk);
      else stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => errLines.push(chunk));

    child.on('error', (error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (exitCode) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      outLines.end();
      errLines.end();
      resolvePromise({ exitCode, timedOut, stdout, firstStderrLine, lastStderrLine });
    });
  });
}
