import { setTimeout as delay } from 'node:timers/promises';
import { Component, componentSelector, SandstoreContainers } from '../labels.js';
import { parseSandstoreHistograms } from '../benchmark/server-metrics.js';
import { FailedError } from '../errors.js';
import type { CommandContext } from './commands/context.js';
import { objectPath, type Pod, type StatefulSet } from './kube.js';
import { currentLeader, readRoleChanges, type Leadership } from './leader.js';
import { lastTermination, podProblems, podRevision, restarts } from './pods.js';
import {
  appendEntriesHandled,
  assessQuorum,
  assessReplacement,
  isFailing,
  leaderServes,
  nextToReplace,
  type QuorumReading,
} from './quorum.js';
import { objectsOf, waitFor, InterruptedError } from './watch.js';
import { waitForRollout } from './waits.js';

/**
 * The quorum-aware roll (Flow 4): with the StatefulSet on OnDelete, the runner replaces its pods
 * one at a time in the order quorum.ts chooses, each step gated on the cluster's health as Sand
 * Store itself reports it (event logs, metrics), and hands the StatefulSet back to RollingUpdate
 * (partition 0) once every pod is on the new revision, so that `kubectl rollout status` and a plain
 * `kubectl apply` behave as they always do.
 */

/** Set on the StatefulSet while a roll is paused: the pod and why, for `status`. */
export const ROLLOUT_PAUSED_ANNOTATION = 'sandstore.io/rollout-paused';

/**
 * No role change within this many seconds (the kubelet's clock, the log API's granularity) before a
 * step: a restarted member that will call an election does so within 600 ms of starting.
 */
const QUIET_SECONDS = 2;
/** Sand Store offers nothing to watch for its health: the event logs and metrics are read again this often. */
const POLL_MS = 500;

/** The runner paused the roll on a failing pod (exit code 1). */
class RolloutPausedError extends FailedError {}

/** Who leads, and whether the event logs hold any role change at all (kwok's stand-ins log none). */
export async function readQuorumLeadership(ctx: CommandContext): Promise<Leadership | undefined> {
  const changes = await readRoleChanges(ctx);
  if (changes.length === 0) return undefined;
  const leader = currentLeader(changes);
  return { leader, term: Math.max(...changes.map((c) => c.term)), electing: leader === undefined };
}

/** A member's metrics answer within milliseconds; one that does not in this long is stuck (a frozen process). */
const METRICS_TIMEOUT_MS = 5000;

/** AppendEntries the pod's Sand Store handled since it started, from its metrics; undefined while unreadable. */
async function appendEntriesOf(ctx: CommandContext, pod: Pod): Promise<number | undefined> {
  const port = pod.spec?.containers
    .find((c) => c.name === SandstoreContainers.node)
    ?.ports?.find((p) => p.name === 'metrics')?.containerPort;
  if (port === undefined || isFailing(pod)) return undefined;
  try {
    const path = `${objectPath('Pod', `${pod.metadata.name}:${port}`, ctx.namespace)}/proxy/metrics`;
    const text = await ctx.kube.request<string>('GET', path, { raw: true, timeoutMs: METRICS_TIMEOUT_MS });
    return appendEntriesHandled(parseSandstoreHistograms(text));
  } catch {
    return undefined; // not listening yet, or stuck: asked again at the next reading
  }
}

/** Reads the cluster again and again; each reading compares the members' AppendEntries with the one before. */
class QuorumReader {
  private counts = new Map<string, number | undefined>();

  public constructor(
    private readonly ctx: CommandContext,
    private readonly replicas: number,
  ) {}

  public async read(): Promise<QuorumReading> {
    const ctx = this.ctx;
    const selector = componentSelector(ctx.profile.name, Component.dataPlane);
    const pods = (await ctx.kube.list('Pod', { namespace: ctx.namespace, labelSelector: selector })).items;
    const leadership = await readQuorumLeadership(ctx);
    const recent = leadership ? await readRoleChanges(ctx, QUIET_SECONDS) : [];
    // Keyed by uid: a replaced pod starts counting from zero.
    const counts = new Map(
      await Promise.all(
        pods.map(async (p) => [p.metadata.uid ?? '', leadership ? await appendEntriesOf(ctx, p) : undefined] as const),
      ),
    );
    const hearsLeader = new Map(
      pods.map((p) => {
        const [before, now] = [this.counts.get(p.metadata.uid ?? ''), counts.get(p.metadata.uid ?? '')];
        return [p.metadata.name, before === undefined || now === undefined ? undefined : now > before] as const;
      }),
    );
    this.counts = counts;
    return { pods, replicas: this.replicas, leadership, recentRoleChanges: recent.length, hearsLeader };
  }
}

