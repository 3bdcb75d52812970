import pRetry from 'p-retry';
import { Component, componentSelector, SandstoreContainers } from '../labels.js';
import { InterruptedError } from './watch.js';
import type { CommandContext } from './commands/context.js';
import { objectPath } from './kube.js';

/** One role change a Sand Store node logged: `Became Leader|Follower|Candidate ... term=N`. */
export interface RoleChange {
  readonly pod: string;
  readonly role: 'Leader' | 'Follower' | 'Candidate';
  readonly term: number;
}

/** Every role change in one node's event log, in order. */
export function roleChanges(pod: string, log: string): RoleChange[] {
  return [...log.matchAll(/Became (Leader|Follower|Candidate)\b[^\n]*?\bterm=(\d+)/g)].map((m) => ({
    pod,
    role: m[1] as RoleChange['role'],
    term: Number(m[2]),
  }));
}

/**
 * The current leader by Raft's own rule, from the nodes' role changes: the node whose last change
 * is "Became Leader" in the newest term any node has seen. Undefined while there is none (an
 * election under way, or no event logs).
 */
export function currentLeader(changes: readonly RoleChange[]): string | undefined {
  const newest = Math.max(0, ...changes.map((c) => c.term));
  const last = new Map(changes.map((c) => [c.pod, c]));
  const leaders = [...last.values()].filter((c) => c.role === 'Leader' && c.term === newest);
  return leaders.length === 1 ? leaders[0].pod : undefined;
}

/** Who leads, as the data plane's event logs tell it. */
export interface Leadership {
  /** The current leader; undefined while there is none. */
  readonly leader?: string;
  /** The newest Raft term any node has logged; undefined when no node logged a role change. */
  readonly term?: number;
  /** Role changes are logged but none names a current leader: an election is under way. */
  readonly electing: boolean;
}

/**
 * Asks the data plane who leads, from each pod's event log (the `events` sidecar), one request per
 * pod. Sand Store has no query for it that a client outside the cluster can use: its topology
 * answer names the answering node's own node port, whoever leads (see docs/commands.md, "Sand Store 7ab6010").
 */
export async function readLeadership(ctx: CommandContext): Promise<Leadership> {
  const changes = await readRoleChanges(ctx);
  const leader = currentLeader(changes);
  const term = changes.length > 0 ? Math.max(...changes.map((c) => c.term)) : undefined;
  return { leader, term, electing: leader === undefined && changes.length > 0 };
}

/**
 * Every role change in the data plane's event logs (the `events` sidecar of each running pod), or
 * only those the kubelet stamped within the last `sinceSeconds`: the node's own clock decides, so
 * "an election in the last few seconds" does not depend on this machine's clock agreeing with it.
 */
export async function readRoleChanges(ctx: CommandContext, sinceSeconds?: number): Promise<RoleChange[]> {
  const pods = (
    await ctx.kube.list('Pod', {
      namespace: ctx.namespace,
      labelSelector: componentSelector(ctx.profile.name, Component.dataPlane),
    })
  ).items;
  const logs = await Promise.all(
    pods.map(async (pod) => {
      const running = (pod.status?.containerStatuses ?? []).some(
        (c) => c.name === SandstoreContainers.events && c.state?.running,
      );
      if (!running) return [];
      const query = { container: SandstoreContainers.events, sinceSeconds };
      const log = await ctx.kube.request<string>('GET', `${objectPath('Pod', pod.metadata.name, ctx.namespace)}/log`, {
        query,
        raw: true,
      });
      return roleChanges(pod.metadata.name, log);
    }),
  );
  return logs.flat();
}

/**
 * How long `smoke` and `client` wait for an election to end. The elections after a rolling update
 * went on for up to 28 s past the roll on the real node (docs/commands.md, "Sand Store 7ab6010").
 */
const LEADER_WAIT_SECONDS = 60;

/** An election is under way: asked again. */
class ElectionUnderWay extends Error {}

/**
 * The current leader, waiting (up to LEADER_WAIT_SECONDS, at most the command's timeout) while an
 * election is under way: a client started then gives its request to a node that cannot serve it
 * and fails (seen: `smoke` right after an update). Sand Store offers nothing to watch for a leader,
 * so the event logs are read again with back-off. Undefined, at once, when the logs hold no role
 * change at all (no Sand Store events: nothing to wait for), or once the wait ran out; both are said
 * as a problem line, and the caller goes on with the nodes in ordinal order.
 */
export async function awaitLeader(ctx: CommandContext): Promise<string | undefined> {
  const seconds = Math.min(LEADER_WAIT_SECONDS, ctx.timeoutSeconds);
  const started = Date.now();
  let waited = false;
  try {
    const leader = await pRetry(
      async () => {
        const { leader: found, electing } = await readLeadership(ctx);
        if (electing) throw new ElectionUnderWay();
        return found;
      },
      {
        retries: Infinity,
        minTimeout: 250,
        factor: 1.5,
        maxTimeout: 2000,
        maxRetryTime: seconds * 1000,
        signal: ctx.signal,
        shouldRetry: ({ error }) => error instanceof ElectionUnderWay,
        onFailedAttempt: ({ error }) => {
          if (waited || !(error instanceof ElectionUnderWay)) return;
          waited = true;
          ctx.report.problem(
            'leader',
            `an election is under way (role changes in the event logs, no current leader); waiting ` +
              `up to ${seconds}s for it to end`,
          );
        },
      },
    );
    if (leader === undefined)
      ctx.report.problem('leader', 'no role change in the event logs yet; going on with the nodes in ordinal order');
    else if (waited)
      ctx.report.step('leader', `${leader}, after ${((Date.now() - started) / 1000).toFixed(1)}s of waiting`);
    return leader;
  } catch (err) {
    if (ctx.signal?.aborted) throw new InterruptedError('a Sand Store leader to be elected');
    if (!(err instanceof ElectionUnderWay)) throw err;
    ctx.report.problem('leader', `still no leader after ${seconds}s; going on with the nodes in ordinal order`);
    return undefined;
  }
}
