import { expect } from '@jest/globals';
import { pod, type PodState } from './pod-fixture.js';
import type { Leadership } from '../../lib/runner/leader.js';
import {
  appendEntriesHandled,
  assessQuorum,
  assessReplacement,
  leaderServes,
  nextToReplace,
  type QuorumReading,
} from '../../lib/runner/quorum.js';
import { parseSandstoreHistograms } from '../../lib/benchmark/server-metrics.js';

const three = (states: Partial<Record<string, PodState>> = {}, rev = 'old') =>
  [0, 1, 2].map((i) => pod(`sandstore-${i}`, rev, { uid: `sandstore-${i}-uid`, ...states[`sandstore-${i}`] }));
const led = (leader?: string, term = 4): Leadership => ({ leader, term, electing: leader === undefined });
/** Whether each member's handled AppendEntries grew since the reading before. */
const hearing = (o: Record<string, boolean | undefined> = {}) =>
  new Map(['sandstore-0', 'sandstore-1', 'sandstore-2'].map((p) => [p, p in o ? o[p] : true]));
const reading = (o: Partial<QuorumReading> = {}): QuorumReading => ({
  pods: three(),
  replicas: 3,
  leadership: led('sandstore-1'),
  recentRoleChanges: 0,
  hearsLeader: hearing(),
  ...o,
});

describe('the quorum-aware order', () => {
  test('followers from the highest ordinal down, the leader last', () => {
    const order: string[] = [];
    let pods = three();
    for (let next = nextToReplace(pods, 'new', 'sandstore-2'); next; next = nextToReplace(pods, 'new', 'sandstore-2')) {
      order.push(next.metadata.name);
      pods = pods.map((p) => (p.metadata.name === next.metadata.name ? pod(p.metadata.name, 'new') : p));
    }
    // The StatefulSet's own order would be 2, 1, 0: the leader first.
    expect(order).toEqual(['sandstore-1', 'sandstore-0', 'sandstore-2']);
  });

  test('a crash-looping outdated follower goes first, even before a higher ordinal', () => {
    const pods = three({ 'sandstore-0': { ready: false, waiting: 'CrashLoopBackOff', restarts: 4 } });
    expect(nextToReplace(pods, 'new', 'sandstore-1')?.metadata.name).toBe('sandstore-0');
  });

  test('pods already on the new revision are not replaced again; none left means done', () => {
    expect(nextToReplace(three({}, 'new'), 'new', 'sandstore-1')).toBeUndefined();
  });
});

