import { Log } from '@kubernetes/client-node';
import type { Writable } from 'node:stream';
import { FailedError } from '../errors.js';
import { Component, componentSelector, jobPodsSelector, LabelKeys } from '../labels.js';
import { lineSplitter } from '../lines.js';
import { linePrefixer } from '../runner/logs.js';
import { isKind, objectPath, type Kube, type KubeObject, type Pod } from '../runner/kube.js';
import { isProfiles } from '../runner/ownership.js';
import { isPodReady, podProblems } from '../runner/pods.js';
import type { WaitContext } from '../runner/waits.js';
import { objectsOf, waitFor, WaitTimeoutError } from '../runner/watch.js';
import { GoTestOutput, parseGoTestOutput, type RunResult } from './go-test-output.js';
import { CONFORMANCE_CONTAINER, CONFORMANCE_KINDS, CONFORMANCE_NAME } from './objects.js';

/** The cluster side of `conformance`: is the profile there, did the pod start, what did the tests say, clean up. */

export interface ClusterContext extends WaitContext {
  readonly profileName: string;
}

/** Reasons a container of a pod that is never restarted will not start from. */
const NEVER_STARTS = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'ErrImageNeverPull',
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
]);

const jobPods = (ctx: ClusterContext) => ({
  key: 'pods',
  kind: 'Pod',
  namespace: ctx.namespace,
  labelSelector: jobPodsSelector(CONFORMANCE_NAME),
});

/**
 * The data plane's replicas when every one of its pods is Ready; fails (exit 1) naming what is
 * missing when the profile is not deployed or not ready: the tests would only time out.
 */
export async function deployedReplicas(ctx: ClusterContext, statefulSet: string, podSelector: string): Promise<number> {
  const sts = await ctx.kube.find('StatefulSet', statefulSet, ctx.namespace);
  const deploy = `deploy it first: npm run deploy -- --profile=${ctx.profileName}`;
  if (!sts)
    throw new FailedError(
      `profile ${ctx.profileName} is not deployed: no StatefulSet ${statefulSet} in namespace ${ctx.namespace}; ${deploy}`,
    );
  const replicas = sts.spec?.replicas ?? 1;
  const pods = (await ctx.kube.list('Pod', { namespace: ctx.namespace, labelSelector: podSelector })).items;
  const ready = pods.filter(isPodReady).length;
  if (replicas === 0 || ready < replicas)
    throw new FailedError(
      `profile ${ctx.profileName} is not ready: ${ready} of ${replicas} pods of StatefulSet ${statefulSet} are Ready ` +
        `(the tests need every node); see npm run status -- --profile=${ctx.profileName}`,
      pods
        .filter((p) => !isPodReady(p))
        .map((p) => `pod ${p.metadata.name}: ${podProblems(p).join('; ') || 'not Ready'}`),
    );
  return replicas;
}

/** Why the test pod has not started, from its conditions and its container's state. */
function notStartedBecause(pods: readonly Pod[]): string {
  if (pods.length === 0) return `the Job created no pod (its events say why: kubectl describe job ${CONFORMANCE_NAME})`;
  const pod = pods[0];
  const scheduled = (pod.status?.conditions ?? []).find((c) => c.type === 'PodScheduled' && c.status === 'False');
  const problems = podProblems(pod);
  if (problems.length > 0) return `pod ${pod.metadata.name} ${problems.join('; ')}`;
  if (scheduled) return `pod ${pod.metadata.name} is not scheduled: ${scheduled.reason} (${scheduled.message ?? ''})`;
  const waiting = pod.status?.containerStatuses?.[0]?.state?.waiting;
  return `pod ${pod.metadata.name} is ${pod.status?.phase ?? 'Pending'}${waiting ? `: ${waiting.reason} ${waiting.message ?? ''}`.trimEnd() : ''}`;
}

/** Whether the container runs or has ended (true), will never start (why), or may still start (undefined). */
function started(pod: Pod): true | { readonly never: string } | undefined {
  const status = (pod.status?.containerStatuses ?? []).find((c) => c.name === CONFORMANCE_CONTAINER);
  if (status?.state?.running || status?.state?.terminated) return true;
  const reason = status?.state?.waiting?.reason;
  if (reason !== undefined && NEVER_STARTS.has(reason)) return { never: notStartedBecause([pod]) };
  return undefined;
}

