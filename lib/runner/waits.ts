import { isKind, type Kube, type KubeObject, type Pod } from './kube.js';
import { isPodReady, lastTermination, podProblems, restarts } from './pods.js';
import type { Reporter } from './report.js';
import { assessRollout, type RolloutPolicy, type RolloutState } from './rollout.js';
import { objectsOf, waitFor, WaitTimeoutError, type Snapshot } from './watch.js';
import { FailedError } from '../errors.js';
import { jobPodsSelector } from '../labels.js';

/** The waits the commands compose, all on the one watch mechanism (watch.ts). */

export interface WaitContext {
  readonly kube: Kube;
  readonly namespace: string;
  readonly report: Reporter;
  readonly timeoutSeconds: number;
  readonly signal?: AbortSignal;
}

/** A wait that ended in a failure the user can act on (exit code 1): the details say which pods and why. */
class WaitFailedError extends FailedError {}

const podsSource = (namespace: string, labelSelector: string) => ({
  key: 'pods',
  kind: 'Pod',
  namespace,
  labelSelector,
});
const byName = (key: string, kind: string, namespace: string, name: string) => ({
  key,
  kind,
  namespace,
  fieldSelector: `metadata.name=${name}`,
});

/** Reports each pod problem the moment it appears. */
function reportPodProblems(report: Reporter) {
  return (key: string, type: string, obj: KubeObject) => {
    if (key !== 'pods' || type === 'DELETED' || !isKind(obj, 'Pod')) return;
    for (const p of podProblems(obj)) report.problem(`pod ${obj.metadata.name}`, p);
  };
}

/** One line per pod that is not Ready, with what is wrong: the summary printed on a timeout. */
function summarizePods(pods: readonly Pod[]): string[] {
  return pods
    .filter((p) => !isPodReady(p))
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))
    .map((p) => {
      const problems = podProblems(p);
      const phase = p.status?.phase ?? 'Unknown';
      return `pod ${p.metadata.name}: ${phase}, not Ready${problems.length > 0 ? `: ${problems.join('; ')}` : ''}`;
    });
}

export interface RolloutWaitPolicy extends Omit<RolloutPolicy, 'now' | 'restartsAtStart'> {
  /** End the wait as soon as an updated pod fails (update), or keep waiting until the deadline (deploy). */
  readonly failFast: boolean;
}

/**
 * Waits for a StatefulSet's rollout (create or update) to be complete: observedGeneration caught up,
 * every replica updated and Ready, currentRevision = updateRevision. With `failFast`, an updated pod
 * that crash-loops or misses its Ready deadline ends the wait with the 'failed' state. Restarts are
 * counted from the pods' counts when the wait first lists them.
 */
/** How a rollout wait ends: done, or (with failFast) failed on a pod. */
export type RolloutOutcome = Exclude<RolloutState, { readonly state: 'progressing' }>;

export async function waitForRollout(
  ctx: WaitContext,
  name: string,
  podSelector: string,
  policy: RolloutWaitPolicy,
): Promise<RolloutOutcome> {
  let lastDetail = '';
  let restartsAtStart: Map<string, number> | undefined;
  try {
    return await waitFor(
      ctx.kube,
      [byName('sts', 'StatefulSet', ctx.namespace, name), podsSource(ctx.namespace, podSelector)],
      {
        what: `StatefulSet ${name} to roll out`,
        timeoutSeconds: ctx.timeoutSeconds,
        // A pod that silently stays not-Ready produces no event; its deadline must still fire.
        recheckSeconds: policy.failFast ? 1 : undefined,
        signal: ctx.signal,
        onConnectionProblem: (text) => ctx.report.problem('api server', text),
        onChange: reportPodProblems(ctx.report),
        check: (s: Snapshot) => {
          const sts = objectsOf(s, 'sts', 'StatefulSet')[0];
          const pods = objectsOf(s, 'pods', 'Pod');
          restartsAtStart ??= new Map(pods.map((p) => [p.metadata.name, restarts(p)]));
          const state = assessRollout(sts, pods, {
            podReadySeconds: policy.podReadySeconds,
            restartsAtStart,
            now: Date.now(),
          });
          if (state.state === 'progressing' && state.detail !== lastDetail) {
            lastDetail = state.detail;
            ctx.report.step(name, state.detail);
          }
          return state.state === 'done' || (state.state === 'failed' && policy.failFast) ? state : undefined;
        },
      },
    );
  } catch (err) {
    throw withPodSummary(err);
  }
}

/** Waits for a Job to complete; a Failed job ends the wait at once with its pods' last words. */
export async function waitForJob(ctx: WaitContext, name: string): Promise<void> {
  try {
    await waitFor(
      ctx.kube,
      [byName('job', 'Job', ctx.namespace, name), podsSource(ctx.namespace, jobPodsSelector(name))],
      {
        what: `Job ${name} to complete`,
        timeoutSeconds: ctx.timeoutSeconds,
        signal: ctx.signal,
        onConnectionProblem: (text) => ctx.report.problem('api server', text),
        onChange: reportPodProblems(ctx.report),
        check: (s) => {
          const job = objectsOf(s, 'job', 'Job')[0];
          const conditions = job?.status?.conditions ?? [];
          if (conditions.some((c) => c.type === 'Complete' && c.status === 'True')) return true;
          const failed = conditions.find((c) => c.type === 'Failed' && c.status === 'True');
          if (failed) {
            const pods = objectsOf(s, 'pods', 'Pod').map((p) => {
              const t = lastTermination(p);
              const reason = t?.reason ? ` (${t.reason})` : '';
              const message = t?.message ? `: ${t.message}` : '';
              const exit = t ? `, container ${t.container} exited ${t.exitCode}${reason}${message}` : '';
              return `pod ${p.metadata.name}: ${p.status?.phase}${exit}`;
            });
            throw new WaitFailedError(
              `Job ${name} failed: ${failed.reason ?? ''} ${failed.message ?? ''}`.trim(),
              pods,
            );
          }
          return undefined;
        },
      },
    );
  } catch (err) {
    throw withPodSummary(err);
  }
}

/** Turns a timeout into a failure that lists every pod that is not Ready and why. */
function withPodSummary(err: unknown): unknown {
  if (err instanceof WaitTimeoutError)
    return new WaitFailedError(err.message, summarizePods(objectsOf(err.snapshot, 'pods', 'Pod')));
  return err;
}
