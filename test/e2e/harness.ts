import { KubeConfig } from '@kubernetes/client-node';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectCopy } from '../cli-harness.js';
import { projectRoot } from '../../lib/paths.js';
import { Kube, type Pod, type StatefulSet } from '../../lib/runner/kube.js';
import { holderOf, LEASE_SECONDS, LOCK_NAMESPACE } from '../../lib/runner/lock.js';
import { suiteClusterName } from './global-setup.js';

/** Helpers for the e2e suite: the runner as a user runs it, and a client to check the cluster. */

export const root = projectRoot();
/** The suite's own cluster (global-setup.ts): never the one `npm start` deploys to. */
export const CONTEXT = suiteClusterName();

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly output: string;
}

/**
 * Runs `sandstore <args>` (the runner CLI) in `cwd`, to completion. It acts on the suite's cluster
 * through KUBE_CONTEXT, as a user points a profile at another cluster, whatever context the profile
 * pins; a test of that choice itself sets KUBE_CONTEXT in `opts.env` (undefined: not set).
 */
export function runCli(
  args: readonly string[],
  opts: {
    env?: NodeJS.ProcessEnv;
    cwd?: string;
    onSpawn?: (child: ReturnType<typeof spawn>) => void;
    onStdout?: (text: string, child: ReturnType<typeof spawn>) => void;
    interruptAfterMs?: number;
  } = {},
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn('node', ['scripts/run-ts.mjs', 'lib/runner/cli.ts', ...args], {
      cwd: opts.cwd ?? root,
      env: { ...process.env, NO_COLOR: '1', KUBE_CONTEXT: CONTEXT, ...opts.env },
    });
    opts.onSpawn?.(child);
    let stdout = '';
    let stderr = '';
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      output += d.toString();
      opts.onStdout?.(stdout, child);
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      output += d.toString();
    });
    // A backstop for commands that run until interrupted (logs): Ctrl-C after the deadline.
    const backstop = opts.interruptAfterMs ? setTimeout(() => child.kill('SIGINT'), opts.interruptAfterMs) : undefined;
    child.on('close', (code) => {
      clearTimeout(backstop);
      resolve({ code, stdout, stderr, output });
    });
  });
}

/**
 * `logs` following every Sand Store pod of `profile` until each has printed a line (then Ctrl-C,
 * or after 30 s): the pods seen, sorted, and the command's result.
 */
export async function followUntilEveryPod(
  profile: string,
  env?: NodeJS.ProcessEnv,
): Promise<{ r: CliResult; seen: string[] }> {
  const seen = new Set<string>();
  const r = await runCli(['logs', `--profile=${profile}`], {
    env,
    interruptAfterMs: 30_000,
    onStdout: (text, child) => {
      for (const m of text.matchAll(/^(sandstore-\d)\s+\| /gm)) seen.add(m[1]);
      if (seen.size === 3 && !child.killed) child.kill('SIGINT');
    },
  });
  return { r, seen: [...seen].sort() };
}

/** The command's exit code; when it is not the one expected, the failure shows everything the command printed. */
export function expectExit(r: CliResult, code: number): void {
  if (r.code !== code) throw new Error(`expected exit code ${code}, got ${r.code}; the command printed:\n${r.output}`);
}

/** A kubeconfig with one context, named CONTEXT, on the local cluster's server and CA, as `user`. */
export function kubeconfigAs(user: Record<string, unknown>, server?: string): string {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  const cluster = kc.getCluster(kc.getContextObject(CONTEXT)!.cluster)!;
  const file = join(mkdtempSync(join(tmpdir(), 'kubeconfig-')), 'config');
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'c',
          cluster: {
            server: server ?? cluster.server,
            'certificate-authority-data':
              cluster.caData ?? Buffer.from(readFileSync(cluster.caFile!)).toString('base64'),
          },
        },
      ],
      users: [{ name: 'u', user }],
      contexts: [{ name: CONTEXT, context: { cluster: 'c', user: 'u' } }],
    }),
  );
  return file;
}

/** One request as the API server's audit log (level Metadata, up.sh's policy) records it. */
export interface AuditEntry {
  verb: string;
  userAgent?: string;
  requestReceivedTimestamp: string;
  requestURI: string;
  user?: { username?: string };
  objectRef?: { apiGroup?: string; resource?: string; subresource?: string; namespace?: string; name?: string };
  responseStatus?: { code?: number };
}

/** The suite's cluster's audit log. */
export const auditLog = () =>
  join(
    process.env.SANDSTORE_STATE_DIR ?? join(homedir(), '.local', 'state', 'sandstore-deploy'),
    'clusters',
    CONTEXT,
    'logs',
    'audit.log',
  );
const entries = () =>
  readFileSync(auditLog(), 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as AuditEntry);

/**
 * Every request received in [from, to], from the API server's audit log.
 * The log is written in batches: read once it holds an entry from after `to` (the test provisioner
 * renews its Lease every 2 s, so one comes), with a deadline.
 */
