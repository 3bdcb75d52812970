import { InvalidArgumentError, Option, type Command } from 'commander';
import type { Rule } from '../../validation.js';
import type { Reporter } from '../report.js';
import type { CommandContext } from './context.js';

/**
 * One runner command, declared in one file (kapp's layout: a command's options, its command and its
 * Run together): its name, what it does, its own options, and its body. program.ts adds the
 * options every command shares, prepares the context, and turns failures into exit codes: a body
 * only throws CommandErrors (lib/errors.ts), which carry their own.
 */
export interface ClusterCommand<Options = Record<string, unknown>> {
  readonly name: string;
  readonly description: string;
  /** Adds the command's own options and arguments (program.ts adds the shared ones). */
  readonly configure?: (command: Command) => Command;
  /** The body: returns the exit code, or nothing for 0. `args` are the positional arguments. */
  readonly run: (ctx: CommandContext, options: Options, args: readonly unknown[]) => Promise<number | void>;
  /** What the cluster holds after Ctrl-C during this command, and what to run next. */
  readonly whenInterrupted?: string;
  /** Changes the cluster: takes the profile's lock (ctx.holdLock) and accepts --break-lock. */
  readonly changesCluster?: true;
  /**
   * Deletes or replaces what runs (deploy, destroy, update, resume; a benchmark with --fresh): then
   * --profile must be given, never defaulted, as kubectl never deletes without being told what.
   * `always` also drops the default from --profile's help; a function decides from the options.
   */
  readonly needsNamedProfile?: 'always' | ((options: Options) => boolean);
  /**
   * A mode of the command that needs no cluster (`benchmark --compare`): when `when` holds, `run`
   * runs instead of the body, with no profile loaded and no context resolved.
   */
  readonly localMode?: {
    readonly when: (options: Options) => boolean;
    readonly run: (
      report: Reporter,
      options: Options,
      args: readonly unknown[],
      session: Session,
    ) => Promise<number | void>;
  };
}

/** A profile's context opened by a command that acts on several profiles in turn (a study), and how to close it. */
export interface OpenedContext {
  readonly ctx: CommandContext;
  /** Releases the profile's lock if the command took it. */
  readonly release: () => Promise<void>;
}

/** What a local mode may use: Ctrl-C's signal, and a context for any profile, on the same rules as --profile's. */
export interface Session {
  readonly signal: AbortSignal;
  readonly openContext: (profileName: string) => Promise<OpenedContext>;
}

/** A command that never talks to a cluster (building the image): it gets the profile's name only. */
export interface LocalCommand<Options = Record<string, unknown>> {
  readonly name: string;
  readonly description: string;
  readonly local: true;
  readonly configure?: (command: Command) => Command;
  readonly run: (report: Reporter, options: Options & { profile: string }) => Promise<number | void>;
}

// Commands with options of any shape: commander hands each its own options, untyped.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- no other type admits every command's options
export type RunnerCommand = ClusterCommand<any> | LocalCommand<any>;

/** The options every cluster command takes, keyed as commander keys them: by their flags. */
export interface SharedOptions {
  /** --profile: a profile's name; the command's context holds the loaded Profile (ctx.profile). */
  readonly profile: string;
  readonly context?: string;
  readonly timeout: number;
}

/** The profile read-only commands act on when --profile is left out. */
export const DEFAULT_PROFILE = 'ssd-raft';

export const profileOption = (defaulted = true) => {
  const option = new Option('--profile <name>', 'profile to act on (a file in profiles/)');
  return defaulted ? option.default(DEFAULT_PROFILE) : option;
};

/** --profile (without a default when `namedProfile`), --context and --timeout, on a cluster command. */
export function withSharedOptions(command: Command, namedProfile = false): Command {
  return command
    .addOption(profileOption(!namedProfile))
    .addOption(
      new Option(
        '--context <name>',
        "kube context to act on; else KUBE_CONTEXT, else the profile's pinned context (never the current-context)",
      ),
    )
    .addOption(new Option('--timeout <seconds>', 'deadline of each wait').argParser(seconds).default(300));
}

/**
 * The longest wait a timer can hold is 2^31-1 ms (24.8 days; Node fires a longer one at once). A
 * wait on a cluster longer than a day is a typo, so the accepted range stops there.
 */
export const MAX_WAIT_SECONDS = 86_400;
/** Less than a second is no deadline for anything a cluster does (and 0.0001 is a typo). */
const MIN_WAIT_SECONDS = 1;

/** A number of seconds a wait may last (a --timeout): plain decimal, from 1 s to a day. */
export function seconds(value: string): number {
  const n = /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN;
  if (!(n >= MIN_WAIT_SECONDS && n <= MAX_WAIT_SECONDS)) {
    throw new InvalidArgumentError(
      `expected a number of seconds from ${MIN_WAIT_SECONDS} to ${MAX_WAIT_SECONDS} (one ` +
        `day), such as 300, got "${value}"`,
    );
  }
  return n;
}

/** How far back --since may reach: a year is beyond any pod's logs, and keeps the number exact. */
export const MAX_SINCE_SECONDS = 365 * 86_400;

/** "30s", "10m", "2h" or a bare number of seconds, from 1 s to a year (a --since). */
export function duration(value: string): number {
  const m = /^(\d+)(s|m|h)?$/.exec(value);
  const n = m ? Number(m[1]) * ({ s: 1, m: 60, h: 3600 }[m[2] ?? 's'] ?? 1) : NaN;
  if (!(n >= 1 && n <= MAX_SINCE_SECONDS)) {
    throw new InvalidArgumentError(`expected a duration from 1s to 8760h (a year) like 30s, 10m or 2h, got "${value}"`);
  }
  return n;
}

/**
 * An option parser that checks the value with a rule of lib/validation.ts: values that go into a
 * request (a path, a query, an object sent) are refused before anything is sent.
 */
export function ruled(rule: Rule<string>): (value: string) => string {
  return (value) => {
    const accepted = rule(value);
    if (accepted !== undefined) throw new InvalidArgumentError(`expected ${accepted}, got ${JSON.stringify(value)}`);
    return value;
  };
}

/** --source, shared by image and update --build; SANDSTORE_SRC goes through the same checks as the flag. */
export const sourceOption = (description: string) =>
  new Option('--source <path>', description).env('SANDSTORE_SRC').default('../sandstore');

/** --pod-ready-timeout, shared by update and resume. */
export const podReadyTimeoutOption = () =>
  new Option('--pod-ready-timeout <seconds>', 'how long an updated pod may take to become Ready')
    .argParser(seconds)
    .default(120);