/**
 * Refuses (exit 1, before anything is changed) a roll of a cluster whose leader does not serve:
 * none logged, or too few members hear it. Two readings a second apart. Without Sand Store events
 * (kwok's stand-ins) there is nothing to tell: it goes on, ordered and gated by readiness alone.
 */
export async function refuseWithoutLeader(ctx: CommandContext, sts: StatefulSet): Promise<void> {
  const reader = new QuorumReader(ctx, sts.spec?.replicas ?? 1);
  const first = await reader.read();
  if (!first.leadership) {
    ctx.report.problem('quorum', 'no role change in the event logs: order and gate by readiness only');
    return;
  }
  await pause1s(ctx);
  const { serves, why } = leaderServes(await reader.read());
  if (serves) {
    ctx.report.step('quorum', why);
    return;
  }
  throw new FailedError(
    `the Sand Store cluster on ${ctx.target.context} has no serving leader: ${why}; a roll would take a ` +
      `member out of a cluster that is not serving. Nothing was replaced.`,
    [`what the nodes log: npm run logs -- --profile=${ctx.profile.name}`, 'run update again once one leads'],
  );
}

async function pause1s(ctx: CommandContext): Promise<void> {
  try {
    await delay(1000, undefined, { signal: ctx.signal });
  } catch {
    throw new InterruptedError('the cluster to be read again');
  }
}

/** The StatefulSet once its controller has seen its latest spec (its update revision is then the new one). */
async function observedStatefulSet(ctx: CommandContext, name: string): Promise<StatefulSet> {
  return waitFor(
    ctx.kube,
    [{ key: 'sts', kind: 'StatefulSet', namespace: ctx.namespace, fieldSelector: `metadata.name=${name}` }],
    {
      what: `StatefulSet ${name} to observe its new spec`,
      timeoutSeconds: ctx.timeoutSeconds,
      signal: ctx.signal,
      check: (s) => {
        const sts = objectsOf(s, 'sts', 'StatefulSet')[0];
        const observed = sts && (sts.status?.observedGeneration ?? 0) >= (sts.metadata.generation ?? 0);
        return observed && sts.status?.updateRevision ? sts : undefined;
      },
    },
  );
}

/**
 * Waits until the cluster may lose its next pod (or, when none is left, until the roll may end),
 * reading Sand Store's health every POLL_MS. Returns the next pod (none when all are updated) and the leader.
 */
async function awaitHealthy(
  ctx: CommandContext,
  reader: QuorumReader,
  updateRevision: string,
): Promise<{ readonly next?: Pod; readonly leader?: string }> {
  const deadline = Date.now() + ctx.timeoutSeconds * 1000;
  let said = '';
  for (;;) {
    const reading = await reader.read();
    const next = nextToReplace(reading.pods, updateRevision, reading.leadership?.leader);
    const health = assessQuorum(reading, next);
    if (health.healthy) return { next, leader: reading.leadership?.leader };
    if (health.reason !== said) ctx.report.step('quorum', `waiting: ${(said = health.reason)}`);
    if (Date.now() > deadline)
      throw new FailedError(`the cluster was not healthy within ${ctx.timeoutSeconds}s: ${health.reason}`, [
        'no further pod was replaced; once it is healthy: npm run resume -- --profile=' + ctx.profile.name,
      ]);
    try {
      await delay(POLL_MS, undefined, { signal: ctx.signal });
    } catch {
      throw new InterruptedError('the cluster to be healthy');
    }
  }
}

/** Waits for the pod that replaces `name` to be Ready; a failing one pauses the roll. */
async function awaitReplacement(
  ctx: CommandContext,
  stsName: string,
  name: string,
  want: { oldUid?: string; updateRevision: string; readySeconds: number; restartsBefore: number },
): Promise<void> {
  let recreated = false;
  const state = await waitFor(
    ctx.kube,
    [{ key: 'pod', kind: 'Pod', namespace: ctx.namespace, fieldSelector: `metadata.name=${name}` }],
    {
      what: `pod ${name} to be replaced and Ready`,
      timeoutSeconds: ctx.timeoutSeconds,
      signal: ctx.signal,
      recheckSeconds: 1,
      onConnectionProblem: (text) => ctx.report.problem('api server', text),
      // Said once, as the controller's new pod shows up: the wait for its readiness follows.
      onChange: (_key, type, pod) => {
        if (recreated || type === 'DELETED' || pod.metadata.uid === want.oldUid || pod.metadata.deletionTimestamp)
          return;
        recreated = true;
        ctx.report.step('update', `${name} recreated; waiting for it to be Ready`);
      },
      check: (s) => {
        const state = assessReplacement(objectsOf(s, 'pod', 'Pod')[0], { ...want, now: Date.now() });
        return state.state === 'waiting' ? undefined : state;
      },
    },
  );
  if (state.state === 'failed') await pause(ctx, stsName, name, state.reason);
}

