import { KubeConfig } from '@kubernetes/client-node';
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../lib/paths.js';
import { Kube } from '../lib/runner/kube.js';

/**
 * The CLIs as a user runs them, for the unit project (no cluster): a throwaway copy of the project,
 * the commands run as processes, and an "API server" that only counts the connections it gets, so
 * that a test can prove a refusal sent nothing (the e2e suite's method, without a cluster).
 */

export const root = projectRoot();

/** A throwaway copy of the project (so broken profiles and stale output can be planted); node_modules is shared. */
export function projectCopy(): string {
  const work = mkdtempSync(join(tmpdir(), 'sandstore-copy-'));
  for (const p of [
    'main.ts',
    'package.json',
    'cdk8s.yaml',
    'tsconfig.json',
    'lib',
    'imports',
    'profiles',
    'dist',
    'drivers',
  ]) {
    cpSync(join(root, p), join(work, p), { recursive: true });
  }
  mkdirSync(join(work, 'scripts'));
  // run-ts.mjs runs the entry points; cdk8s synth's validation plugin also runs the manifest checkers' script.
  for (const script of ['run-ts.mjs', 'lint-manifests.sh', 'lint-manifests-report.mjs'])
    cpSync(join(root, 'scripts', script), join(work, 'scripts', script));
  symlinkSync(join(root, 'node_modules'), join(work, 'node_modules'));
  return work;
}

/**
 * Every file under `dir` (hidden ones too) with its contents, by path relative to `dir`: what
 * "untouched" and "equal" are checked against.
 */
export function treeOf(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (at: string, rel: string) => {
    for (const e of readdirSync(at, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(at, e.name), `${rel}${e.name}/`);
      else out[`${rel}${e.name}`] = readFileSync(join(at, e.name), 'utf8');
    }
  };
  walk(dir, '');
  return out;
}

export interface ProcessResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `node scripts/run-ts.mjs <entry> <args>` in `cwd` to completion (asynchronously: a test's
 * server keeps answering meanwhile).
 */
export function runEntry(
  entry: 'main.ts' | 'lib/runner/cli.ts',
  args: readonly string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<ProcessResult> {
  return new Promise((resolve) => {
    // The caller's environment, but never a KUBE_CONTEXT of the machine's: a test names its own.
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
    delete env.KUBE_CONTEXT;
    const child = spawn('node', ['scripts/run-ts.mjs', entry, ...args], {
      cwd: opts.cwd ?? root,
      env: { ...env, ...opts.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A client on `server` (plain http: these tests talk to a local stand-in, never through resolveTarget). */
export function kubeAt(server: string, user: Record<string, unknown> = { name: 'u', token: 't' }): Kube {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server, skipTLSVerify: true }],
    users: [user],
    contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
    currentContext: 'ctx',
  });
  return new Kube(kc);
}

/** A TCP server standing in for an API server: it counts connections and closes each at once. */
export interface CountingServer {
  readonly port: number;
  connections(): number;
  close(): Promise<void>;
}

export async function countingServer(): Promise<CountingServer> {
  let connections = 0;
  const server = createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    connections: () => connections,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Runs `body` with a counting server that is closed afterwards, whatever `body` did. */
export async function withCountingServer<T>(body: (server: CountingServer) => Promise<T>): Promise<T> {
  const server = await countingServer();
  try {
    return await body(server);
  } finally {
    await server.close();
  }
}

/** A kubeconfig whose every context (the shipped profiles' among them) points at `server`. */
export function kubeconfigText(
  server: string,
  contexts: readonly string[] = ['sandstore-local', 'minikube-laptop', 'other'],
): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: counting`,
    `  cluster: { server: ${JSON.stringify(server)}, insecure-skip-tls-verify: true }`,
    'users:',
    '- name: u',
    '  user: { token: t }',
    'contexts:',
    ...contexts.map((c) => `- name: ${c}\n  context: { cluster: counting, user: u }`),
    `current-context: ${contexts[0]}`,
    '',
  ].join('\n');
}

const temporaries: string[] = [];

/** Writes `text` as a kubeconfig in a new temporary directory (removed by removeTemporaries); returns its path. */
export function writeKubeconfig(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'kubeconfig-'));
  temporaries.push(dir);
  const file = join(dir, 'config');
  writeFileSync(file, text);
  return file;
}

/** Removes what writeKubeconfig wrote: call it in afterAll. */
export function removeTemporaries(): void {
  for (const dir of temporaries.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** A stack trace's frame line: never part of what a user sees. */
export const STACK_FRAME = /^\s+at .+\(?.*:\d+:\d+\)?$/m;