describe('the gate before each step', () => {
  test('healthy: all Ready, one leader, no recent election, every other member hears the leader', () => {
    const r = reading();
    expect(assessQuorum(r, r.pods[0])).toEqual({ healthy: true });
  });

  test('each missing condition holds the step back, saying which', () => {
    const next = three()[0];
    const cases: [Partial<QuorumReading>, RegExp][] = [
      [{ pods: three({ 'sandstore-2': { ready: false } }) }, /not Ready: sandstore-2/],
      [{ pods: three().slice(0, 2) }, /2\/3 members exist/],
      [{ leadership: led(undefined) }, /no leader/],
      [{ recentRoleChanges: 2 }, /election ended moments ago/],
      // The pod replaced before has not rejoined: its AppendEntries do not grow, or cannot be read yet.
      [{ hearsLeader: hearing({ 'sandstore-2': false }) }, /heartbeats: sandstore-2$/],
      [{ hearsLeader: hearing({ 'sandstore-2': undefined }) }, /heartbeats: sandstore-2$/],
    ];
    for (const [o, reason] of cases)
      expect(assessQuorum(reading(o), next)).toEqual({ healthy: false, reason: expect.stringMatching(reason) });
  });

  test('the leader handles no AppendEntries: only the others must hear it', () => {
    const r = reading({ leadership: led('sandstore-2', 5), hearsLeader: hearing({ 'sandstore-2': false }) });
    expect(assessQuorum(r)).toEqual({ healthy: true });
  });

  test('a leader serves when a quorum hears it; logs naming a leader nobody hears do not count', () => {
    expect(leaderServes(reading())).toMatchObject({ serves: true });
    expect(leaderServes(reading({ hearsLeader: hearing({ 'sandstore-0': false }) }))).toMatchObject({ serves: true });
    const cutOff = reading({ hearsLeader: hearing({ 'sandstore-0': false, 'sandstore-2': false }) });
    expect(leaderServes(cutOff)).toEqual({ serves: false, why: expect.stringContaining('0 other member(s) hear') });
    expect(leaderServes(reading({ leadership: led(undefined, 7) }))).toEqual({
      serves: false,
      why: 'no leader: an election is under way (term 7)',
    });
  });

  test('a failing member may be replaced while the others are healthy, never while another is out', () => {
    const crashing = { ready: false, waiting: 'CrashLoopBackOff', restarts: 3 };
    const pods = three({ 'sandstore-0': crashing });
    expect(assessQuorum(reading({ pods }), pods[0])).toEqual({ healthy: true });
    const two = three({ 'sandstore-0': crashing, 'sandstore-2': { ready: false } });
    expect(assessQuorum(reading({ pods: two }), two[0]).healthy).toBe(false);
    // A healthy member is never replaced while a failing one is out.
    expect(assessQuorum(reading({ pods }), pods[1]).healthy).toBe(false);
  });

  test('without Sand Store events (kwok stand-ins) readiness alone decides', () => {
    expect(
      assessQuorum(reading({ leadership: undefined, hearsLeader: hearing({ 'sandstore-2': undefined }) })),
    ).toEqual({
      healthy: true,
    });
  });
});

describe('the replacement pod', () => {
  const want = { oldUid: 'old-uid', updateRevision: 'new', readySeconds: 60, restartsBefore: 0, now: 30_000 };
  test('waits for a new pod on the new revision, then Ready', () => {
    expect(assessReplacement(pod('sandstore-1', 'old', { uid: 'old-uid' }), want).state).toBe('waiting');
    expect(assessReplacement(pod('sandstore-1', 'new', { ready: false, created: 20_000 }), want).state).toBe('waiting');
    expect(assessReplacement(pod('sandstore-1', 'new'), want)).toEqual({ state: 'ready' });
  });
  test('fails on a crash loop, a restart while not Ready, or a missed deadline', () => {
    const crash = pod('sandstore-1', 'new', { ready: false, waiting: 'CrashLoopBackOff', restarts: 2 });
    expect(assessReplacement(crash, want)).toMatchObject({ state: 'failed', reason: /CrashLoopBackOff/ });
    const restarted = pod('sandstore-1', 'new', { ready: false, restarts: 1, created: 20_000 });
    expect(assessReplacement(restarted, want)).toMatchObject({ state: 'failed', reason: /restarted 1 time/ });
    const slow = pod('sandstore-1', 'new', { ready: false, created: -40_000 });
    expect(assessReplacement(slow, want)).toMatchObject({ state: 'failed', reason: /deadline 60s/ });
    // Resumed: the restarts a paused pod had already do not count again.
    expect(assessReplacement(restarted, { ...want, restartsBefore: 1 }).state).toBe('waiting');
  });
});

test("a node's handled AppendEntries, from its metrics", () => {
  const scrape = [
    '# TYPE sandstore_raft_replicator_latency_seconds histogram',
    'sandstore_raft_replicator_latency_seconds_count{node="sandstore-1",operation="handle_append_entries",' +
      'service="DurableRaftReplicator"} 17',
    'sandstore_raft_replicator_latency_seconds_count{node="sandstore-1",operation="broadcast_append_entries",' +
      'service="DurableRaftReplicator"} 3',
  ].join('\n');
  expect(appendEntriesHandled(parseSandstoreHistograms(scrape))).toBe(17);
  expect(appendEntriesHandled(parseSandstoreHistograms(''))).toBeUndefined();
});
