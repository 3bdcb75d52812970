/**
 * The runner: one CLI, one process per command, acting only under the profile's pinned kube context.
 *
 *   npm run <command> -- --profile=<name> [options]      (or: npm run sandstore -- <command> ...)
 *
 * Exit codes: 0 done; 1 the operation failed (timeout, failed Job, paused rollout, stuck deletion,
 * differences found by diff); 2 refused before sending anything (bad arguments, unknown or invalid
 * profile, unknown or mismatched context, missing or stale dist/, image pre-flight); 130 interrupted.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { distDir } from '../paths.js';
import { ProfileError, type Profile } from '../profile.js';
import { loadProfile, UnknownProfileError } from '../profiles.js';
import { profileSelector, SandstoreContainers } from '../labels.js';
import { DestroyStuckError, destroyProfile } from './delete.js';
import { deploy, type DeployProgress } from './commands/deploy.js';
import { client } from './commands/client.js';
import { smoke } from './commands/smoke.js';
import { status } from './commands/status.js';
import { resume, update } from './commands/update.js';
import { waitContext, type CommandContext } from './commands/context.js';
import { buildAndPushImage, ImageBuildError, ImagePreflightError } from './image.js';
import { ApiError, ApiUnreachableError, Kube } from './kube.js';
import { followLogs, printLogs } from './logs.js';
import { ManifestsRefusedError, readManifests } from './manifests.js';
import { Reporter } from './report.js';
import { mark, traceLine } from './trace.js';
import { describeTarget, resolveTarget, TargetRefusedError } from './target.js';
import { WaitFailedError } from './waits.js';
import { InterruptedError } from './watch.js';

export const EXIT = { ok: 0, failed: 1, refused: 2, interrupted: 130 } as const;

interface CommonOptions {
  profile: string;
  context?: string;
  timeout: number;
}

const seconds = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`expected a number of seconds > 0, got "${v}"`);
  return n;
};
const duration = (v: string) => {
  const m = /^(\d+)(s|m|h)?$/.exec(v);
  if (!m) throw new InvalidArgumentError(`expected a duration like 30s, 10m or 2h, got "${v}"`);
  return Number(m[1]) * ({ s: 1, m: 60, h: 3600 }[m[2] ?? 's'] ?? 1);
};

function common(cmd: Command): Command {
  return cmd
    .addOption(new Option('--profile <name>', 'profile to act on (a file in profiles/)').default('ssd-raft'))
    .addOption(new Option('--context <name>', 'kube context to act on; else KUBE_CONTEXT, else the profile\'s pinned context (never the current-context)'))
    .addOption(new Option('--timeout <seconds>', 'deadline of each wait').argParser(seconds).default(300));
}

class Refused extends Error {}

/** An unknown or invalid profile is a refusal (exit 2), like a bad argument. */
async function loadProfileOrRefuse(name: string): Promise<Profile> {
  try {
    return await loadProfile(name);
  } catch (err) {
    if (err instanceof UnknownProfileError || err instanceof ProfileError) throw new Refused(err.message);
    throw err;
  }
}

/** Loads the profile, resolves and prints the target: all before the first request. */
async function prepare(opts: CommonOptions, report: Reporter, signal: AbortSignal): Promise<CommandContext> {
  const profile = await loadProfileOrRefuse(opts.profile);
  mark('profile loaded');
  const target = resolveTarget(profile, opts.context);
  mark('target resolved');
  report.info(`${report.paint('bold', 'acting on')} ${describeTarget(target)} (profile ${profile.name})`);
  return { profile, target, kube: new Kube(target.kubeConfig), report, distDir: distDir(), timeoutSeconds: opts.timeout, signal, namespace: profile.namespace };
}

