import { ROLLOUT_PAUSED_ANNOTATION } from '../quorum-roll.js';
import { LabelKeys, profileSelector } from '../../labels.js';
import type { Job, Kinds, KubeObject, StatefulSet } from '../kube.js';
import { isPodReady, podProblems, podRevision, restarts } from '../pods.js';
import type { CommandContext } from './context.js';
import type { ClusterCommand } from './command.js';

/** Lines of a left-aligned table. */
function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (c ?? '').padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

/**
 * `status`: what the profile has on the cluster: pods (ready, restarts, node, revision), claims,
 * services and node ports, the rollout and the bootstrap Job. Read-only, five list requests.
 */
async function status(ctx: CommandContext): Promise<void> {
  const { kube, report } = ctx;
  const ns = ctx.namespace;
  const labelSelector = profileSelector(ctx.profile.name);
  const list = <K extends keyof Kinds>(kind: K) =>
    kube.list(kind, { namespace: ns, labelSelector }).then((l) => l.items);
  const [sets, pods, claims, services, jobs] = await Promise.all([
    list('StatefulSet'),
    list('Pod'),
    list('PersistentVolumeClaim'),
    list('Service'),
    list('Job'),
  ]);
  report.info(`profile ${ctx.profile.name} on ${ctx.target.context}, namespace ${ns}`);
  if (sets.length + pods.length + claims.length + services.length + jobs.length === 0) {
    report.info(`nothing deployed; run \`npm run deploy -- --profile=${ctx.profile.name}\``);
    return;
  }
  report.info('');
  for (const sts of sets) report.info(`StatefulSet ${sts.metadata.name}: ${rolloutLine(sts)}`);
  for (const job of jobs) report.info(`Job ${job.metadata.name}: ${jobState(job)}`);
  report.info('');
  const byName = (a: KubeObject, b: KubeObject) =>
    a.metadata.name.localeCompare(b.metadata.name, undefined, { numeric: true });
  for (const l of table(
    ['POD', 'READY', 'STATUS', 'RESTARTS', 'NODE', 'REVISION', 'PROBLEMS'],
    [...pods]
      .sort(byName)
      .map((p) => [
        p.metadata.name,
        isPodReady(p) ? 'yes' : 'no',
        p.metadata.deletionTimestamp ? 'Terminating' : (p.status?.phase ?? 'Unknown'),
        String(restarts(p)),
        p.spec?.nodeName ?? '-',
        podRevision(p) ?? '-',
        podProblems(p).join('; ') || '-',
      ]),
  ))
    report.info(l);
  report.info('');
  for (const l of table(
    ['CLAIM', 'STATUS', 'SIZE', 'CLASS', 'VOLUME'],
    [...claims]
      .sort(byName)
      .map((c) => [
        c.metadata.name,
        c.status?.phase ?? '-',
        c.status?.capacity?.storage ?? c.spec?.resources?.requests?.storage ?? '-',
        c.spec?.storageClassName ?? '-',
        c.spec?.volumeName ?? '-',
      ]),
  ))
    report.info(l);
  report.info('');
  for (const l of table(
    ['SERVICE', 'TYPE', 'PORTS'],
    [...services]
      .sort(byName)
      .map((s) => [
        s.metadata.name,
        s.spec?.clusterIP === 'None' ? 'Headless' : (s.spec?.type ?? '-'),
        (s.spec?.ports ?? []).map((p) => (p.nodePort ? `${p.port}→node:${p.nodePort}` : `${p.port}`)).join(', '),
      ]),
  ))
    report.info(l);
}

function rolloutLine(sts: StatefulSet): string {
  const s = sts.status;
  const replicas = sts.spec?.replicas ?? 0;
  const partition = sts.spec?.updateStrategy?.rollingUpdate?.partition ?? 0;
  const caughtUp = (s?.observedGeneration ?? 0) >= (sts.metadata.generation ?? 0);
  const done =
    caughtUp &&
    s?.readyReplicas === replicas &&
    s.updatedReplicas === replicas &&
    s.currentRevision === s.updateRevision;
  const paused = sts.metadata.annotations?.[ROLLOUT_PAUSED_ANNOTATION];
  const profile = sts.metadata.labels?.[LabelKeys.profile] ?? '<name>';
  const state = done
    ? 'rolled out'
    : paused !== undefined
      ? `PAUSED at pod ${paused} (npm run resume -- --profile=${profile}, or update after a fix)`
      : sts.spec?.updateStrategy?.type === 'OnDelete'
        ? `rolling in quorum order by the runner (OnDelete; npm run resume -- --profile=${profile} if it is gone)`
        : partition > 0
          ? `PAUSED at partition ${partition} (npm run resume -- --profile=${profile}, or update after a fix)`
          : 'rolling';
  const next = s?.updateRevision && s.updateRevision !== s.currentRevision ? ` → ${s.updateRevision}` : '';
  const revision = `${s?.currentRevision ?? '-'}${next}`;
  const component = sts.metadata.labels?.[LabelKeys.component];
  return (
    `${s?.readyReplicas ?? 0}/${replicas} ready, ${s?.updatedReplicas ?? 0} updated, ` +
    `${state}; revision ${revision}${component ? ` [${component}]` : ''}`
  );
}

function jobState(job: Job): string {
  const c = (job.status?.conditions ?? []).find(
    (x) => (x.type === 'Complete' || x.type === 'Failed') && x.status === 'True',
  );
  if (c) return `${c.type}${c.message ? ` (${c.message})` : ''}`;
  return `running (${job.status?.active ?? 0} active, ${job.status?.failed ?? 0} failed)`;
}

/** `status`. */
export const statusCommand: ClusterCommand = {
  name: 'status',
  description: 'pods, claims, services, rollout and bootstrap state',
  run: (ctx) => status(ctx),
};