/** Waits (by watch, bounded) for the test pod's container to start; returns the pod's name. */
export async function waitForStart(ctx: ClusterContext, startTimeoutSeconds: number): Promise<string> {
  try {
    return await waitFor(ctx.kube, [jobPods(ctx)], {
      what: `the test pod of Job ${CONFORMANCE_NAME} to start`,
      timeoutSeconds: startTimeoutSeconds,
      signal: ctx.signal,
      onConnectionProblem: (text) => ctx.report.problem('api server', text),
      check: (s) => {
        for (const pod of objectsOf(s, 'pods', 'Pod')) {
          const state = started(pod);
          if (state === true) return pod.metadata.name;
          if (state !== undefined) throw new FailedError(`the tests never started: ${state.never}`);
        }
        return undefined;
      },
    });
  } catch (err) {
    if (!(err instanceof WaitTimeoutError)) throw err;
    const pods = objectsOf(err.snapshot, 'pods', 'Pod');
    throw new FailedError(`the tests did not start within ${startTimeoutSeconds}s: ${notStartedBecause(pods)}`, [
      'raise --start-timeout if the node is only slow to pull the image',
    ]);
  }
}

/** Waits for the test container to end; returns its exit code and the reason Kubernetes gives. */
async function waitForEnd(ctx: ClusterContext, pod: string, timeoutSeconds: number) {
  return waitFor(ctx.kube, [{ ...jobPods(ctx), fieldSelector: `metadata.name=${pod}` }], {
    what: `the cluster tests in pod ${pod} to end`,
    timeoutSeconds,
    signal: ctx.signal,
    onConnectionProblem: (text) => ctx.report.problem('api server', text),
    check: (s) => {
      const live = objectsOf(s, 'pods', 'Pod')[0];
      if (!live) throw new FailedError(`the test pod ${pod} was deleted while the tests ran`);
      const status = (live.status?.containerStatuses ?? []).find((c) => c.name === CONFORMANCE_CONTAINER);
      const ended = status?.state?.terminated;
      return ended ? { exitCode: ended.exitCode, reason: ended.reason } : undefined;
    },
  });
}

/** Follows the container's log into `out`; a stream that cannot open is reported, not fatal. */
async function followLog(
  ctx: ClusterContext & { kube: Kube },
  pod: string,
  out: Writable,
): Promise<AbortController | undefined> {
  try {
    return await new Log(ctx.kube.config).log(ctx.namespace, pod, CONFORMANCE_CONTAINER, out, {
      follow: true,
      pretty: false,
      timestamps: false,
    });
  } catch (err) {
    ctx.report.problem(
      `pod ${pod}`,
      `cannot stream the tests' output (${(err as Error).message}); it is read whole when they end`,
    );
    return undefined;
  }
}

/**
 * Streams the tests' output as it comes (each line printed and read for verdicts), until the
 * container ends; then reads the whole log once, which is what the verdicts come from (a follow
 * stream may close early), and prints any line the stream missed.
 */
export async function followTests(
  ctx: ClusterContext & { kube: Kube },
  pod: string,
  timeoutSeconds: number,
): Promise<{ run: RunResult; exitCode: number; reason?: string }> {
  let printed = 0;
  const live = new GoTestOutput();
  const out = linePrefixer('', (line) => {
    printed++;
    live.push(line);
    ctx.report.info(line);
  });
  const stream = await followLog(ctx, pod, out);
  let ended;
  try {
    ended = await waitForEnd(ctx, pod, timeoutSeconds);
  } finally {
    stream?.abort();
  }
  const text = await ctx.kube.request<string>('GET', `${objectPath('Pod', pod, ctx.namespace)}/log`, {
    query: { container: CONFORMANCE_CONTAINER },
    raw: true,
  });
  const lines: string[] = [];
  const split = lineSplitter((l) => lines.push(l));
  split.push(text);
  split.end();
  for (const line of lines.slice(printed)) ctx.report.info(line);
  return { run: parseGoTestOutput(text), exitCode: ended.exitCode, reason: ended.reason };
}