/** Pauses the roll on a failing pod: the StatefulSet stays on OnDelete, so no other pod is replaced. */
async function pause(ctx: CommandContext, stsName: string, podName: string, reason: string): Promise<never> {
  const ns = ctx.namespace;
  await ctx.kube.mergePatch('StatefulSet', stsName, ns, {
    metadata: { annotations: { [ROLLOUT_PAUSED_ANNOTATION]: `${podName}: ${reason}` } },
  });
  const pod = await ctx.kube.find('Pod', podName, ns);
  const t = pod ? lastTermination(pod) : undefined;
  const kubectl = `kubectl --context ${ctx.target.context} -n ${ns}`;
  const why = t?.reason ? ` (${t.reason})` : '';
  const message = t?.message ? `: ${t.message.trim()}` : '';
  const termination = t ? `container ${t.container} exit ${t.exitCode ?? '?'}${why}${message}` : 'none recorded';
  throw new RolloutPausedError(
    `rollout of StatefulSet ${stsName} paused at pod ${podName}: it failed (${reason}); it is the ` +
      `only pod replaced since, the others were not touched`,
    [
      `failing pod: ${podName}${pod ? ` (${podProblems(pod).join('; ') || pod.status?.phase})` : ''}`,
      `last termination: ${termination}`,
      `previous logs: npm run logs -- --profile=${ctx.profile.name} --pod=${podName} ` +
        `--previous   (or: ${kubectl} logs ${podName} -c ${SandstoreContainers.node} --previous)`,
      `after a fix: npm run update -- --profile=${ctx.profile.name} (the failing pod is ` +
        `replaced first); to continue as is: npm run resume -- --profile=${ctx.profile.name}`,
    ],
  );
}

/**
 * Replaces every pod not on the StatefulSet's update revision, one at a time, in quorum order;
 * first waits for a pod already on the new revision that is not Ready (a paused roll's) to come up.
 */
export async function rollInOrder(ctx: CommandContext, name: string, podReadySeconds: number): Promise<void> {
  const sts = await observedStatefulSet(ctx, name);
  const updateRevision = sts.status?.updateRevision ?? '';
  const selector = componentSelector(ctx.profile.name, Component.dataPlane);
  const pods = (await ctx.kube.list('Pod', { namespace: ctx.namespace, labelSelector: selector })).items;
  for (const pod of pods.filter((p) => podRevision(p) === updateRevision && isFailing(p))) {
    ctx.report.step('quorum', `${pod.metadata.name} is on the new revision and not Ready: waiting for it first`);
    await awaitReplacement(ctx, name, pod.metadata.name, {
      updateRevision,
      readySeconds: podReadySeconds,
      restartsBefore: restarts(pod),
    });
  }
  const reader = new QuorumReader(ctx, sts.spec?.replicas ?? 1);
  for (;;) {
    const { next, leader } = await awaitHealthy(ctx, reader, updateRevision);
    if (!next) break;
    const uid = next.metadata.uid;
    const role = isFailing(next) ? 'not Ready' : next.metadata.name === leader ? 'the leader' : 'a follower';
    ctx.report.step('update', `replacing ${next.metadata.name} (${role})`);
    await ctx.kube.delete('Pod', next.metadata.name, ctx.namespace, { preconditions: { uid } });
    await awaitReplacement(ctx, name, next.metadata.name, {
      oldUid: uid,
      updateRevision,
      readySeconds: podReadySeconds,
      restartsBefore: 0,
    });
  }
  // Every pod is on the new revision: the StatefulSet goes back to RollingUpdate, which its
  // controller completes at once (current revision = update revision).
  await ctx.kube.mergePatch('StatefulSet', name, ctx.namespace, {
    metadata: { annotations: { [ROLLOUT_PAUSED_ANNOTATION]: null } },
    spec: { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 0 } } },
  });
  await waitForRollout(ctx, name, selector, { podReadySeconds, failFast: true });
  ctx.report.success(`StatefulSet ${name} rolled out on ${ctx.target.context} in ${ctx.report.elapsed()}`);
}

/** Hands the StatefulSet to the runner: OnDelete (no pod is replaced by the controller), no pause recorded. */
export async function takeOverRoll(ctx: CommandContext, name: string): Promise<void> {
  await ctx.kube.mergePatch('StatefulSet', name, ctx.namespace, {
    metadata: { annotations: { [ROLLOUT_PAUSED_ANNOTATION]: null } },
    spec: { updateStrategy: { type: 'OnDelete', rollingUpdate: null } },
  });
}
