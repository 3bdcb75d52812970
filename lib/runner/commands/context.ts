import type { Profile } from '../../profile.js';
import type { Kube } from '../kube.js';
import type { Reporter } from '../report.js';
import type { Target } from '../target.js';
import type { WaitContext } from '../waits.js';

/** What every cluster command gets: the profile, the resolved target, a client bound to it. */
export interface CommandContext extends WaitContext {
  readonly profile: Profile;
  readonly target: Target;
  readonly kube: Kube;
  readonly report: Reporter;
  readonly distDir: string;
}

export const waitContext = (ctx: CommandContext) => ({ ...ctx, profile: ctx.profile.name, context: ctx.target.context });