export async function main(argv: readonly string[]): Promise<number> {
  mark('bundle loaded');
  const report = new Reporter();
  const interrupt = new AbortController();
  let interruptedOnce = false;
  const onSigint = () => {
    if (interruptedOnce) process.exit(EXIT.interrupted);
    interruptedOnce = true;
    interrupt.abort();
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  let code: number = EXIT.ok;
  const deployProgress: DeployProgress = { phase: 'start', applied: [] };
  let running = '';

  let kube: Kube | undefined;
  const run = (name: string, body: (ctx: CommandContext, opts: any) => Promise<number | void>) => async (opts: any) => {
    running = name;
    const ctx = await prepare(opts, report, interrupt.signal);
    kube = ctx.kube;
    code = (await body(ctx, opts)) ?? EXIT.ok;
  };

  const program = new Command('sandstore')
    .description('Deploy Sand Store from dist/<profile>/ onto the profile\'s pinned kube context')
    .showHelpAfterError()
    .exitOverride();

  common(program.command('deploy').description('clean-slate deploy (Flow 3): destroy, then apply in phases, waiting for each'))
    .option('--smoke', 'end with the smoke test')
    .action(run('deploy', async (ctx, opts) => {
      await deploy(ctx, deployProgress);
      if (opts.smoke) await smoke(ctx);
    }));

  common(program.command('destroy').description('delete everything of the profile, claims included, and wait until no pod, claim or volume of it remains (Flow 2)'))
    .option('--wait-namespace', 'also wait until the cluster has finalized the namespace (~5 s), e.g. before applying into it with another tool')
    .action(run('destroy', async (ctx, opts) => {
      let manifests;
      try {
        manifests = await readManifests(ctx.distDir, ctx.profile, { allowStale: true });
      } catch {
        manifests = undefined; // destroy works from the labels alone
      }
      await destroyProfile(waitContext(ctx), manifests, { namespace: opts.waitNamespace ? 'delete-and-wait' : 'delete' });
      ctx.report.success(`nothing of profile ${ctx.profile.name} remains on ${ctx.target.context}`);
    }));

  common(program.command('update').description('rolling update (Flow 4): restart (or new image), one pod at a time, paused on a failing pod'))
    .option('--image <ref>', 'run this image instead of the profile\'s')
    .option('--build', 'build and push the profile\'s image first (see `image`)')
    .option('--source <path>', 'Sand Store source checkout for --build', process.env.SANDSTORE_SRC ?? '../sandstore')
    .addOption(new Option('--pod-ready-timeout <seconds>', 'how long an updated pod may take to become Ready').argParser(seconds).default(120))
    .action(run('update', async (ctx, opts) => {
      if (opts.build) await buildAndPushImage({ profile: ctx.profile, sourcePath: opts.source, log: (l) => ctx.report.info(l) });
      await update(ctx, { image: opts.image, podReadySeconds: opts.podReadyTimeout });
    }));

  common(program.command('resume').description('continue a paused rollout (partition back to 0)'))
    .addOption(new Option('--pod-ready-timeout <seconds>', 'how long an updated pod may take to become Ready').argParser(seconds).default(120))
    .action(run('resume', async (ctx, opts) => resume(ctx, { podReadySeconds: opts.podReadyTimeout })));

  program.command('image').description('build the profile\'s image for linux/amd64 and push it (Flow 1); no cluster call')
    .addOption(new Option('--profile <name>', 'profile').default('ssd-raft'))
    .option('--source <path>', 'Sand Store source checkout (holds deploy/docker/Dockerfile)', process.env.SANDSTORE_SRC ?? '../sandstore')
    .option('--no-push', 'build only')
    .action(async (opts) => {
      running = 'image';
      const profile = await loadProfileOrRefuse(opts.profile);
      const result = await buildAndPushImage({ profile, sourcePath: opts.source, push: opts.push, log: (l) => report.info(l) });
      report.success(`${result.image} ${result.pushed ? 'built and pushed' : 'built'}`);
    });

  common(program.command('logs').description('follow every Sand Store pod\'s logs, prefixed by pod (Flow 5)'))
    .option('--pod <name>', 'one pod only')
    .option('--previous', 'the previous (crashed) container of --pod')
    .option('--container <name>', `one container: ${SandstoreContainers.events} (Sand Store's events, followed from its log file) or ${SandstoreContainers.node} (the program's own output: fatal errors, panics); default: both when following, ${SandstoreContainers.events} with --pod, ${SandstoreContainers.node} with --previous`)
    .addOption(new Option('--since <duration>', 'only lines newer than this, e.g. 10m').argParser(duration))
    .action(run('logs', async (ctx, opts) => {
      if (opts.previous && !opts.pod) throw new Refused('--previous needs --pod=<name>: previous logs belong to one container');
      if (opts.pod) {
        // A crash is the program's own output; a live pod's story is its event log.
        const container = opts.container ?? (opts.previous ? SandstoreContainers.node : SandstoreContainers.events);
        await printLogs(ctx.kube, ctx.report, { namespace: ctx.profile.namespace, pod: opts.pod, container, previous: Boolean(opts.previous), sinceSeconds: opts.since });
        return;
      }
      await followLogs(ctx.kube, ctx.report, {
        namespace: ctx.profile.namespace,
        labelSelector: `${profileSelector(ctx.profile.name)},app.kubernetes.io/component=data-plane`,
        containers: opts.container ? [opts.container] : [SandstoreContainers.events, SandstoreContainers.node],
        sinceSeconds: opts.since,
        signal: interrupt.signal,
      });
    }));

  common(program.command('smoke').description('run the smoke-test Job against every node, print its logs, remove it'))
    .action(run('smoke', smoke));

  common(program.command('client').description('the <host>:<node port> addresses a client outside the cluster uses, leader first; with a command after --, run it with SANDSTORE_SEEDS set to them'))
    .argument('[command...]', 'a Sand Store client to run, e.g. -- ./open_smoke')
    .action(async (command: string[], opts: any) => run('client', (ctx) => client(ctx, command))(opts));

  common(program.command('status').description('pods, claims, services, rollout and bootstrap state'))
    .action(run('status', status));

  common(program.command('diff').description('live objects against dist/ (server-side dry run), as a YAML diff; exit 1 if different'))
    .action(run('diff', async (ctx) => {
      // Loaded on demand: the diff and YAML libraries are needed by this command only.
      const { diff } = await import('./commands/diff.js');
      return (await diff(ctx)) ? EXIT.failed : EXIT.ok;
    }));

  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (err) {
    code = exitCodeFor(err, report, running, deployProgress);
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
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
  return code;
}

function exitCodeFor(err: unknown, report: Reporter, command: string, progress: DeployProgress): number {
  const e = err as Error & { code?: string; exitCode?: number };
  if (typeof e.code === 'string' && e.code.startsWith('commander.')) {
    // --help and --version exit 0; usage errors were printed by commander.
    return e.exitCode === 0 ? EXIT.ok : EXIT.refused;
  }
  if (err instanceof Refused || err instanceof TargetRefusedError || err instanceof ManifestsRefusedError) {
    report.error(e.message);
    return EXIT.refused;
  }
  if (err instanceof ImagePreflightError) {
    report.error(`image pre-flight failed; nothing was built and no cluster was contacted:\n${err.problems.map((p) => `  - ${p}`).join('\n')}`);
    return EXIT.refused;
  }
  if (err instanceof InterruptedError) {
    report.error(interruptedState(command, err.what, progress));
    return EXIT.interrupted;
  }
  if (err instanceof WaitFailedError || err instanceof DestroyStuckError || err instanceof ImageBuildError) {
    report.error(e.message);
    const details = err instanceof DestroyStuckError ? [...err.stuck, 'to force (this deletes data and skips clean-up):', ...err.forceCommands.map((c) => `  ${c}`)]
      : err instanceof WaitFailedError ? err.details : [];
    for (const d of details) report.detail(d);
    return EXIT.failed;
  }
  if (err instanceof ApiUnreachableError) {
    report.error(`${e.message}\n  Is the cluster up? For the local profile: npm run cluster:up. Otherwise check the context's server in your kubeconfig.`);
    return EXIT.failed;
  }
  if (err instanceof ApiError) {
    // The API server refused a request: its own words say why (admission, quota, a terminating namespace...).
    report.error(`the API server refused ${e.message}${command === 'deploy' ? `\n  Deploy stopped in phase "${progress.phase}"; phases applied: ${progress.applied.join(', ') || 'none'}. Fix the cause and run it again (it starts from a clean slate).` : ''}`);
    return EXIT.failed;
  }
  // Anything else is a bug in the runner: keep the stack for the report.
  report.error(e.stack ?? String(err));
  return EXIT.failed;
}

/** What the cluster holds after Ctrl-C: every request was either sent whole or not at all. */
function interruptedState(command: string, what: string, progress: DeployProgress): string {
  const base = `interrupted while waiting for ${what}. No request was left half-sent.`;
  switch (command) {
    case 'deploy':
      return `${base} Deploy stopped in phase "${progress.phase}"; phases applied: ${progress.applied.join(', ') || 'none'}. The cluster holds a partial deployment that Kubernetes keeps converging; \`npm run deploy\` starts over from a clean slate, \`npm run destroy\` removes it, \`npm run status\` shows it.`;
    case 'update':
    case 'resume':
      return `${base} The new spec is applied and the StatefulSet controller goes on rolling pods one at a time by itself, without the runner's crash guard; \`npm run status\` shows where it is.`;
    case 'destroy':
      return `${base} Deletions were requested and the cluster finishes them by itself; run \`npm run destroy\` again to wait for them.`;
    default:
      return base;
  }
}

process.exitCode = await main(process.argv.slice(2));
