import type { Pod } from './kube.js';
import type { Leadership } from './leader.js';
import { isPodReady, ordinalOf, podProblems, podRevision, restarts } from './pods.js';

/**
 * The quorum-aware roll's decisions, pure so the unit tests pin them down: which outdated pod the
 * runner replaces next, whether the cluster is healthy enough to replace it, and how the pod that
 * replaced it is doing. The runner (quorum-roll.ts) reads the cluster and acts on them.
 */

/** A member that serves nobody: not Ready, or a problem a user must hear about (crash loop, pull error). */
export const isFailing = (pod: Pod): boolean => !isPodReady(pod) || podProblems(pod).length > 0;

/**
 * The next pod to replace among those not on `updateRevision`: a failing one first (it serves
 * nobody, as Strimzi's roller reasons), then the followers from the highest ordinal down, the leader
 * last. Undefined when every pod is on the new revision.
 */
export function nextToReplace(pods: readonly Pod[], updateRevision: string, leader?: string): Pod | undefined {
  const outdated = pods.filter((p) => podRevision(p) !== updateRevision && !p.metadata.deletionTimestamp);
  const rank = (p: Pod) => (isFailing(p) ? 0 : p.metadata.name === leader ? 2 : 1);
  return [...outdated].sort((a, b) => rank(a) - rank(b) || ordinalOf(b) - ordinalOf(a))[0];
}

/** What the runner read of the cluster before a step. */
export interface QuorumReading {
  /** The data plane's pods as the API server lists them. */
  readonly pods: readonly Pod[];
  readonly replicas: number;
  /** Who leads, from the event logs; undefined when no pod logged a role change (no Sand Store events). */
  readonly leadership?: Leadership;
  /** Role changes logged within the quiet window: an election just happened, or is under way. */
  readonly recentRoleChanges: number;
  /**
   * Per pod: whether the AppendEntries it handled grew since the reading before (the leader's
   * heartbeats, every 50 ms, reach it); undefined when its metrics could not be read.
   */
  readonly hearsLeader: ReadonlyMap<string, boolean | undefined>;
}

export type QuorumHealth = { readonly healthy: true } | { readonly healthy: false; readonly reason: string };

/**
 * Whether the cluster may lose `next` now (or, without `next`, whether the roll may end): every
 * other member Ready, and `next` too unless it is failing (replacing a member that serves nobody
 * takes nobody out); exactly one leader and no election in the quiet window; and every other
 * member, the pod replaced before included, hears the leader (its handled AppendEntries grow: a
 * member that hears the heartbeats calls no election of its own). Without Sand Store events (kwok's
 * stand-in pods) only readiness counts.
 */
export function assessQuorum(reading: QuorumReading, next?: Pod): QuorumHealth {
  const live = reading.pods.filter((p) => !p.metadata.deletionTimestamp);
  if (live.length < reading.replicas)
    return { healthy: false, reason: `${live.length}/${reading.replicas} members exist` };
  const notReady = live.filter((p) => p.metadata.name !== next?.metadata.name || !isFailing(p)).filter(isFailing);
  if (notReady.length > 0)
    return { healthy: false, reason: `not Ready: ${notReady.map((p) => p.metadata.name).join(', ')}` };
  const leadership = reading.leadership;
  if (!leadership) return { healthy: true };
  if (!leadership.leader) return { healthy: false, reason: 'no leader: an election is under way' };
  if (next && isFailing(next) && leadership.leader === next.metadata.name)
    return { healthy: false, reason: `the leader ${leadership.leader} is not Ready` };
  if (reading.recentRoleChanges > 0)
    return {
      healthy: false,
      reason: `an election ended moments ago (leader ${leadership.leader}, term ${leadership.term})`,
    };
  const deaf = live
    .filter((p) => p.metadata.name !== leadership.leader && p.metadata.name !== next?.metadata.name)
    .filter((p) => reading.hearsLeader.get(p.metadata.name) !== true)
    .map((p) => p.metadata.name);
  if (deaf.length > 0) return { healthy: false, reason: `not hearing the leader's heartbeats: ${deaf.join(', ')}` };
  return { healthy: true };
}

/** How the pod that replaced a deleted one is doing. */
export type ReplacementState =
  | { readonly state: 'ready' }
  | { readonly state: 'waiting'; readonly detail: string }
  | { readonly state: 'failed'; readonly reason: string };

/**
 * The replacement of `name` (a pod other than `oldUid`, on `updateRevision`): Ready, still coming
 * up, or failed (a crash loop, an image it cannot pull, a restart since it was created while not
 * Ready, or not Ready `readySeconds` after its creation).
 */
export function assessReplacement(
  pod: Pod | undefined,
  want: {
    readonly oldUid?: string;
    readonly updateRevision: string;
    readonly readySeconds: number;
    /** Restarts it had already (a paused roll's pod, resumed); a new pod has none. */
    readonly restartsBefore: number;
    readonly now: number;
  },
): ReplacementState {
  if (!pod || pod.metadata.uid === want.oldUid || pod.metadata.deletionTimestamp)
    return { state: 'waiting', detail: 'waiting for the StatefulSet to create the new pod' };
  if (podRevision(pod) !== want.updateRevision)
    return { state: 'waiting', detail: `${pod.metadata.name} is not on revision ${want.updateRevision}` };
  const problems = podProblems(pod);
  if (problems.length > 0) return { state: 'failed', reason: problems.join('; ') };
  if (isPodReady(pod)) return { state: 'ready' };
  const restarted = restarts(pod) - want.restartsBefore;
  if (restarted > 0) return { state: 'failed', reason: `restarted ${restarted} time(s) and is not Ready` };
  const created = Date.parse(pod.metadata.creationTimestamp ?? '');
  const age = want.now - created;
  if (Number.isFinite(created) && age > want.readySeconds * 1000)
    return {
      state: 'failed',
      reason: `not Ready ${Math.round(age / 1000)}s after it was created (deadline ${want.readySeconds}s)`,
    };
  return { state: 'waiting', detail: `${pod.metadata.name} is not Ready yet` };
}

/** The handled-AppendEntries count in one scrape of a node's metrics (its Raft replicator's histogram). */
export function appendEntriesHandled(
  series: readonly { component: string; operation: string; count: number }[],
): number | undefined {
  return series.find((s) => s.component === 'raft_replicator' && s.operation === 'handle_append_entries')?.count;
}

/**
 * Whether a leader serves: the event logs name one, and enough members hear its heartbeats for a
 * quorum with it. Sand Store 7ab6010 logs no candidacy, so followers cut off from their leader show
 * only here: their handled AppendEntries stop growing while the logs still name the old leader.
 */
export function leaderServes(reading: QuorumReading): { readonly serves: boolean; readonly why: string } {
  const leader = reading.leadership?.leader;
  if (!leader) return { serves: false, why: `no leader: an election is under way (term ${reading.leadership?.term})` };
  const hearing = [...reading.hearsLeader].filter(([pod, heard]) => pod !== leader && heard === true).length;
  const needed = Math.floor(reading.replicas / 2);
  return hearing >= needed
    ? { serves: true, why: `${leader} leads, heard by ${hearing} other member(s)` }
    : {
        serves: false,
        why: `${leader} last logged leadership, but ${hearing} other member(s) hear its heartbeats (a quorum needs ${needed})`,
      };
}
