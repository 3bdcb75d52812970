/**
 * The process baseline's processes: the profile's etcd members and Sand Store nodes started on this
 * machine from the binaries in the profile's images (image-binaries.ts), with the StatefulSets'
 * settings (baseline-settings.ts); a settled leader waited for as the gate waits for one on a
 * cluster; then stopped, and shown to be gone (no process, no port bound, no data left).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { cpus, hostname, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { FailedError } from '../errors.js';
import type { Reporter } from '../runner/report.js';
import { refusedWithin } from '../runner/client-access.js';
import { InterruptedError } from '../runner/watch.js';
import type { Manifest } from '../synth.js';
import type { ProcessTarget } from './baseline-record.js';
import {
  baselineSettings,
  layoutNeeds,
  numberedLayout,
  type BaselineSettings,
  type Layout,
  type ProcessSettings,
} from './baseline-settings.js';
import { QUIET_SECONDS } from './gate.js';
import { imageBinary, machinePlatform, resolveImage, type ImageBinary, type ResolvedImage } from './image-binaries.js';
import {
  consecutiveFreePorts,
  freePorts,
  nodeLeadership,
  portsInUse,
  startLocalSandstore,
  StartFailed,
  WaitInterrupted,
  type Child,
  type LocalSandstore,
} from './local-processes.js';

/** Everything the baseline needs before it starts a process: the settings checked, the binaries at hand. */
export interface BaselinePlan {
  readonly manifests: readonly Manifest[];
  readonly binaries: { readonly sandstore: ImageBinary; readonly etcd: ImageBinary };
  /** The images' own environment (their PATH), under the container's. */
  readonly imageEnv: { readonly sandstore: Record<string, string>; readonly etcd: Record<string, string> };
}