/** Whether `live` is what conformance wrote for this profile (its labels say so). */
const isOurs = (live: KubeObject, profileName: string) =>
  isProfiles(live, profileName) && live.metadata.labels?.[LabelKeys.component] === Component.conformance;

/**
 * Deletes what conformance wrote (a Job, its pod, the test RBAC), each only if it carries this
 * profile's conformance labels and by its uid; waits until the Job's pods are gone. An object of
 * the same name that is not ours is left alone, and the run refused.
 */
export async function removeConformanceObjects(ctx: ClusterContext, timeoutSeconds: number): Promise<string[]> {
  const removed: string[] = [];
  for (const kind of CONFORMANCE_KINDS) {
    const live = await ctx.kube.find(kind, CONFORMANCE_NAME, ctx.namespace);
    if (!live) continue;
    if (!isOurs(live, ctx.profileName))
      throw new FailedError(
        `${kind} ${CONFORMANCE_NAME} in namespace ${ctx.namespace} was not written by conformance for profile ` +
          `${ctx.profileName} (its labels say otherwise); it was left alone: remove or rename it`,
      );
    if (await ctx.kube.delete(kind, CONFORMANCE_NAME, ctx.namespace, { preconditions: { uid: live.metadata.uid } }))
      removed.push(`${kind} ${CONFORMANCE_NAME}`);
    if (kind === 'Job') await waitForJobGone(ctx, timeoutSeconds);
  }
  return removed;
}

/** The Job and its pods gone: its pods would otherwise outlive the permissions they run with. */
async function waitForJobGone(ctx: ClusterContext, timeoutSeconds: number): Promise<void> {
  await waitFor(
    ctx.kube,
    [
      jobPods(ctx),
      { key: 'job', kind: 'Job', namespace: ctx.namespace, fieldSelector: `metadata.name=${CONFORMANCE_NAME}` },
    ],
    {
      what: `Job ${CONFORMANCE_NAME} and its pod to be removed`,
      timeoutSeconds,
      // No signal: this runs after Ctrl-C too, and must finish (a second Ctrl-C still ends the process).
      onConnectionProblem: (text) => ctx.report.problem('api server', text),
      check: (s) => (s.job.size === 0 && s.pods.size === 0 ? true : undefined),
    },
  );
}

/**
 * Puts the StatefulSet back at `replicas` when the tests left it elsewhere (a failed scale-down test
 * stops at 2 nodes) and waits for them all to be Ready: the command leaves the profile as it found it.
 * Ready is read from the pods, not the StatefulSet's status alone: scaled back before its pods of a
 * scale to zero have gone, the status still counts those terminating pods as ready replicas.
 */
export async function restoreReplicas(
  ctx: ClusterContext,
  statefulSet: string,
  replicas: number,
  timeoutSeconds: number,
): Promise<number | undefined> {
  const live = await ctx.kube.get('StatefulSet', statefulSet, ctx.namespace);
  const left = live.spec?.replicas;
  if (left !== replicas) await ctx.kube.mergePatch('StatefulSet', statefulSet, ctx.namespace, { spec: { replicas } });
  await waitFor(
    ctx.kube,
    [
      { key: 'sts', kind: 'StatefulSet', namespace: ctx.namespace, fieldSelector: `metadata.name=${statefulSet}` },
      { key: 'pods', kind: 'Pod', namespace: ctx.namespace, labelSelector: dataPlaneSelector(ctx) },
    ],
    {
      what: `StatefulSet ${statefulSet} back at ${replicas} Ready replicas`,
      timeoutSeconds,
      onConnectionProblem: (text) => ctx.report.problem('api server', text),
      check: (s) => {
        const sts = objectsOf(s, 'sts').find((o) => isKind(o, 'StatefulSet'));
        if (!sts || !isKind(sts, 'StatefulSet')) return undefined;
        const status = sts.status;
        const settled = (status?.observedGeneration ?? 0) >= (sts.metadata.generation ?? 0);
        const ready = objectsOf(s, 'pods', 'Pod').filter((p) => !p.metadata.deletionTimestamp && isPodReady(p));
        return settled && status?.readyReplicas === replicas && ready.length === replicas ? true : undefined;
      },
    },
  );
  return left === replicas ? undefined : left;
}

const dataPlaneSelector = (ctx: ClusterContext) => componentSelector(ctx.profileName, Component.dataPlane);
