import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { resolve } from 'node:path';
import { findOnPath, isExecutableFile } from '../../executables.js';
import { clientEndpoints, refusedWithin, type ClientEndpoint } from '../client-access.js';
import { awaitLeader } from '../leader.js';
import { manifestsOfPhase, readManifests } from '../manifests.js';
import { DeployPhase } from '../../labels.js';
import { FailedError, RefusedError } from '../../errors.js';
import type { ClusterCommand } from './command.js';
import type { CommandContext } from './context.js';
import { InterruptedError } from '../watch.js';

/**
 * `client`: the addresses a Sand Store client outside the cluster uses (`<host>:<node port>` per
 * pod, the current leader's first), printed; or, given a command, that command run with
 * SANDSTORE_SEEDS set to them (Sand Store's clients read it), exiting with its exit code. So nobody
 * assembles host:port lists by hand: `npm run client -- --profile=local-node -- ./open_smoke`.
 *
 * Leader first because Sand Store 7ab6010 cannot send a client from a follower to the leader: its
 * topology answer names the answering node's own node port, and a follower rejects a mutation with
 * an INTERNAL error the client does not retry (see docs/commands.md, "Sand Store 7ab6010").
 */
async function client(ctx: CommandContext, command: readonly string[]): Promise<number> {
  // In the directory the user ran npm from (npm runs scripts in the project's): Sand Store's
  // clients write their own logs under ./run there.
  const cwd = process.env.INIT_CWD ?? process.cwd();
  if (command.length > 0) {
    // Found before the leader is looked up: a typo in the command sends nothing.
    const program = command[0];
    const found = program.includes('/')
      ? isExecutableFile(resolve(cwd, program))
      : findOnPath(program, process.env.PATH) !== undefined;
    if (!found) {
      const where = program.includes('/')
        ? `${resolve(cwd, program)} is not an executable file`
        : `no executable ${program} on PATH`;
      throw new RefusedError(
        `cannot run ${program}: ${where}; give the path of a Sand Store client (e.g. -- ` +
          `./open_smoke). Nothing was sent.`,
      );
    }
  }
  const manifests = await readManifests(ctx.distDir, ctx.profile);
  if (manifestsOfPhase(manifests, DeployPhase.clientAccess).length === 0) {
    throw new RefusedError(
      `profile ${ctx.profile.name} has no node ports (clientAccess) to reach from outside. ` + `Nothing was sent.`,
    );
  }
  const endpoints = await clientEndpoints(ctx, manifests);
  const leader = await awaitLeader(ctx);
  const ordered = leaderFirst(endpoints, leader);
  ctx.report.info(leader ? `leader: ${leader} (from its event log)` : 'leader: unknown; addresses in ordinal order');
  const seeds = ordered.map((e) => e.address).join(',');
  if (command.length === 0) {
    for (const e of ordered) ctx.report.info(`${e.pod.padEnd(12)} ${e.address}`);
    ctx.report.info(`SANDSTORE_SEEDS=${seeds}`);
    return 0;
  }
  await waitUntilAccepting(ctx, ordered);
  ctx.report.info(`running ${command.join(' ')} with SANDSTORE_SEEDS=${seeds}`);
  return new Promise<number>((resolve, reject) => {
    const child = spawn(command[0], command.slice(1), {
      stdio: 'inherit',
      cwd,
      // Which pod each address reaches: a client that follows a follower's "leader is <pod> at
      // <in-cluster address>" answer goes to that pod's address instead.
      env: { ...process.env, SANDSTORE_SEEDS: seeds, SANDSTORE_POD_ADDRESSES: podAddresses(ordered) },
    });
    // Ctrl-C in a terminal reaches the client directly (same process group); a SIGTERM or SIGINT
    // sent to the runner alone (a supervisor, a test) is passed on, and the client's exit is ours.
    const forward = () => child.kill('SIGTERM');
    ctx.signal?.addEventListener('abort', forward);
    child.on('error', (err) => reject(new FailedError(`cannot run ${command[0]}: ${err.message}`)));
    child.on('close', (code, signal) => {
      ctx.signal?.removeEventListener('abort', forward);
      resolve(code ?? 128 + (signal ? constants.signals[signal] : 0));
    });
  });
}

/** How long `client` waits for the node ports to accept connections before running the client anyway. */
const ACCEPT_WAIT_SECONDS = 30;

/**
 * Waits until every address accepts a TCP connection: right after a deploy, kube-proxy may not yet
 * have written the rules of node ports that were just created (seen on the real node: a client
 * started at once failed "all seeds failed topology ping"). If they still do not accept after
 * ACCEPT_WAIT_SECONDS (a firewall between here and the node?), it says so and runs the client
 * anyway, whose own error then tells more.
 */
async function waitUntilAccepting(ctx: CommandContext, endpoints: readonly ClientEndpoint[]): Promise<void> {
  const reachable = endpoints.filter((e) => !e.address.startsWith('<'));
  const refused = await refusedWithin(reachable, ACCEPT_WAIT_SECONDS, ctx.signal, () => {
    ctx.report.info(
      `waiting for the node ports to accept connections (up to ${ACCEPT_WAIT_SECONDS}s): they ` +
        `were created moments ago, or something is in the way`,
    );
  });
  if (ctx.signal?.aborted) throw new InterruptedError('the node ports to accept connections');
  if (refused.length > 0)
    ctx.report.problem(
      'client',
      `no connection to ` +
        `${refused.map(({ endpoint: e }) => `${e.address} (${e.pod})`).join(', ')} within ` +
        `${ACCEPT_WAIT_SECONDS}s; running the client anyway`,
    );
}

const podAddresses = (endpoints: readonly ClientEndpoint[]) => endpoints.map((e) => `${e.pod}=${e.address}`).join(',');

export function leaderFirst(endpoints: readonly ClientEndpoint[], leader: string | undefined): ClientEndpoint[] {
  return [...endpoints].sort((a, b) => Number(b.pod === leader) - Number(a.pod === leader));
}

/** `client`. */
export const clientCommand: ClusterCommand = {
  name: 'client',
  description:
    'the <host>:<node port> addresses a client outside the cluster uses, leader first; with ' +
    'a command after --, run it with SANDSTORE_SEEDS set to them',
  configure: (command) => command.argument('[command...]', 'a Sand Store client to run, e.g. -- ./open_smoke'),
  run: (ctx, _opts, args) => client(ctx, (args[0] as string[] | undefined) ?? []),
};
