/**
 * The runner as a function of its arguments: assembles the commands (each in its own module under
 * commands/: its options, its body), prepares their context and turns what they throw into an exit
 * code. cli.ts runs it as a process; the tests run it in-process too.
 *
 * Exit codes: 0 done; 1 the operation failed (timeout, failed Job, paused rollout, stuck deletion,
 * differences found by diff); 2 refused before sending anything (bad arguments, unknown, broken or
 * invalid profile, unknown, mismatched or unusable context, missing or stale dist/, image
 * pre-flight); 130 interrupted.
 */
import { Command } from 'commander';
import { CommandError, fileSystemFailure, isFileSystemError, RefusedError } from '../errors.js';
import { listProfiles } from '../profiles.js';
import { strictOptionValues } from '../options.js';
import { benchmarkCommand } from './commands/benchmark.js';
import { checkCommand } from './commands/check.js';
import { clientCommand } from './commands/client.js';
import { conformanceCommand } from './commands/conformance.js';
import { withSharedOptions, type OpenedContext, type RunnerCommand, type SharedOptions } from './commands/command.js';
import { prepareContext } from './commands/context.js';
import { deployCommand } from './commands/deploy.js';
import { destroyCommand } from './commands/destroy.js';
import { diffCommand } from './commands/diff.js';
import { imageCommand } from './commands/image.js';
import { logsCommand } from './commands/logs.js';
import { rbacCommand } from './commands/rbac.js';
import { resumeCommand } from './commands/resume.js';
import { smokeCommand } from './commands/smoke.js';
import { statusCommand } from './commands/status.js';
import { updateCommand } from './commands/update.js';
import type { Kube } from './kube.js';
import { acquireLock, type HeldLock } from './lock.js';
import { Reporter } from './report.js';
import { mark, traceLine } from './trace.js';

const COMMANDS: readonly RunnerCommand[] = [
  deployCommand,
  destroyCommand,
  updateCommand,
  resumeCommand,
  imageCommand,
  logsCommand,
  smokeCommand,
  conformanceCommand,
  clientCommand,
  statusCommand,
  diffCommand,
  checkCommand,
  benchmarkCommand,
  rbacCommand,
];

const EXIT_INTERRUPTED = 130;

/** Where the runner reads its environment and writes its output (the process's own, unless a test says otherwise). */
export interface RunnerIo {
  readonly env?: NodeJS.ProcessEnv;
  readonly stdout?: NodeJS.WritableStream;
  readonly stderr?: NodeJS.WritableStream;
}

/** Adds every command with its options (the shared ones on cluster commands) and `action` as its body. */
function declareCommands(program: Command, action: (spec: RunnerCommand, self: Command) => Promise<void>): void {
  for (const spec of COMMANDS) {
    const command = program.command(spec.name).description(spec.description);
    if (!('local' in spec)) withSharedOptions(command, spec.needsNamedProfile === 'always');
    if ('changesCluster' in spec && spec.changesCluster) {
      command.option(
        '--break-lock',
        "take the profile's lock even though another runner holds it (only when that runner is gone)",
      );
    }
    spec.configure?.(command);
    command.action((...params: unknown[]) => action(spec, params[params.length - 1] as Command));
  }
}

/**
 * A command that deletes or replaces what runs acts only on a profile named on its command line:
 * a default there would destroy whatever that default names, which the user may not have meant.
 */
function refuseUnnamedProfile(
  command: string,
  needs: 'always' | 'these options' | undefined,
  source: string | undefined,
): void {
  if (needs === undefined || source === 'cli') return;
  const what = needs === 'always' ? command : `${command} with these options`;
  throw new RefusedError(
    `${what} deletes or replaces what the cluster runs, so it needs the profile named: --profile=<name>. ` +
      `Profiles: ${listProfiles().join(', ')}. Nothing was sent.`,
  );
}

/** Every option of every command as declared: what the tests go through option by option. */
export function declaredOptions(): { command: string; flag: string; takesValue: boolean }[] {
  const program = new Command('sandstore');
  declareCommands(program, async () => {});
  return program.commands.flatMap((c) =>
    c.options.map((o) => ({ command: c.name(), flag: o.long ?? o.flags, takesValue: o.required || o.optional })),
  );
}