export async function auditEntries(from: number, to: number): Promise<AuditEntry[]> {
  const deadline = Date.now() + 20_000;
  while (!entries().some((e) => Date.parse(e.requestReceivedTimestamp) > to)) {
    if (Date.now() > deadline)
      throw new Error(`the audit log ${auditLog()} has no entry after the command within 20 s`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return entries().filter(
    (e) => Date.parse(e.requestReceivedTimestamp) >= from && Date.parse(e.requestReceivedTimestamp) <= to,
  );
}

/** The runner's requests (its user agent) received in [from, to], from the API server's audit log. */
export const runnerRequests = async (from: number, to: number): Promise<AuditEntry[]> =>
  (await auditEntries(from, to)).filter((e) => (e.userAgent ?? '').startsWith('sandstore-deploy'));

/** A client on one context of the user's kubeconfig (what up.sh wrote). */
export function kubeFor(context = CONTEXT): Kube {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  kc.setCurrentContext(context);
  return new Kube(kc);
}

/**
 * A throwaway project with one more profile, `name`: the profile `base` with `overrides` (the text
 * of object properties, spread over it), synthesized. Returns the project's directory.
 */
export function projectWithVariant(base: string, name: string, overrides: string): string {
  const work = projectCopy();
  writeFileSync(
    join(work, 'profiles', `${name}.ts`),
    `import { defineProfile } from '../lib/profile.js';
import base from './${base}.js';
export default defineProfile({ ...base, name: '${name}', ${overrides} });
`,
  );
  synthIn(work, name);
  return work;
}

function synthIn(cwd: string, profileName: string): void {
  const r = spawnSync('node', ['scripts/run-ts.mjs', 'main.ts', `--profile=${profileName}`], { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`synth of ${profileName} failed: ${r.stderr}`);
}

export const podReady = (p: Pod) => (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

/**
 * What up.sh recorded about a local cluster (its cluster.env): ports, and for the real node its
 * name, IP, containerd socket and volumes directory. Read from the state directory, not from the
 * runner, so tests can check the node's disk and runtime independently.
 */
export function clusterEnv(name = CONTEXT): Record<string, string> {
  const stateRoot = process.env.SANDSTORE_STATE_DIR ?? join(homedir(), '.local', 'state', 'sandstore-deploy');
  const file = join(stateRoot, 'clusters', name, 'cluster.env');
  const out = spawnSync('bash', ['-c', 'set -a; source "$0"; env -0', file], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`cannot read ${file}: ${out.stderr}`);
  return Object.fromEntries(
    out.stdout
      .split('\0')
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
}

/** The real node's kubelet process (up.sh's pid file): it runs in the node's mount namespace. */
function nodePid(context: string): number {
  return Number(readFileSync(join(clusterEnv(context).CLUSTER_DIR, 'pids', 'kubelet.pid'), 'utf8').trim());
}

/**
 * A path as the real node sees it (a profile's nodePath, a volume's hostPath), reached from this
 * host through the node's mount namespace, where its disk is mounted at NODE_VIEW_DIR.
 */
export const onNode = (path: string, context = CONTEXT) => `/proc/${nodePid(context)}/root${path}`;

/** findmnt run in the real node's mount namespace: what the node sees mounted. */
const findmntOnNode = (args: readonly string[], context: string) =>
  execFileSync('nsenter', [`--mount=${clusterEnv(context).NODE_MNTNS_PATH}`, 'findmnt', '-n', ...args], {
    encoding: 'utf8',
  }).trim();

/** The file system type and source of the mount at `path` in the node's mount namespace. */
export const nodeMountAt = (path: string, context = CONTEXT) =>
  findmntOnNode(['-o', 'FSTYPE,SOURCE', '--mountpoint', path], context).split(/\s+/);

/** The type and source of the file system that holds `path` (findmnt walks up to its mount), as the node sees it. */
export const nodeMountOf = (path: string, context = CONTEXT) =>
  findmntOnNode(['-o', 'FSTYPE,SOURCE', '--target', path], context).split(/\s+/);

/** The type of the file system that holds `path`, as the node sees it. */
export const nodeFsType = (path: string, context = CONTEXT) => nodeMountOf(path, context)[0];

export { buildSandstoreFiles, sandstoreSource } from './sandstore-files/build.js';

/**
 * Waits until the lock `name` has expired on the API server's clock, the only clock its expiry is
 * judged on: no event marks that moment, so the Lease is read again every 250 ms until then.
 */
export async function untilLockExpired(kube: Kube, name: string, timeoutSeconds = LEASE_SECONDS + 15): Promise<void> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    const lease = await kube.find('Lease', name, LOCK_NAMESPACE);
    if (!lease || holderOf(lease, kube.serverNow()).expired) return;
    if (Date.now() > deadline) throw new Error(`lock ${name} did not expire within ${timeoutSeconds}s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The environment that runs a command under a clock `offset` from this machine's (libfaketime, e.g. '+1h'). */
export function skewedClock(offset: string): NodeJS.ProcessEnv {
  const lib = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
  if (!existsSync(lib)) throw new Error(`${lib} is missing: install Debian's faketime (install-prereqs.sh does)`);
  return { LD_PRELOAD: lib, FAKETIME: offset };
}

/** Deploys `profile` before the file's tests and destroys it after them, each required to succeed. */
export function deployedDuringSuite(profile: string): void {
  beforeAll(async () => {
    expectExit(await runCli(['deploy', `--profile=${profile}`]), 0);
  }, 600_000);
  afterAll(async () => {
    expectExit(await runCli(['destroy', `--profile=${profile}`]), 0);
  }, 600_000);
}

/**
 * Rolled out after `before`: a new pod template (a new update revision: the runner's switch to
 * OnDelete alone is a newer spec with every replica still "updated"), observed, every replica
 * updated and Ready, revisions equal.
 */
export function rolledOutSince(sts: StatefulSet | undefined, before: StatefulSet, replicas: number): boolean {
  const st = sts?.status;
  if (!sts || !st) return false;
  return (
    (sts.metadata.generation ?? 0) > (before.metadata.generation ?? 0) &&
    st.updateRevision !== before.status?.updateRevision &&
    st.observedGeneration === sts.metadata.generation &&
    st.updatedReplicas === replicas &&
    st.readyReplicas === replicas &&
    st.currentRevision === st.updateRevision
  );
}
