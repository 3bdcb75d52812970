import { median } from 'simple-statistics';
import type { GroupResult } from './runs.js';
import type { ServerView } from './server-view.js';
import { alignedTable } from './text-table.js';

/** How many component rows the terminal shows; run.json has them all. */
const SHOWN_COMPONENTS = 8;

const ms = (value: number) => (Number.isFinite(value) ? value.toFixed(3) : '-');

/** The servers' side of a run for the terminal: where the time went, then each pod's CPU and volume. */
export function serverTable(view: ServerView): string[] {
  const lines: string[] = [];
  if (view.components.length > 0) {
    lines.push(
      '',
      "on the servers (Sand Store's own histograms, all pods, warm-up included; p50/p99 from " + 'its buckets):',
    );
    const rows = view.components
      .slice(0, SHOWN_COMPONENTS)
      .map((c) => [
        `${c.component} ${c.operation}`,
        String(c.calls),
        c.totalSeconds.toFixed(2),
        ms(c.meanMs),
        ms(c.p50Ms),
        ms(c.p99Ms),
      ]);
    lines.push(...alignedTable(['component operation', 'calls', 'total s', 'mean ms', 'p50 ms', 'p99 ms'], rows));
  }
  for (const pod of view.pods) lines.push(podLine(pod));
  return lines;
}

function podLine(pod: ServerView['pods'][number]): string {
  const parts: string[] = [];
  if (pod.cpu) {
    const limit = pod.cpu.limitCores === undefined ? 'no CPU limit' : `limit ${pod.cpu.limitCores} CPU`;
    const share = pod.cpu.periods > 0 ? ` (${((100 * pod.cpu.throttledPeriods) / pod.cpu.periods).toFixed(1)}%)` : '';
    parts.push(
      `${pod.cpu.usageSeconds.toFixed(2)} s CPU, ${limit}, throttled in ` +
        `${pod.cpu.throttledPeriods} of ${pod.cpu.periods} periods${share}, ` +
        `${pod.cpu.throttledSeconds.toFixed(2)} s`,
    );
  }
  if (pod.volume) parts.push(`data on ${pod.volume.fsType} (${pod.volume.source}, ${pod.volume.options})`);
  if (pod.unavailable.length > 0) parts.push(`not read: ${pod.unavailable.join('; ')}`);
  return `${pod.name}: ${parts.join('; ')}`;
}

/** How many components the comparison names per group: the ones with the most time on the servers. */
const COMPARED_COMPONENTS = 3;

/**
 * comparison.md's "On the servers" section: per group, over its counted runs, the file system
 * under the data volumes, the CPU limit, the medians of the leader's CPU time and of the largest
 * share of throttled periods among the pods, and where the servers spent their time. Empty when no
 * counted run has a server section (records from before it was read).
 */
export function serverMarkdown(groups: readonly GroupResult[]): string[] {
  const rows = groups.flatMap((g) => {
    const views = g.counted.flatMap((run) =>
      run.record.server ? [{ view: run.record.server, leader: run.record.leadership.before.leader }] : [],
    );
    return views.length > 0 ? [serverRow(g.group.label, views)] : [];
  });
  if (rows.length === 0) return [];
  return [
    '## On the servers',
    '',
    "Medians over each group's counted runs, from each run's `server` section in " +
      "run.json: the containers' own cgroup counters and mounts, and " +
      "Sand Store's latency histograms summed over the pods (warm-up included; means exact, " +
      'since the histograms carry sums).',
    '',
    '| group | data on | CPU limit | leader CPU s | most throttled pod | most time on the servers (mean ms) |',
    '| --- | --- | --- | ---: | ---: | --- |',
    ...rows,
    '',
  ];
}

function serverRow(label: string, views: readonly { view: ServerView; leader?: string }[]): string {
  const pods = views.flatMap((v) => v.view.pods);
  const distinct = (values: readonly (string | undefined)[]) =>
    [...new Set(values.filter((v) => v !== undefined))].join(', ') || '-';
  const fs = distinct(pods.map((p) => p.volume && `${p.volume.fsType} (${p.volume.options})`));
  const limit = distinct(
    pods.map((p) => (p.cpu?.limitCores === undefined ? (p.cpu ? 'none' : undefined) : `${p.cpu.limitCores}`)),
  );
  const leaderCpu = views.flatMap((v) =>
    v.view.pods.filter((p) => p.name === v.leader && p.cpu).map((p) => p.cpu!.usageSeconds),
  );
  const throttled = views.map((v) =>
    Math.max(0, ...v.view.pods.map((p) => (p.cpu && p.cpu.periods > 0 ? p.cpu.throttledPeriods / p.cpu.periods : 0))),
  );
  const components = views.map((v) => v.view.components).flat();
  const top = [...new Set(components.map((c) => `${c.component} ${c.operation}`))]
    .map((name) => ({ name, mine: components.filter((c) => `${c.component} ${c.operation}` === name) }))
    .map(({ name, mine }) => ({
      name,
      total: median(mine.map((c) => c.totalSeconds)),
      mean: median(mine.map((c) => c.meanMs)),
    }))
    .sort((a, b) => b.total - a.total)
    .slice(0, COMPARED_COMPONENTS);
  return (
    `| ${label} | ${fs} | ${limit} | ` +
    `${leaderCpu.length > 0 ? median(leaderCpu).toFixed(2) : '-'} | ` +
    `${(100 * median(throttled)).toFixed(1)}% | ` +
    `${top.map((t) => `${t.name} ${t.mean.toFixed(2)}`).join('; ')} |`
  );
}
