/**
 * Runs a study's pending runs in order (study.ts holds the plan), each on its profile's own context:
 * the other profiles of the study cleared from the cluster first (one profile at a time), then the
 * run (a clean-slate deploy, the gate, the measurement: the caller's `runOne`), then study.json
 * rewritten. Ctrl-C stops after saving, with the command that resumes; a run that failed is
 * recorded and the study goes on, unless two in a row failed before measuring (a cluster that
 * cannot take a deploy will not take the next one either).
 */
import { CommandError, FailedError, RefusedError } from '../errors.js';
import { profileSelector } from '../labels.js';
import type { OpenedContext } from '../runner/commands/command.js';
import type { CommandContext } from '../runner/commands/context.js';
import { waitContext } from '../runner/commands/context.js';
import { destroyProfile } from '../runner/commands/destroy.js';
import { readManifests } from '../runner/manifests.js';
import type { Reporter } from '../runner/report.js';
import type { RunStatus } from './record.js';
import { pendingEntries, secondsLeft, writeStudy, type StudyEntry, type StudyRecord } from './study.js';

/** A deploy, the gate and the tear-down around each run, for the estimate before any run has finished. */
const OVERHEAD_SECONDS = 45;

export interface StudyHooks {
  readonly report: Reporter;
  readonly signal: AbortSignal;
  readonly openContext: (profileName: string) => Promise<OpenedContext>;
  /** One recorded run of the context's profile. Throws only when it could not begin measuring. */
  readonly runOne: (
    ctx: CommandContext,
  ) => Promise<{ readonly id: string; readonly status: RunStatus; readonly reasons: readonly string[] }>;
  /** The command that resumes this study, for the messages. */
  readonly resumeCommand: string;
}

const clock = (seconds: number) =>
  seconds >= 60
    ? `${Math.floor(seconds / 60)}m${String(Math.round(seconds % 60)).padStart(2, '0')}s`
    : `${Math.round(seconds)}s`;

export async function runStudy(dir: string, study: StudyRecord, hooks: StudyHooks): Promise<StudyRecord> {
  const pending = pendingEntries(study);
  let failedInARow = 0;
  for (const [done, index] of pending.entries()) {
    const entry = study.entries[index];
    const left = secondsLeft(study, pending.length - done, OVERHEAD_SECONDS);
    hooks.report.step(
      'study',
      `run ${index + 1} of ${study.entries.length}: ${entry.profile}, round ${entry.round} of ` +
        `${study.repeat}; about ${clock(left)} left`,
    );
    const started = Date.now();
    const next = await measuredAgainIfInvalid(study, entry, hooks);
    study.entries[index] = { ...next, seconds: (Date.now() - started) / 1000 };
    writeStudy(dir, study);
    if (next.status === 'interrupted' || hooks.signal.aborted) {
      throw new CommandError(
        `study interrupted; what was measured is kept and ${dir}/study.json says what is left`,
        130,
        [`Resume it with \`${hooks.resumeCommand}\`.`],
      );
    }
    failedInARow = next.status === 'failed' && next.run === undefined ? failedInARow + 1 : 0;
    if (failedInARow >= 2) {
      throw new FailedError(
        `two runs in a row failed before measuring (the last: ${next.reasons.join('; ')}); the study stops`,
        [`Fix what the messages above say, then resume with \`${hooks.resumeCommand}\`.`],
      );
    }
  }
  return study;
}

/**
 * How many times a run found invalid (the leader changed, a pod restarted: the cluster was not the
 * one the study meant to measure) is measured again, after a new clean-slate deploy. Once: an
 * election under load is an accident, two in a row say something about the profile, and that
 * belongs in the study as it is. The invalid runs stay recorded (run.json, and the entry's
 * `replaced`), so nothing measured is hidden.
 */
export const INVALID_REPEATS = 1;

async function measuredAgainIfInvalid(study: StudyRecord, entry: StudyEntry, hooks: StudyHooks): Promise<StudyEntry> {
  const replaced: { run: string; reasons: string[] }[] = [];
  let next = await oneEntry(study, entry, hooks);
  while (next.status === 'invalid' && next.run && replaced.length < INVALID_REPEATS && !hooks.signal.aborted) {
    hooks.report.problem(
      'study',
      `${entry.profile}, round ${entry.round}: run ${next.run} is invalid (${next.reasons.join('; ')}); ` +
        'measuring it again from a clean slate (its record is kept)',
    );
    replaced.push({ run: next.run, reasons: next.reasons });
    next = await oneEntry(study, entry, hooks);
  }
  return replaced.length > 0 ? { ...next, replaced: [...(entry.replaced ?? []), ...replaced] } : next;
}

/** One entry of the plan, run: its outcome, or a failure that happened before a run folder existed. */
async function oneEntry(study: StudyRecord, entry: StudyEntry, hooks: StudyHooks): Promise<StudyEntry> {
  await clearOtherProfiles(
    study.profiles.filter((p) => p !== entry.profile),
    hooks,
  );
  const { ctx, release } = await hooks.openContext(entry.profile);
  try {
    const outcome = await hooks.runOne(ctx);
    return { ...entry, run: outcome.id, status: outcome.status, reasons: [...outcome.reasons] };
  } catch (err) {
    // Ctrl-C, and refusals (a stale dist/, another runner's lock): stopping is the only answer.
    if (hooks.signal.aborted || (err instanceof CommandError && (err.exitCode === 130 || err instanceof RefusedError)))
      throw err;
    if (!(err instanceof CommandError)) throw err;
    hooks.report.problem('study', `${entry.profile}, round ${entry.round}: ${err.message}`);
    return { ...entry, status: 'failed', reasons: [err.message, ...err.details] };
  } finally {
    await release();
  }
}

/** Every other profile of the study that still has something on the cluster is destroyed (claims and all). */
async function clearOtherProfiles(others: readonly string[], hooks: StudyHooks): Promise<void> {
  for (const name of others) {
    const { ctx, release } = await hooks.openContext(name);
    try {
      const pods = await ctx.kube.list('Pod', { labelSelector: profileSelector(name) });
      const claims = await ctx.kube.list('PersistentVolumeClaim', { labelSelector: profileSelector(name) });
      if (pods.items.length === 0 && claims.items.length === 0) continue;
      ctx.report.step(
        'study',
        `destroying profile ${name} (its last run is recorded) before the next profile's deploy`,
      );
      const manifests = await readManifests(ctx.distDir, ctx.profile, { allowStale: true }).catch(() => undefined);
      await ctx.holdLock();
      await destroyProfile(waitContext(ctx), manifests, { namespace: 'delete' });
    } finally {
      await release();
    }
  }
}
