/**
 * The runner: one CLI, one process per command, acting only under the profile's pinned kube context.
 *
 *   npm run <command> -- --profile=<name> [options]      (or: npm run sandstore -- <command> ...)
 *
 * Exit codes: see program.ts (0 done, 1 failed, 2 refused before sending anything, 130 interrupted).
 */
import { runRunner, reportInternalError } from './program.js';
import { Reporter } from './report.js';

// An error thrown where no command can catch it (a stream's callback) still ends as one sentence
// with exit code 1, never as a stack trace.
const lastResort = (err: unknown) => process.exit(reportInternalError(err, new Reporter()));
process.on('uncaughtException', lastResort);
process.on('unhandledRejection', lastResort);

process.exitCode = await runRunner(process.argv.slice(2));
