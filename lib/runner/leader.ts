import { Component, LabelKeys, profileSelector, SandstoreContainers } from '../labels.js';
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
  return [...log.matchAll(/Became (Leader|Follower|Candidate)\b[^\n]*?\bterm=(\d+)/g)].map((m) => ({ pod, role: m[1] as RoleChange['role'], term: Number(m[2]) }));
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

/**
 * Asks the data plane who leads, from each pod's event log (the `events` sidecar), one request per
 * pod. Sand Store has no query for it that a client outside the cluster can use: its topology
 * answer names the answering node's own node port, whoever leads (see README, "Sand Store 7ab6010").
 */
export async function findLeader(ctx: CommandContext): Promise<string | undefined> {
  const pods = (await ctx.kube.list('Pod', { namespace: ctx.profile.namespace, labelSelector: `${profileSelector(ctx.profile.name)},${LabelKeys.component}=${Component.dataPlane}` })).items;
  const logs = await Promise.all(pods.map(async (pod) => {
    const running = (pod.status?.containerStatuses ?? []).some((c: any) => c.name === SandstoreContainers.events && c.state?.running);
    if (!running) return [];
    const log = await ctx.kube.request<string>('GET', `${objectPath('Pod', pod.metadata.name, ctx.profile.namespace)}/log`, { query: { container: SandstoreContainers.events }, raw: true });
    return roleChanges(pod.metadata.name, log);
  }));
  return currentLeader(logs.flat());
}
