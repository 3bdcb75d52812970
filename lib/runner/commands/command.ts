import { InvalidArgumentError, Option, type Command } from 'commander';
import type { Reporter } from '../report.js';
import type { CommandContext } from './context.js';

/**
 * One runner command, declared in one file (kapp's layout: a command's options, its command and its
 * Run together): its name, what it does, its own options, and its body. The CLI (cli.ts) adds the
 * options every command shares, prepares the context, and turns failures into exit codes: a body
 * only throws CommandErrors (lib/errors.ts), which carry their own.
 */
export interface ClusterCommand<Options = Record<string, unknown>> {
  readonly name: string;
  readonly description: string;
  /** Adds the command's own options and arguments (the shared ones are added by the CLI). */
  readonly configure?: (command: Command) => Command;
  /** The body: returns the exit code, or nothing for 0. `args` are the positional arguments. */
  readonly run: (ctx: CommandContext, options: Options, args: readonly unknown[]) => Promise<number | void>;
  /** What the cluster holds after Ctrl-C during this command, and what to run next. */
  readonly whenInterrupted?: string;
}

/** A command that never talks to a cluster (building the image): it gets the profile's name only. */
export interface LocalCommand<Options = Record<string, unknown>> {
  readonly name: string;
  readonly description: string;
  readonly local: true;
  readonly configure?: (command: Command) => Command;
  readonly run: (report: Reporter, options: Options & { profile: string }) => Promise<number | void>;
}

export type RunnerCommand = ClusterCommand<any> | LocalCommand<any>;

/** The options every cluster command takes. */
export interface SharedOptions {
  readonly profile: string;
  readonly context?: string;
  readonly timeout: number;
}

export const profileOption = () => new Option('--profile <name>', 'profile to act on (a file in profiles/)').default('ssd-raft');

/** --profile, --context and --timeout, on a cluster command. */
export function withSharedOptions(command: Command): Command {
  return command
    .addOption(profileOption())
    .addOption(new Option('--context <name>', 'kube context to act on; else KUBE_CONTEXT, else the profile\'s pinned context (never the current-context)'))
    .addOption(new Option('--timeout <seconds>', 'deadline of each wait').argParser(seconds).default(300));
}

/** A number of seconds > 0 (a --timeout). */
export function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`expected a number of seconds > 0, got "${value}"`);
  return n;
}

/** "30s", "10m", "2h" or a bare number of seconds. */
export function duration(value: string): number {
  const m = /^(\d+)(s|m|h)?$/.exec(value);
  if (!m) throw new InvalidArgumentError(`expected a duration like 30s, 10m or 2h, got "${value}"`);
  return Number(m[1]) * ({ s: 1, m: 60, h: 3600 }[m[2] ?? 's'] ?? 1);
}

/** --pod-ready-timeout, shared by update and resume. */
export const podReadyTimeoutOption = () =>
  new Option('--pod-ready-timeout <seconds>', 'how long an updated pod may take to become Ready').argParser(seconds).default(120);
