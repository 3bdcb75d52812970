import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { LabelKeys, profileSelector } from '../../lib/labels.js';
import { currentLeader, roleChanges, type RoleChange } from '../../lib/runner/leader.js';
import { objectsOf, waitFor } from '../../lib/runner/watch.js';
import { buildSandstoreFiles, expectExit, kubeFor, onNode, podReady, rolledOutSince, runCli } from './harness.js';

/**
 * A roll of a deployed profile's data plane under client load, measured from outside the cluster:
 * two clients at once, one following a follower's "leader is <pod>" answer to that pod's node port
 * (the outage the cluster causes) and one trying the nodes in turn (what a client without that help
 * sees), the pods replaced and how many were out at once, and the elections counted from Sand
 * Store's own event logs on the node's disk. Used by test/e2e/quorum-roll.test.ts (issue 22's proof)
 * and by `npm run bench -- --only=roll-under-load`; no jest in here.
 */
export interface RollTarget {
  /** The real node's cluster (its kube context and up.sh's cluster.env). */
  readonly context: string;
  readonly profile: string;
  readonly namespace: string;
  readonly replicas: number;
  /** The project the profile lives in (a variant's throwaway copy); default the repository. */
  readonly cwd?: string;
}

/** A file read back other than written (sandstore-files' churn), and read again 1 s later. */
export interface Mismatch {
  readonly at: string;
  readonly path: string;
  readonly wrote: number;
  readonly read: number;
  readonly readIsPrefix: boolean;
  readonly rereadEqual: boolean;
  readonly rereadError?: string;
  /** At the end of the run: how many nodes, each asked alone, returned the whole, of how many. */
  readonly finalWhole: number;
  readonly nodes: number;
}

export interface ChurnReport {
  readonly operations: number;
  readonly abandoned: number;
  readonly mismatches: Mismatch[];
  readonly outages: { startedAt: string; millis: number; mostFrequentError: string }[];
}

export interface RollResult {
  readonly order: string[];
  readonly leaderBefore?: string;
  readonly mostOut: number;
  readonly seconds: number;
  readonly elections: number;
  readonly terms: number;
  readonly follow: ChurnReport;
  readonly naive: ChurnReport;
}

const dataPlane = (t: RollTarget) => `${profileSelector(t.profile)},${LabelKeys.component}=data-plane`;

async function podsOf(t: RollTarget) {
  const kube = kubeFor(t.context);
  const { items } = await kube.list('Pod', { namespace: t.namespace, labelSelector: dataPlane(t) });
  return items.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
}

/** Every role change in the nodes' event logs, from the claims on the node's disk (they outlive the pods). */
async function roleChangesOnDisk(t: RollTarget): Promise<RoleChange[]> {
  const kube = kubeFor(t.context);
  const claims = (await kube.list('PersistentVolumeClaim', { namespace: t.namespace, labelSelector: dataPlane(t) }))
    .items;
  const all: RoleChange[] = [];
  for (const c of claims) {
    const pod = c.metadata.name.replace(/^data-/, '');
    const pv = await kube.get('PersistentVolume', c.spec?.volumeName ?? '');
    const log = join(onNode(pv.spec?.hostPath?.path ?? '', t.context), 'logs', `${pod}.log`);
    if (existsSync(log)) all.push(...roleChanges(pod, readFileSync(log, 'utf8')));
  }
  return all;
}
const leaderElections = (changes: readonly RoleChange[]) => changes.filter((c) => c.role === 'Leader').length;
const newestTerm = (changes: readonly RoleChange[]) => Math.max(0, ...changes.map((c) => c.term));

/** Stops every churn client still running (a failed roll's): for a test's afterEach. */
const running: (() => void)[] = [];
export function stopChurnClients(): void {
  for (const stop of running.splice(0)) stop();
}

/**
 * A churn client through `client`, stopped by SIGTERM (which the runner passes on) when `stop` is
 * called. `served(after)` resolves once it has printed a count of operations done above `after` (it
 * prints "churn: <n> ok" every 10): the client is being served, which no event of the cluster says.
 */
function startChurn(t: RollTarget, mode: 'churn' | 'churn-follow') {
  const work = mkdtempSync(join(tmpdir(), `${mode}-`));
  const report = join(work, 'report.json');
  let stop = () => {};
  let ok = 0;
  let waiters: { after: number; resolve: () => void }[] = [];
  const args = ['client', `--profile=${t.profile}`, '--', buildSandstoreFiles(), mode, '0', report];
  const done = runCli(args, {
    cwd: t.cwd,
    env: { INIT_CWD: work, KUBE_CONTEXT: t.context },
    onSpawn: (child) => {
      stop = () => child.kill('SIGTERM');
      running.push(stop);
    },
    onStdout: (text) => {
      const counts = [...text.matchAll(/^churn: (\d+) ok$/gm)];
      ok = counts.length > 0 ? Number(counts[counts.length - 1][1]) : 0;
      for (const w of waiters) if (ok > w.after) w.resolve();
      waiters = waiters.filter((w) => ok <= w.after);
    },
  });
  return {
    done: () => ok,
    served: (after: number, seconds = 120) =>
      new Promise<void>((resolve, reject) => {
        if (ok > after) return resolve();
        const timer = setTimeout(
          () => reject(new Error(`${mode}: no operation done beyond ${after} within ${seconds}s`)),
          seconds * 1000,
        );
        waiters.push({ after, resolve: () => (clearTimeout(timer), resolve()) });
      }),
    stop: async () => {
      stop();
      expectExit(await done, 0);
      return JSON.parse(readFileSync(report, 'utf8')) as ChurnReport;
    },
  };
}

