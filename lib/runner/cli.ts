/**
 * The runner: one CLI, one process per command, acting only under the profile's pinned kube context.
 * Each command lives in its own module under commands/ (its options, its body); this file assembles
 * them, prepares their context and turns what they throw into an exit code.
 *
 *   npm run <command> -- --profile=<name> [options]      (or: npm run sandstore -- <command> ...)
 *
 * Exit codes: 0 done; 1 the operation failed (timeout, failed Job, paused rollout, stuck deletion,
 * differences found by diff); 2 refused before sending anything (bad arguments, unknown or invalid
 * profile, unknown or mismatched context, missing or stale dist/, image pre-flight); 130 interrupted.
 */
import { Command } from 'commander';
import { CommandError } from '../errors.js';
import { clientCommand } from './commands/client.js';
import { withSharedOptions, type RunnerCommand, type SharedOptions } from './commands/command.js';
import { prepareContext } from './commands/context.js';
import { deployCommand } from './commands/deploy.js';
import { destroyCommand } from './commands/destroy.js';
import { diffCommand } from './commands/diff.js';
import { imageCommand } from './commands/image.js';
import { logsCommand } from './commands/logs.js';
import { resumeCommand } from './commands/resume.js';
import { smokeCommand } from './commands/smoke.js';
import { statusCommand } from './commands/status.js';
import { updateCommand } from './commands/update.js';
import type { Kube } from './kube.js';
import { Reporter } from './report.js';
import { mark, traceLine } from './trace.js';
import { InterruptedError } from './watch.js';

const COMMANDS: readonly RunnerCommand[] = [
  deployCommand, destroyCommand, updateCommand, resumeCommand, imageCommand, logsCommand, smokeCommand, clientCommand, statusCommand, diffCommand,
];

const EXIT_INTERRUPTED = 130;

async function main(argv: readonly string[]): Promise<number> {
  mark('bundle loaded');
  const report = new Reporter();
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
    .description('Deploy Sand Store from dist/<profile>/ onto the profile\'s pinned kube context')
    .showHelpAfterError()
    .exitOverride();
  for (const spec of COMMANDS) {
    const command = program.command(spec.name).description(spec.description);
    if (!('local' in spec)) withSharedOptions(command);
    spec.configure?.(command);
    command.action(async (...params: unknown[]) => {
      running = spec;
      const self = params[params.length - 1] as Command;
      const options = self.opts();
      if ('local' in spec) {
        code = (await spec.run(report, options as SharedOptions)) ?? 0;
        return;
      }
      const ctx = await prepareContext(options as SharedOptions, report, interrupt.signal);
      kube = ctx.kube;
      code = (await spec.run(ctx, options, self.processedArgs)) ?? 0;
    });
  }

  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (err) {
    code = exitCodeFor(err, report, running);
  } finally {
    // For the bench (and the curious): how many API requests this command sent, watches included.
    if (process.env.SANDSTORE_REQUEST_COUNT && kube) {
      const counts = kube.requestCount;
      const total = Object.values(counts).reduce((a, b) => a + b, 0);
      process.stderr.write(`api requests: ${total} (${Object.entries(counts).map(([v, n]) => `${v} ${n}`).join(', ')})\n`);
    }
    if (process.env.SANDSTORE_TRACE) {
      mark('done');
      process.stderr.write(`${traceLine()}\n`);
    }
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return code;
}

function exitCodeFor(err: unknown, report: Reporter, running: RunnerCommand | undefined): number {
  const e = err as Error & { code?: string; exitCode?: number };
  if (typeof e.code === 'string' && e.code.startsWith('commander.')) {
    // --help and --version exit 0; usage errors were printed by commander.
    return e.exitCode === 0 ? 0 : 2;
  }
  if (err instanceof CommandError) {
    if (err instanceof InterruptedError && running && 'whenInterrupted' in running && running.whenInterrupted) err.withDetails(running.whenInterrupted);
    report.error(err.message);
    for (const line of err.details) report.detail(line);
    return err.exitCode;
  }
  // Anything else is a bug in the runner: one sentence, and the stack on request.
  report.error(`internal error: ${e?.message ?? String(err)} (a bug in sandstore-deploy; run again with SANDSTORE_DEBUG=1 for the stack trace and report it)`);
  if (process.env.SANDSTORE_DEBUG) report.detail(e?.stack ?? String(err));
  return 1;
}

process.exitCode = await main(process.argv.slice(2));
