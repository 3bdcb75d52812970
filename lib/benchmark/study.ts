/**
 * A study: several profiles measured in rounds, each profile once per round in the same order
 * (a b a b ...), so that slow drift in the machine hits every profile alike, each run after a
 * clean-slate deploy. study.json ties the runs together, and is rewritten after every run, so that
 * a study stopped half way resumes where it stopped: results/studies/<UTC time>/study.json.
 * The runs themselves are recorded as single runs are (record.ts), under results/<profile>/.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as z from 'zod/mini';
import { RefusedError } from '../errors.js';
import { OPERATIONS, RUN_STATUSES } from './record.js';
import { writeFileAtomic } from './results-dir.js';

export const STUDY_SCHEMA = 'sandstore-deploy/benchmark-study/v1';
export const STUDY_FILE = 'study.json';

const count = z.int().check(z.minimum(0));
const nonNegative = z.number().check(z.minimum(0));

/** One run of the plan: which profile in which round, and once done, its run and outcome. */
const StudyEntry = z.object({
  round: z.int().check(z.minimum(1)),
  profile: z.string(),
  /** The run's id (<profile>/<UTC time>) once its folder exists. */
  run: z.optional(z.string()),
  /** Undefined: not run yet (or interrupted before its run was recorded). */
  status: z.optional(z.enum(RUN_STATUSES)),
  reasons: z.array(z.string()),
  /** Runs of this entry found invalid and measured again (run-study.ts INVALID_REPEATS), oldest first. */
  replaced: z.optional(z.array(z.object({ run: z.string(), reasons: z.array(z.string()) }))),
  /** Wall time of the whole step (deploy, gate, measurement), for the estimate of the time left. */
  seconds: z.optional(nonNegative),
});
export type StudyEntry = z.infer<typeof StudyEntry>;

/** The load every run of the study gets. */
const StudyLoad = z.object({
  duration_s: nonNegative,
  warmup_s: nonNegative,
  concurrency: count,
  block_size_bytes: count,
  operations: z.array(z.enum(OPERATIONS)),
});
export type StudyLoad = z.infer<typeof StudyLoad>;

export const StudyRecord = z.object({
  schema: z.literal(STUDY_SCHEMA),
  /** studies/<UTC time>: the folder's path under results/. */
  id: z.string(),
  createdAt: z.iso.datetime({ offset: true }),
  profiles: z.array(z.string()),
  repeat: z.int().check(z.minimum(1)),
  load: StudyLoad,
  entries: z.array(StudyEntry),
});
export type StudyRecord = z.infer<typeof StudyRecord>;

/** Rounds 1..repeat, each with every profile once, in the order given. */
export function planStudy(profiles: readonly string[], repeat: number): StudyEntry[] {
  return Array.from({ length: repeat }, (_, r) =>
    profiles.map((profile) => ({ round: r + 1, profile, reasons: [] })),
  ).flat();
}

/** What is left to run: entries never run, and those interrupted (their run is kept, marked, and run again). */
export function pendingEntries(study: StudyRecord): number[] {
  return study.entries.flatMap((e, i) => (e.status === undefined || e.status === 'interrupted' ? [i] : []));
}

/**
 * Seconds left for `remaining` runs: the mean of the finished runs' wall times, or before any has
 * finished, the load's own length plus `overheadSeconds` per run (deploy and gate).
 */
export function secondsLeft(study: StudyRecord, remaining: number, overheadSeconds: number): number {
  const done = study.entries.map((e) => e.seconds).filter((s): s is number => s !== undefined);
  const perRun =
    done.length > 0
      ? done.reduce((a, b) => a + b, 0) / done.length
      : overheadSeconds + study.load.operations.length * (study.load.warmup_s + study.load.duration_s);
  return remaining * perRun;
}

export function writeStudy(dir: string, study: StudyRecord): void {
  writeFileAtomic(join(dir, STUDY_FILE), `${JSON.stringify(study, null, 2)}\n`);
}

/**
 * A study folder's record, checked; a folder that holds none, or a broken one, is refused naming
 * the file and field.
 */
export function readStudy(dir: string): StudyRecord {
  const path = join(dir, STUDY_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new RefusedError(`${dir} is not a study folder: it holds no ${STUDY_FILE}. Nothing was sent.`, [
      'A study folder is results/studies/<UTC time>/, made by `npm run benchmark -- --profiles=a,b --repeat=N`.',
    ]);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new RefusedError(`${path} is not JSON (${(err as Error).message}). Nothing was sent.`);
  }
  const parsed = StudyRecord.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new RefusedError(
      `${path} is not a study record: ${issue.path.join('.') || '(top level)'}: ` +
        `${issue.message}. Nothing was sent.`,
    );
  }
  return parsed.data;
}