const envOf = (image: ResolvedImage) =>
  Object.fromEntries(
    (image.config.config?.Env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
  );

/**
 * Checks the settings (refusing a profile the baseline cannot mirror), then takes both programs out
 * of their images.
 */
export async function planBaseline(manifests: readonly Manifest[], report: Reporter): Promise<BaselinePlan> {
  // Ports that stand in for the real ones while the settings are only being checked.
  const settings = baselineSettings(
    manifests,
    numberedLayout(manifests, { dataRoot: '/baseline', etcdBase: 10_000, nodeBase: 20_000 }),
  );
  const [sandstoreImage, etcdImage] = [
    await resolveImage(settings.sandstore.image),
    await resolveImage(settings.etcdImage.image),
  ];
  const sandstore = await imageBinary(sandstoreImage, settings.sandstore.command);
  const etcd = await imageBinary(etcdImage, settings.etcdImage.command);
  for (const b of [sandstore, etcd])
    report.step('baseline', `${b.pathInImage} from ${b.image} (${b.imageDigest}, ${b.platform}): sha256 ${b.sha256}`);
  return {
    manifests,
    binaries: { sandstore, etcd },
    imageEnv: { sandstore: envOf(sandstoreImage), etcd: envOf(etcdImage) },
  };
}

/** The processes running, and what the record says of them. */
export interface RunningBaseline {
  readonly settings: BaselineSettings;
  readonly layout: Layout;
  readonly local: LocalSandstore;
  readonly leader: string;
  readonly term: number;
  /** The nodes' client addresses, the leader's first (Sand Store 7ab6010 cannot redirect a client from a follower). */
  readonly seeds: readonly string[];
  readonly target: ProcessTarget;
}

/** How long etcd may take to serve, and from SIGTERM to SIGKILL (Kubernetes gives 30 s; the data is thrown away). */
const ETCD_MS = 30_000;
const GRACE_MS = 10_000;

/** Starts etcd and the nodes in a new folder under $TMPDIR and waits for a settled leader (up to `timeoutSeconds`). */
export async function startBaseline(
  plan: BaselinePlan,
  timeoutSeconds: number,
  report: Reporter,
  signal?: AbortSignal,
): Promise<RunningBaseline> {
  const needs = layoutNeeds(plan.manifests);
  const dataRoot = mkdtempSync(join(tmpdir(), 'sandstore-baseline-'));
  const etcdPorts: Map<number, number>[] = [];
  for (let m = 0; m < needs.etcdMembers; m++) {
    const ports = await freePorts(needs.etcdContainerPorts.length);
    etcdPorts.push(new Map(needs.etcdContainerPorts.map((p, i) => [p, ports[i]])));
  }
  const layout: Layout = { dataRoot, etcdPorts, nodePorts: await consecutiveFreePorts(needs.nodes) };
  const settings = baselineSettings(plan.manifests, layout);
  const launchOf = (s: ProcessSettings, program: 'sandstore' | 'etcd') => {
    mkdirSync(s.dataDir, { recursive: true });
    return {
      name: s.name,
      id: s.name,
      dataDir: s.dataDir,
      program: plan.binaries[program].path,
      args: s.args,
      env: { ...plan.imageEnv[program], ...s.env },
      cwd: s.dataDir,
    };
  };
  report.step(
    'baseline',
    `starting ${settings.etcd.length} etcd member(s) and ${settings.nodes.length} Sand ` +
      `Store nodes on 127.0.0.1, data in ${dataRoot}`,
  );
  let local: LocalSandstore;
  try {
    local = await startLocalSandstore(
      {
        dataRoot,
        etcd: settings.etcd.map((e) => launchOf(e, 'etcd')),
        etcdEndpoint: settings.etcd[0].address,
        members: settings.members,
        nodes: settings.nodes.map((n) => launchOf(n, 'sandstore')),
        limits: { etcdMs: ETCD_MS, leaderMs: timeoutSeconds * 1000, quietMs: QUIET_SECONDS * 1000, graceMs: GRACE_MS },
      },
      signal,
    );
  } catch (err) {
    if (err instanceof WaitInterrupted) throw new InterruptedError(err.what);
    if (err instanceof StartFailed)
      throw new FailedError(
        `the baseline's processes did not come up: ${err.message}. Nothing was measured; they ` +
          `were stopped and their data removed.`,
      );
    throw err;
  }
  report.step('baseline', `leader ${local.leader} (term ${local.term}), no role change in the last ${QUIET_SECONDS}s`);
  const running = await afterStart(plan, settings, layout, local, report, signal);
  return running;
}

async function afterStart(
  plan: BaselinePlan,
  settings: BaselineSettings,
  layout: Layout,
  local: LocalSandstore,
  report: Reporter,
  signal?: AbortSignal,
): Promise<RunningBaseline> {
  const endpoints = settings.nodes.map((n) => ({ pod: n.name, address: n.address }));
  const refused = await refusedWithin(endpoints, 10, signal);
  if (refused.length > 0) {
    await local.stop();
    throw new FailedError(
      `the baseline's nodes do not accept connections: ` +
        `${refused.map((r) => `${r.endpoint.address} (${r.endpoint.pod}): ${r.reason}`).join('; ')}. Nothing was measured.`,
    );
  }
  const leaderFirst = [...endpoints].sort((a, b) => Number(b.pod === local.leader) - Number(a.pod === local.leader));
  const target = describeTarget(plan, settings, layout, local.children);
  const observed = target.processes
    .map((p) => `${p.name} pid ${p.pid} exe sha256 ${p.exeSha256.slice(0, 12)}`)
    .join(', ');
  report.step('baseline', `running: ${observed}`);
  return {
    settings,
    layout,
    local,
    leader: local.leader,
    term: local.term,
    seeds: leaderFirst.map((e) => e.address),
    target,
  };
}

/** sha256 of what /proc/<pid>/exe points at: the binary the kernel runs for that process. */
function exeSha256(pid: number): string {
  try {
    return createHash('sha256')
      .update(readFileSync(`/proc/${pid}/exe`))
      .digest('hex');
  } catch (err) {
    return `unreadable: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
  }
}

function describeTarget(
  plan: BaselinePlan,
  settings: BaselineSettings,
  layout: Layout,
  children: readonly Child[],
): ProcessTarget {
  const all = [
    ...settings.etcd.map((s) => ({ s, program: 'etcd' as const })),
    ...settings.nodes.map((s) => ({ s, program: 'sandstore' as const })),
  ];
  const binary = (program: 'sandstore' | 'etcd') => {
    const b = plan.binaries[program];
    return {
      program,
      image: b.image,
      imageDigest: b.imageDigest,
      manifestDigest: b.manifestDigest,
      platform: b.platform,
      pathInImage: b.pathInImage,
      sha256: b.sha256,
    };
  };
  return {
    kind: 'processes',
    machine: machineFacts(),
    dataDir: { path: layout.dataRoot, fsType: fsTypeOf(layout.dataRoot) },
    binaries: [binary('sandstore'), binary('etcd')],
    processes: all.map(({ s, program }) => {
      const pid = children.find((c) => c.name === s.name)?.proc.pid ?? 0;
      return {
        name: s.name,
        program,
        pid,
        address: s.address,
        exeSha256: exeSha256(pid),
        args: [...s.args],
        env: { ...plan.imageEnv[program], ...s.env },
      };
    }),
    differences: [...settings.differences],
  };
}

/** This machine: the facts a node record holds on a cluster. */
export function machineFacts(): ProcessTarget['machine'] {
  const osRelease = existsSync('/etc/os-release') ? readFileSync('/etc/os-release', 'utf8') : '';
  const pretty = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(osRelease)?.[1];
  return {
    hostname: hostname(),
    kernel: release(),
    os: pretty ?? process.platform,
    architecture: machinePlatform().architecture,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryBytes: totalmem(),
  };
}

/** The file system a folder is on (findmnt, util-linux): the baseline's disk is part of what it measures. */
export function fsTypeOf(dir: string): string {
  const r = spawnSync('findmnt', ['-n', '-o', 'FSTYPE', '-T', dir], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'unknown (findmnt failed)';
}

/** Who leads now, by the nodes' event logs. */
export const baselineLeadership = (running: RunningBaseline) =>
  nodeLeadership(running.settings.nodes.map((n) => ({ id: n.name, dataDir: n.dataDir })));

/** The processes that ended while they should have run: each a reason the run is not valid. */
export function processesEnded(running: RunningBaseline): string[] {
  return running.local.children
    .filter((c) => !c.running())
    .map(
      (c) =>
        `process ${c.name} ended during the run (${c.ending()}): ` +
        `${c.tail().split('\n').slice(-2).join(' | ') || 'no stderr'}`,
    );
}

/**
 * Stops every process (the nodes, then etcd), removes the data, and looks: no pid of theirs alive,
 * no port of theirs bound, no data folder. Returns what was left (empty: nothing).
 */
export async function stopBaseline(running: RunningBaseline): Promise<string[]> {
  await running.local.stop();
  const pids = running.target.processes.map((p) => p.pid).filter((pid) => pid > 0 && existsSync(`/proc/${pid}`));
  const ports = [...running.layout.etcdPorts.flatMap((m) => [...m.values()]), ...running.layout.nodePorts];
  const bound = await portsInUse(ports);
  return [
    ...pids.map((pid) => `process ${pid} is still alive`),
    ...bound.map((p) => `port 127.0.0.1:${p} is still bound`),
    ...(existsSync(running.layout.dataRoot) ? [`data folder ${running.layout.dataRoot} is still there`] : []),
  ];
}
