import { distDir } from '../../paths.js';
import type { Profile } from '../../profile.js';
import { loadProfile } from '../../profiles.js';
import { DEFAULT_WATCH_SECONDS, Kube } from '../kube.js';
import { RefusedError } from '../../errors.js';
import type { Reporter } from '../report.js';
import { describeTarget, resolveTarget, type Target } from '../target.js';
import { mark } from '../trace.js';
import type { WaitContext } from '../waits.js';
import type { SharedOptions } from './command.js';

/**
 * What every cluster command gets: the profile, the resolved target, a client bound to it, and the
 * profile's namespace (its one home for the commands: `ctx.namespace`).
 */
export interface CommandContext extends WaitContext {
  readonly profile: Profile;
  readonly target: Target;
  readonly kube: Kube;
  readonly report: Reporter;
  readonly distDir: string;
  /**
   * Takes the profile's lock on the cluster (one runner at a time; lock.ts), once: a command that
   * changes the cluster calls it after its own checks, right before its first request, so that a
   * refusal still sends nothing. Released when the command ends.
   */
  readonly holdLock: () => Promise<void>;
}

/** Loads the profile and resolves the target, and says where it acts: all before the first request. */
export async function prepareContext(
  opts: SharedOptions,
  report: Reporter,
  signal: AbortSignal,
  env: NodeJS.ProcessEnv,
  holdLock: CommandContext['holdLock'],
): Promise<CommandContext> {
  const profile = await loadProfile(opts.profile);
  mark('profile loaded');
  const target = resolveTarget(profile, opts.context, env);
  mark('target resolved');
  report.info(
    `${report.paint('bold', 'acting on')} ${describeTarget(target)}, namespace ` +
      `${profile.namespace} (profile ${profile.name})`,
  );
  return {
    profile,
    target,
    kube: new Kube(target.kubeConfig, watchSeconds(env)),
    report,
    distDir: distDir(),
    timeoutSeconds: opts.timeout,
    signal,
    namespace: profile.namespace,
    holdLock,
  };
}

/** The context destroy's waits take: the profile's name for its label selector, the context for its hints. */
export const waitContext = (ctx: CommandContext) => ({
  ...ctx,
  profileName: ctx.profile.name,
  context: ctx.target.context,
});

/** Longest watch the runner asks for: an hour (the API server's own cap is in the same range). */
const MAX_WATCH_SECONDS = 3600;

/**
 * SANDSTORE_WATCH_SECONDS: how long each watch is asked to last, and so (× 1.25) how long a silent
 * one takes to be found dead; for networks whose proxies cut idle connections sooner, and for tests.
 */
function watchSeconds(env: NodeJS.ProcessEnv): number {
  const value = env.SANDSTORE_WATCH_SECONDS;
  if (value === undefined) return DEFAULT_WATCH_SECONDS;
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= MAX_WATCH_SECONDS)) {
    throw new RefusedError(
      `SANDSTORE_WATCH_SECONDS: expected a whole number of seconds from 1 to ` +
        `${MAX_WATCH_SECONDS}, such as ${DEFAULT_WATCH_SECONDS}, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}