/** Runs `roll` under both clients, watching which pods are replaced and how many are out at once. */
export async function rollUnderLoad(t: RollTarget, roll: () => Promise<void>): Promise<RollResult> {
  const kube = kubeFor(t.context);
  const before = await roleChangesOnDisk(t);
  const leaderBefore = currentLeader(before);
  const uids = new Map((await podsOf(t)).map((p) => [p.metadata.name, p.metadata.uid]));
  const follow = startChurn(t, 'churn-follow');
  const naive = startChurn(t, 'churn');
  // Both clients served before the roll starts.
  await Promise.all([follow.served(0), naive.served(0)]);
  const order: string[] = [];
  let mostOut = 0;
  const sts0 = await kube.get('StatefulSet', 'sandstore', t.namespace);
  const watched = waitFor(
    kube,
    [
      { key: 'sts', kind: 'StatefulSet', namespace: t.namespace, fieldSelector: 'metadata.name=sandstore' },
      { key: 'pods', kind: 'Pod', namespace: t.namespace, labelSelector: dataPlane(t) },
    ],
    {
      what: 'the roll to finish',
      timeoutSeconds: 400,
      onChange: (key, type, pod, snap) => {
        if (key !== 'pods') return;
        const name = pod.metadata.name;
        if (type !== 'DELETED' && pod.metadata.uid !== uids.get(name) && !order.includes(name)) order.push(name);
        const ready = objectsOf(snap, 'pods', 'Pod').filter((p) => !p.metadata.deletionTimestamp && podReady(p));
        mostOut = Math.max(mostOut, t.replicas - ready.length);
      },
      check: (snap) => (rolledOutSince(objectsOf(snap, 'sts', 'StatefulSet')[0], sts0, t.replicas) ? true : undefined),
    },
  );
  const start = Date.now();
  await roll();
  await watched;
  const seconds = (Date.now() - start) / 1000;
  // The order the pods were replaced in, as the API server stamped their successors' creation.
  const created = (await podsOf(t)).sort((a, b) =>
    (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? ''),
  );
  order.splice(0, order.length, ...created.map((p) => p.metadata.name));
  // The elections a roll causes may end after it: the clients run until both are served again,
  // each having done operations since the roll ended (their outages until then are the roll's).
  await Promise.all([follow.served(follow.done()), naive.served(naive.done())]);
  const [followReport, naiveReport] = [await follow.stop(), await naive.stop()];
  const after = await roleChangesOnDisk(t);
  return {
    order,
    leaderBefore,
    mostOut,
    seconds,
    elections: leaderElections(after) - leaderElections(before),
    terms: newestTerm(after) - newestTerm(before),
    follow: followReport,
    naive: naiveReport,
  };
}

/**
 * A stale read of Sand Store 7ab6010 (docs/leader-access.md#what-still-fails): right after an
 * acknowledged write, a read returned a prefix of it (the first payload, or nothing of a new file),
 * and the whole came back later: on the re-read 1 s after, or from every node at the end of the run
 * (a member still catching up its log serves a new file as empty, for longer than a second). A read
 * that no node serves whole at the end is not one: data lost.
 */
export const isStaleRead = (m: Mismatch) =>
  m.readIsPrefix && m.read < m.wrote && (m.rereadEqual || (m.nodes > 0 && m.finalWhole === m.nodes));

/** A client's outages: the longest and their total, in seconds. */
export const outage = (r: ChurnReport) => ({
  longest: Math.max(0, ...r.outages.map((o) => o.millis)) / 1000,
  total: r.outages.reduce((s, o) => s + o.millis, 0) / 1000,
});

/** One line: what a roll cost, for a test's log and the bench's notes. */
export function describeRoll(name: string, r: RollResult): string {
  const f = outage(r.follow);
  const n = outage(r.naive);
  const errors = r.follow.outages.map((o) => `${(o.millis / 1000).toFixed(1)}s ${o.mostFrequentError.slice(0, 120)}`);
  return (
    `${name}: roll ${r.seconds.toFixed(1)}s, order ${r.order.join(' ')}, at most ${r.mostOut} out, ` +
    `${r.elections} leader election(s) over ${r.terms} term(s); following client: ${r.follow.operations} ops, ` +
    `${r.follow.outages.length} outage(s), longest ${f.longest.toFixed(1)}s, total ${f.total.toFixed(1)}s; ` +
    `naive client: ${r.naive.operations} ops, ${r.naive.outages.length} outage(s), longest ` +
    `${n.longest.toFixed(1)}s, total ${n.total.toFixed(1)}s; stale reads that healed: ` +
    `${[r.follow, r.naive].map((c) => c.mismatches.filter(isStaleRead).length).join(' and ')}; ` +
    `following client's errors: ${errors.join(' | ')}`
  );
}

/**
 * The StatefulSet's own roll, as a user without the runner starts it: kubectl, highest ordinal
 * first. Asynchronous: a synchronous child would hold up this process's watch of the roll.
 * `kubectlPath`: the binary the caller found (the local cluster's own, not whatever PATH holds).
 */
export async function kubectlRestart(t: RollTarget, kubectlPath: string): Promise<void> {
  const kubectl = (...args: string[]) =>
    promisify(execFile)(kubectlPath, ['--context', t.context, '-n', t.namespace, ...args], { encoding: 'utf8' });
  await kubectl('rollout', 'restart', 'statefulset/sandstore');
  await kubectl('rollout', 'status', 'statefulset/sandstore', '--timeout=300s');
}
