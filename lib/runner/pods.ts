import { Component, LabelKeys } from '../labels.js';
import type { Pod } from './kube.js';

/** Pure readings of pod status: what is wrong with a pod, whether it is Ready, which revision. */

const WAITING_PROBLEMS = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'ErrImageNeverPull',
  'CrashLoopBackOff',
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
]);

export function isPodReady(pod: Pod): boolean {
  return (
    !pod.metadata.deletionTimestamp &&
    (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')
  );
}

export function podRevision(pod: Pod): string | undefined {
  return pod.metadata.labels?.['controller-revision-hash'];
}

export function restarts(pod: Pod): number {
  return (pod.status?.containerStatuses ?? []).reduce((n, c) => n + (c.restartCount ?? 0), 0);
}

/** The last termination of a container that died: reason, exit code and message, for post-mortems. */
export function lastTermination(
  pod: Pod,
): { container: string; exitCode?: number; reason?: string; message?: string } | undefined {
  for (const c of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
    const t = c.lastState?.terminated ?? (c.state?.terminated?.exitCode ? c.state.terminated : undefined);
    if (t) return { container: c.name, exitCode: t.exitCode, reason: t.reason, message: t.message };
  }
  return undefined;
}

/** Problems a user must hear about while waiting, one line each; empty when the pod is fine or just starting. */
export function podProblems(pod: Pod): string[] {
  const problems: string[] = [];
  const unschedulable = (pod.status?.conditions ?? []).find(
    (c) => c.type === 'PodScheduled' && c.status === 'False' && c.reason === 'Unschedulable',
  );
  if (unschedulable)
    problems.push(
      `cannot be scheduled (FailedScheduling): ` +
        `${unschedulable.message}${resourceHint(pod, unschedulable.message ?? '')}`,
    );
  for (const c of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
    const waiting = c.state?.waiting;
    if (waiting?.reason !== undefined && WAITING_PROBLEMS.has(waiting.reason)) {
      const t = c.lastState?.terminated;
      const died = t
        ? `; last exit ` +
          `${t.exitCode}${t.reason ? ` (${t.reason})` : ''}${t.message ? `: ${String(t.message).trim().split('\n')[0]}` : ''}`
        : '';
      problems.push(
        `container ${c.name}: ` +
          `${waiting.reason}${waiting.message ? ` (${waiting.message})` : ''}, ` +
          `${c.restartCount ?? 0} restarts${died}`,
      );
    }
  }
  if (pod.status?.phase === 'Failed')
    problems.push(
      `failed${pod.status.reason ? `: ${pod.status.reason}` : ''}${pod.status.message ? ` ${pod.status.message}` : ''}`,
    );
  return problems;
}

/**
 * What to change when the scheduler finds no node with enough free cpu or memory (Story 2.4): the
 * profile's requests for this pod's component, or the nodes.
 */
function resourceHint(pod: Pod, message: string): string {
  const short = [...new Set([...message.matchAll(/Insufficient (cpu|memory|ephemeral-storage)/g)].map((m) => m[1]))];
  if (short.length === 0) return '';
  const component = pod.metadata.labels?.[LabelKeys.component];
  const part =
    component === Component.controlPlane ? 'etcd' : component === Component.dataPlane ? 'sandstore' : undefined;
  const profileName = pod.metadata.labels?.[LabelKeys.profile];
  const where =
    part && profileName
      ? `resources.${part}.requests.{${short.join(',')}} in profiles/${profileName}.ts`
      : `the ${short.join(' and ')} requests`;
  return (
    `; the profile asks for more ${short.join(' and ')} than a matching node has free: ` +
    `lower ${where}, or free capacity on the node`
  );
}

/** A pod of a StatefulSet by ordinal: `sandstore-2` → 2. */
export function ordinalOf(pod: Pod | string): number {
  const name = typeof pod === 'string' ? pod : pod.metadata.name;
  return Number(name.slice(name.lastIndexOf('-') + 1));
}
