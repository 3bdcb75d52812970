import type { Pod, StatefulSet } from './kube.js';
import { isPodReady, ordinalOf, podRevision, podProblems, restarts } from './pods.js';

/** The rollout decision, from a StatefulSet and its pods: pure, so the unit tests pin it down. */
export type RolloutState =
  | { readonly state: 'done' }
  | { readonly state: 'progressing'; readonly detail: string }
  | { readonly state: 'failed'; readonly pod: string; readonly reason: string };

export interface RolloutPolicy {
  /** How long an updated pod may take to become Ready before the rollout is declared failed. */
  readonly podReadySeconds: number;
  /** Restart counts when the rollout began: a pod that restarts after that is crash-looping. */
  readonly restartsAtStart?: ReadonlyMap<string, number>;
  /** Now, in ms (injected for tests). */
  readonly now: number;
}

/**
 * Done only when the controller has seen the latest spec, every replica is updated and Ready, and
 * the current revision has caught up with the update revision. Failed as soon as a pod on the new
 * revision crash-loops, cannot be pulled or scheduled, or stays not-Ready past its deadline.
 */
export function assessRollout(sts: StatefulSet | undefined, pods: readonly Pod[], policy: RolloutPolicy): RolloutState {
  if (!sts) return { state: 'progressing', detail: 'waiting for the StatefulSet' };
  const status = sts.status;
  const replicas = sts.spec?.replicas ?? 1;
  const generation = sts.metadata.generation ?? 0;
  if ((status?.observedGeneration ?? 0) < generation)
    return { state: 'progressing', detail: 'waiting for the controller to observe the new spec' };
  const updateRevision = status?.updateRevision;

  for (const pod of [...pods].sort((a, b) => ordinalOf(b) - ordinalOf(a))) {
    if (updateRevision && podRevision(pod) !== updateRevision) continue;
    if (pod.metadata.deletionTimestamp) continue;
    const crashed = podProblems(pod);
    const before = policy.restartsAtStart?.get(pod.metadata.name) ?? 0;
    if (crashed.length > 0) return { state: 'failed', pod: pod.metadata.name, reason: crashed.join('; ') };
    if (restarts(pod) > before && !isPodReady(pod)) {
      return {
        state: 'failed',
        pod: pod.metadata.name,
        reason: `restarted ${restarts(pod) - before} time(s) since the rollout began and is not Ready`,
      };
    }
    const created = Date.parse(pod.metadata.creationTimestamp ?? '');
    if (!isPodReady(pod) && Number.isFinite(created) && policy.now - created > policy.podReadySeconds * 1000) {
      return {
        state: 'failed',
        pod: pod.metadata.name,
        reason:
          `not Ready ${Math.round((policy.now - created) / 1000)}s after it was created (deadline ` +
          `${policy.podReadySeconds}s)`,
      };
    }
  }

  const ready = status?.readyReplicas ?? 0;
  const updated = status?.updatedReplicas ?? 0;
  const current = status?.currentRevision;
  if (status?.replicas === replicas && ready === replicas && updated === replicas && current === updateRevision)
    return { state: 'done' };
  return { state: 'progressing', detail: `${updated}/${replicas} updated, ${ready}/${replicas} ready` };
}
