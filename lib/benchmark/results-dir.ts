/**
 * results/: one folder per run, results/<profile>/<UTC timestamp>/, created once and never
 * overwritten. Checked before anything is built or sent, so that a run that cannot be recorded is
 * not measured.
 */
import { accessSync, constants, mkdirSync, renameSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FailedError, fileSystemCause, RefusedError } from '../errors.js';

/** Less free space than this and a run is not started: its histograms, CSV and logs need a few MiB. */
export const MIN_FREE_BYTES = 64 * 1024 * 1024;

/** The folder's name for a run started at `when`: UTC, to the second, no colons (not allowed on every file system). */
export function runFolderName(when: Date): string {
  return when
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/:/g, '-');
}

/** results/ can hold a run: creatable, writable, with MIN_FREE_BYTES free; refused (nothing sent) otherwise. */
export function checkResultsDir(resultsDir: string): void {
  try {
    mkdirSync(resultsDir, { recursive: true });
    accessSync(resultsDir, constants.W_OK);
  } catch (err) {
    throw new RefusedError(
      `results directory ${resultsDir} is not writable: ` +
        `${(err as NodeJS.ErrnoException).code ?? (err as Error).message}. Nothing was measured.`,
      ['Give a writable directory with --results-dir=<path>, or fix the permissions.'],
    );
  }
  const fs = statfsSync(resultsDir);
  const free = fs.bavail * fs.bsize;
  if (free < MIN_FREE_BYTES) {
    throw new RefusedError(
      `results directory ${resultsDir} has ${(free / 2 ** 20).toFixed(1)} MiB free, less than ` +
        `the ${MIN_FREE_BYTES / 2 ** 20} MiB a run needs. Nothing was measured.`,
      ['Free space there, or give another directory with --results-dir=<path>.'],
    );
  }
}

/**
 * Creates results/<profile>/<timestamp>/ for a run starting now. A folder of that name already
 * there (two runs in one second) is never reused: the next second's name is taken.
 */
export function createRunDir(
  resultsDir: string,
  profileName: string,
  now: Date = new Date(),
): { dir: string; id: string } {
  mkdirSync(join(resultsDir, profileName), { recursive: true });
  for (let offset = 0; offset < 60; offset++) {
    const name = runFolderName(new Date(now.getTime() + offset * 1000));
    const dir = join(resultsDir, profileName, name);
    try {
      mkdirSync(dir);
      return { dir, id: `${profileName}/${name}` };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST')
        throw new FailedError(`cannot create the run's folder ${dir}: ${(err as Error).message}`);
    }
  }
  throw new FailedError(
    `cannot create a run folder under ${join(resultsDir, profileName)}: every name for the ` + `next minute is taken`,
  );
}

/**
 * Writes a file whole or not at all (a temporary name, then a rename), so a record is never half
 * written: a write cut short (a full disk) leaves no temporary file and the previous file as it was.
 */
export function writeFileAtomic(path: string, text: string): void {
  const temp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(temp, text, { flag: 'wx' });
    renameSync(temp, path);
  } catch (err) {
    rmSync(temp, { force: true });
    throw new FailedError(`cannot write ${path}: ${fileSystemCause(err as NodeJS.ErrnoException)}`, [
      "What was measured so far stays in the run's folder.",
    ]);
  }
}
