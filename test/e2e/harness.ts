import { KubeConfig } from '@kubernetes/client-node';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { projectCopy } from '../cli-harness.js';
import { projectRoot } from '../../lib/paths.js';
import { Kube, type Pod } from '../../lib/runner/kube.js';
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

/** The command's exit code; when it is not the one expected, the failure shows everything the command printed. */
export function expectExit(r: CliResult, code: number): void {
  if (r.code !== code) throw new Error(`expected exit code ${code}, got ${r.code}; the command printed:\n${r.output}`);
}

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

/**
 * Sand Store's source (read-only input): SANDSTORE_SOURCE, else shared/sandstore in an ancestor of
 * the project, else this workplace's /work/shared/sandstore; the rule images.sh follows.
 */
export function sandstoreSource(): string {
  const candidates = process.env.SANDSTORE_SOURCE ? [process.env.SANDSTORE_SOURCE] : [];
  for (let dir = dirname(root); dirname(dir) !== dir; dir = dirname(dir))
    candidates.push(join(dir, 'shared', 'sandstore'));
  candidates.push('/work/shared/sandstore');
  const found = candidates.find((d) => existsSync(join(d, 'go.mod')));
  if (!found) throw new Error(`Sand Store's source not found (tried ${candidates.join(', ')}); set SANDSTORE_SOURCE`);
  return found;
}

/**
 * test/e2e/sandstore-files/main.go built inside Sand Store's module with `go build -overlay` (it
 * needs Sand Store's internal packages); nothing is written into the checkout.
 */
export function buildSandstoreFiles(): string {
  const out = mkdtempSync(join(tmpdir(), 'sandstore-files-'));
  const source = sandstoreSource();
  const overlay = join(out, 'overlay.json');
  writeFileSync(
    overlay,
    JSON.stringify({
      Replace: {
        [join(source, 'clients', 'sandstore_deploy_files', 'main.go')]: join(
          root,
          'test',
          'e2e',
          'sandstore-files',
          'main.go',
        ),
      },
    }),
  );
  const r = spawnSync(
    'go',
    [
      'build',
      '-buildvcs=false',
      '-trimpath',
      '-overlay',
      overlay,
      '-o',
      join(out, 'sandstore-files'),
      './clients/sandstore_deploy_files',
    ],
    { cwd: source, encoding: 'utf8', env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=readonly' } },
  );
  if (r.status !== 0) throw new Error(`building sandstore-files failed: ${r.stderr}`);
  return join(out, 'sandstore-files');
}
