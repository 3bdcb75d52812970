import { distDir } from '../../paths.js';
import type { Profile } from '../../profile.js';
import { loadProfile } from '../../profiles.js';
import { Kube } from '../kube.js';
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
export async function prepareContext(opts: SharedOptions, report: Reporter, signal: AbortSignal, env: NodeJS.ProcessEnv = process.env, holdLock: CommandContext['holdLock'] = async () => {}): Promise<CommandContext> {
  const profile = await loadProfile(opts.profile);
  mark('profile loaded');
  const target = resolveTarget(profile, opts.context, env);
  mark('target resolved');
  report.info(`${report.paint('bold', 'acting on')} ${describeTarget(target)}, namespace ${profile.namespace} (profile ${profile.name})`);
  return { profile, target, kube: new Kube(target.kubeConfig), report, distDir: distDir(), timeoutSeconds: opts.timeout, signal, namespace: profile.namespace, holdLock };
}

/** The context destroy's waits take: the profile's name for its label selector, the context for its hints. */
export const waitContext = (ctx: CommandContext) => ({ ...ctx, profileName: ctx.profile.name, context: ctx.target.context });