/** Runs one runner command line (`deploy --profile=local ...`) and returns its exit code. */
export async function runRunner(argv: readonly string[], io: RunnerIo = {}): Promise<number> {
  mark('bundle loaded');
  const env = io.env ?? process.env;
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const report = new Reporter(stdout, stderr);
  const interrupt = new AbortController();
  const onSignal = () => {
    // A second Ctrl-C stops at once; the first lets the command say what the cluster holds.
    if (interrupt.signal.aborted) process.exit(EXIT_INTERRUPTED);
    interrupt.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let code = 0;
  let running: RunnerCommand | undefined;
  let kube: Kube | undefined;

  const program = new Command('sandstore')
    .description("Deploy Sand Store from dist/<profile>/ onto the profile's pinned kube context")
    // One line of hint, not the whole help: the error above it is what the user needs to read.
    .showHelpAfterError('(add --help for the options)')
    .configureOutput({ writeOut: (text) => stdout.write(text), writeErr: (text) => stderr.write(text) })
    .exitOverride();
  declareCommands(program, async (spec, self) => {
    running = spec;
    const options = self.opts();
    if (!('local' in spec)) {
      const needs = spec.needsNamedProfile;
      const named = needs === 'always' ? needs : needs?.(options) ? 'these options' : undefined;
      refuseUnnamedProfile(spec.name, named, self.getOptionValueSource('profile'));
    }
    if ('local' in spec) {
      code = (await spec.run(report, options)) ?? 0;
      return;
    }
    // A profile's context with its own lock, taken when the command first changes the cluster.
    const openContext = async (profileName: string): Promise<OpenedContext> => {
      let lock: HeldLock | undefined;
      const holdLock = async () => {
        const lockOptions = {
          profileName: ctx.profile.name,
          context: ctx.target.context,
          command: spec.name,
          breakLock: Boolean(options.breakLock),
        };
        lock ??= await acquireLock(ctx.kube, report, lockOptions);
      };
      // holdLock runs only once the command has its context.
      const ctx = await prepareContext(
        { ...(options as SharedOptions), profile: profileName },
        report,
        interrupt.signal,
        env,
        holdLock,
      );
      kube = ctx.kube;
      return {
        ctx,
        release: async () => {
          await lock?.release();
        },
      };
    };
    if (spec.localMode?.when(options)) {
      code =
        (await spec.localMode.run(report, options, self.processedArgs, { signal: interrupt.signal, openContext })) ?? 0;
      return;
    }
    const { ctx, release } = await openContext((options as SharedOptions).profile);
    try {
      code = (await spec.run(ctx, options, self.processedArgs)) ?? 0;
    } finally {
      await release();
    }
  });

  strictOptionValues(program);

  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (err) {
    code = exitCodeFor(err, report, running, env);
  } finally {
    // For the bench (and the curious): how many API requests this command sent, watches included.
    if (env.SANDSTORE_REQUEST_COUNT && kube) {
      const counts = kube.requestCount;
      const total = Object.values(counts).reduce((a, b) => a + b, 0);
      stderr.write(
        `api requests: ${total} (${Object.entries(counts)
          .map(([v, n]) => `${v} ${n}`)
          .join(', ')})\n`,
      );
    }
    if (env.SANDSTORE_TRACE) {
      mark('done');
      stderr.write(`${traceLine()}\n`);
    }
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return code;
}

function exitCodeFor(
  err: unknown,
  report: Reporter,
  running: RunnerCommand | undefined,
  env: NodeJS.ProcessEnv,
): number {
  const e = err as Error & { code?: string; exitCode?: number };
  if (typeof e.code === 'string' && e.code.startsWith('commander.')) {
    // --help and --version exit 0; usage errors were printed by commander.
    return e.exitCode === 0 ? 0 : 2;
  }
  if (err instanceof CommandError) {
    if (err.exitCode === EXIT_INTERRUPTED && running && 'whenInterrupted' in running && running.whenInterrupted)
      err.withDetails(running.whenInterrupted);
    report.error(err.message);
    for (const line of err.details) report.detail(line);
    return err.exitCode;
  }
  // The machine said no (a full or read-only disk, permissions) on a path no command expected to
  // fail: the path and the cause in one sentence, not a bug.
  if (isFileSystemError(err)) return exitCodeFor(fileSystemFailure(err), report, running, env);
  return reportInternalError(err, report, env);
}

/** Anything that is not a CommandError is a bug in the runner: one sentence, and the stack on request. */
export function reportInternalError(err: unknown, report: Reporter, env: NodeJS.ProcessEnv = process.env): number {
  const e = err as Error | undefined;
  report.error(
    `internal error: ${e?.message ?? String(err)} (a bug in sandstore-deploy; run again ` +
      `with SANDSTORE_DEBUG=1 for the stack trace and report it)`,
  );
  if (env.SANDSTORE_DEBUG) report.detail(e?.stack ?? String(err));
  return 1;
}
