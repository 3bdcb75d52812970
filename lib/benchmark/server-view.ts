/**
 * The servers' side of a run: before and after the driver, each Sand Store pod's Prometheus
 * metrics (through the API server's pod proxy, so nothing new is exposed) and its container's
 * cgroup CPU counters and data mount (pods/exec, one read-only command). What was read is kept
 * verbatim in the run's server/ folder; run.json holds the differences. A pod that cannot be read
 * (no shell in the image, pods/exec forbidden, metrics port closed) is recorded as such: the run's
 * own numbers do not depend on it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SandstoreContainers } from '../labels.js';
import { execInPod } from '../runner/exec.js';
import { objectPath, type Kube, type Pod } from '../runner/kube.js';
import type { ServerRecord } from './record.js';
import {
  cpuCounters,
  cpuDelta,
  mountAt,
  PROBE_COMMAND,
  probeFiles,
  type CpuCounters,
  type MountFacts,
} from './pod-probe.js';
import {
  histogramQuantile,
  parseSandstoreHistograms,
  seriesDelta,
  sumSeries,
  type HistogramSeries,
} from './server-metrics.js';

/** One pod read at one moment. */
export interface PodReading {
  readonly pod: string;
  readonly metrics?: readonly HistogramSeries[];
  readonly cpu?: CpuCounters;
  readonly volume?: MountFacts;
  /** What could not be read, and why. */
  readonly unavailable: readonly string[];
}

/** The record's server section (record.ts): per pod (volume, CPU over the run) and per component. */
export type ServerView = ServerRecord;
type ServerPod = ServerRecord['pods'][number];
type ComponentLatency = ServerRecord['components'][number];

interface PodTarget {
  readonly kube: Kube;
  readonly namespace: string;
  readonly dir: string;
}

/** Reads every pod now, keeping the raw text in `<dir>/server/<pod>.<moment>.*`. */
export async function readServers(
  target: PodTarget,
  pods: readonly Pod[],
  moment: 'before' | 'after',
): Promise<PodReading[]> {
  mkdirSync(join(target.dir, 'server'), { recursive: true });
  return Promise.all(pods.map((pod) => readPod(target, pod, moment)));
}

async function readPod(target: PodTarget, pod: Pod, moment: string): Promise<PodReading> {
  const name = pod.metadata.name;
  const keep = (suffix: string, text: string) =>
    writeFileSync(join(target.dir, 'server', `${name}.${moment}.${suffix}`), text);
  const unavailable: string[] = [];
  const [metrics, probe] = await Promise.all([
    scrape(target, pod).then(
      (text) => (keep('prom', text), parseSandstoreHistograms(text)),
      (err: Error) => void unavailable.push(`metrics: ${err.message}`),
    ),
    execInPod(
      target.kube,
      { namespace: target.namespace, name, container: SandstoreContainers.node },
      PROBE_COMMAND,
    ).then(
      ({ stdout }) => (keep('probe.txt', stdout), probeFiles(stdout)),
      (err: Error) => void unavailable.push(`exec: ${err.message}`),
    ),
  ]);
  const cpu = probe && cpuCounters(probe);
  if (probe && !cpu) unavailable.push('cgroup: neither cgroup v2 nor v1 CPU statistics are readable in the container');
  const mountPoint = dataMountPoint(pod);
  const volume = probe && mountPoint ? mountAt(probe.get('/proc/self/mountinfo') ?? '', mountPoint) : undefined;
  if (probe && !volume)
    unavailable.push(`volume: no mount at ${mountPoint ?? '(no claim mounted in the sandstore container)'}`);
  return { pod: name, metrics: metrics ?? undefined, cpu, volume, unavailable };
}

function scrape(target: PodTarget, pod: Pod): Promise<string> {
  const port = containerOf(pod)?.ports?.find((p) => p.name === 'metrics')?.containerPort;
  if (port === undefined) return Promise.reject(new Error('the sandstore container declares no port named metrics'));
  return target.kube.request<string>(
    'GET',
    `${objectPath('Pod', `${pod.metadata.name}:${port}`, target.namespace)}/proxy/metrics`,
    { raw: true },
  );
}

const containerOf = (pod: Pod) => pod.spec?.containers.find((c) => c.name === SandstoreContainers.node);

/** Where the pod's claim is mounted in the sandstore container: its data directory. */
function dataMountPoint(pod: Pod): string | undefined {
  const claimVolumes = new Set((pod.spec?.volumes ?? []).filter((v) => v.persistentVolumeClaim).map((v) => v.name));
  return containerOf(pod)?.volumeMounts?.find((m) => claimVolumes.has(m.name))?.mountPath;
}

/**
 * The run as the servers saw it: per pod (volume, CPU over the run), and per component (the
 * histograms' differences).
 */
export function serverView(before: readonly PodReading[], after: readonly PodReading[]): ServerView {
  const pods = after.map((a): ServerPod => {
    const b = before.find((r) => r.pod === a.pod);
    const unavailable = [...new Set([...(b?.unavailable ?? ['not read before the run']), ...a.unavailable])];
    return {
      name: a.pod,
      volume: a.volume ?? b?.volume,
      cpu: b?.cpu && a.cpu ? cpuDelta(b.cpu, a.cpu) : undefined,
      unavailable,
    };
  });
  const both = after.flatMap((a) => {
    const b = before.find((r) => r.pod === a.pod);
    return b?.metrics && a.metrics ? [seriesDelta(b.metrics, a.metrics)] : [];
  });
  return { pods, components: componentLatencies(sumSeries(both)) };
}

/** Series with calls during the run, the most time first. */
export function componentLatencies(series: readonly HistogramSeries[]): ComponentLatency[] {
  return series
    .filter((s) => s.count > 0)
    .map((s): ComponentLatency => ({
      component: s.component,
      operation: s.operation,
      calls: s.count,
      totalSeconds: s.sumSeconds,
      meanMs: (s.sumSeconds / s.count) * 1000,
      p50Ms: histogramQuantile(0.5, s.buckets) * 1000,
      p99Ms: histogramQuantile(0.99, s.buckets) * 1000,
    }))
    .sort((a, b) => b.totalSeconds - a.totalSeconds);
}
