/**
 * etcd and Sand Store nodes as plain processes on this machine, for the process baseline
 * (baseline-processes.ts) and the bench's loopback Sand Store (bench/loopback-sandstore.ts): starting
 * each in its own process group, waiting for a line or a leader by watching (never by sleeping),
 * writing the static membership into etcd, and stopping them all so that nothing is left.
 *
 * Several nodes share the loopback interface: every node binds its metrics on :2112 (fixed in code),
 * but Sand Store starts that listener in a goroutine and ignores its error
 * (internal/metrics/prometheus: `go metricsService.Start()`, `http.ListenAndServe` unchecked), so
 * only the first node to bind it serves metrics. No network namespaces are needed.
 *
 * One node starts and elects itself, but Sand Store 7ab6010 cannot commit anything alone: its Raft
 * leader advances the commit index only on a follower's AppendEntries reply
 * (durable_raft/replicator.go, advanceCommitIndexLocked), so every mutation (create, write) times
 * out with INTERNAL "context deadline exceeded". Use three nodes for anything that writes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, watch, type FSWatcher } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import { currentLeader, roleChanges, type RoleChange } from '../runner/leader.js';

/** A process started here, and what it said. */
export interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  /** Resolves once the process has exited and its stderr is drained (never rejects). */
  readonly exited: Promise<void>;
  running(): boolean;
  /** How it ended, e.g. "exited 1", "killed by SIGTERM", "could not start: ENOENT". */
  ending(): string;
  /** Its last lines of stderr. */
  tail(): string;
  /** Called with every line of stderr. */
  onLine(fn: (line: string) => void): () => void;
}

const TAIL_LINES = 15;

/** What to run: the program, its arguments and its whole environment (nothing of ours leaks in). */
export interface Launch {
  readonly name: string;
  readonly program: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
}

/**
 * Starts a process in a process group of its own: a Ctrl-C at the terminal reaches the runner, which
 * stops its processes in order, rather than every process at once; and the whole group can be killed.
 */
export function launch(spec: Launch): Child {
  const proc = spawn(spec.program, [...spec.args], {
    cwd: spec.cwd,
    env: { ...spec.env },
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  const lines: string[] = [];
  const listeners = new Set<(line: string) => void>();
  let partial = '';
  let ending = '';
  proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      if (lines.length > TAIL_LINES) lines.shift();
      for (const fn of listeners) fn(line);
    }
  });
  const exited = new Promise<void>((resolve) => {
    proc.once('error', (err) => {
      ending ||= `could not start: ${err.message}`;
      resolve();
    });
    proc.once('close', (code, signal) => {
      ending ||= signal ? `killed by ${signal}` : `exited ${code}`;
      resolve();
    });
  });
  return {
    name: spec.name,
    proc,
    exited,
    running: () => ending === '',
    ending: () => ending,
    tail: () => [...lines, partial].filter((l) => l.trim() !== '').join('\n'),
    onLine: (fn) => {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
  };
}

/** Signals a child's whole process group (its pid is the group's id: launch made it a leader). */
function signalGroup(c: Child, signal: NodeJS.Signals): void {
  if (c.proc.pid === undefined) return;
  try {
    process.kill(-c.proc.pid, signal);
  } catch {
    // Already gone.
  }
}

/** SIGKILL to every group still running: for process exit, when nothing can be awaited. */
export function killNow(children: readonly Child[]): void {
  for (const c of children) if (c.running()) signalGroup(c, 'SIGKILL');
}

/**
 * SIGTERM to each group (the data plane first, then etcd, as Kubernetes stops a profile), SIGKILL
 * after `graceMs`, and waits for every exit.
 */
export async function stopAll(
  children: readonly Child[],
  isControlPlane: (c: Child) => boolean,
  graceMs: number,
): Promise<void> {
  const stopOne = async (c: Child) => {
    if (!c.running()) return;
    signalGroup(c, 'SIGTERM');
    const timer = setTimeout(() => signalGroup(c, 'SIGKILL'), graceMs);
    await c.exited;
    clearTimeout(timer);
  };
  await Promise.all(children.filter((c) => !isControlPlane(c)).map(stopOne));
  await Promise.all(children.filter(isControlPlane).map(stopOne));
}

/**
 * Resolves when `arm`'s check calls done; rejects when the deadline passes, `signal` aborts, or any
 * of `children` exits first, naming the process and its last stderr lines. `arm` returns its own clean-up.
 */
export function until(
  what: string,
  ms: number,
  children: readonly Child[],
  arm: (done: () => void) => () => void,
  signal?: AbortSignal,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let disarm = () => {};
    let settled = false;
    // Also reached later, by the exits that stopping causes: only the first call counts.
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', aborted);
      disarm();
      if (err) reject(err);
      else resolve();
    };
    const aborted = () => finish(new WaitInterrupted(what));
    const timer = setTimeout(
      () => finish(new StartFailed(`no ${what} within ${ms / 1000} s;${children.map(describe).join(';')}`)),
      ms,
    );
    signal?.addEventListener('abort', aborted);
    for (const c of children)
      void c.exited.then(() => finish(new StartFailed(`${c.name} ${c.ending()} before ${what};${describe(c)}`)));
    disarm = arm(() => finish());
    if (signal?.aborted) aborted();
  });
}

/** The processes did not come up as they should (the message says which and why). */
export class StartFailed extends Error {}
/** A wait stopped by Ctrl-C. */
export class WaitInterrupted extends Error {
  public constructor(public readonly what: string) {
    super(`interrupted while waiting for ${what}`);
  }
}

const describe = (c: Child) => ` ${c.name}'s last stderr: ${c.tail() || '(empty)'}`;

export function waitForLine(
  child: Child,
  pattern: RegExp,
  ms: number,
  children: readonly Child[],
  signal?: AbortSignal,
): Promise<void> {
  return until(
    `"${pattern.source}" from ${child.name}`,
    ms,
    children,
    (done) =>
      child.onLine((line) => {
        if (pattern.test(line)) done();
      }),
    signal,
  );
}

/** A node whose event log (<DATA_DIR>/logs/<id>.log) is watched. */
export interface LoggingNode {
  readonly id: string;
  readonly dataDir: string;
}

const logFile = (n: LoggingNode) => join(n.dataDir, 'logs', `${n.id}.log`);

/** Every role change the nodes have logged so far, read from their event logs (leader.ts's parsing). */
export function nodeRoleChanges(nodes: readonly LoggingNode[]): RoleChange[] {
  return nodes.flatMap((n) => (existsSync(logFile(n)) ? roleChanges(n.id, readFileSync(logFile(n), 'utf8')) : []));
}

/** The leader and term the logs show now. */
export function nodeLeadership(nodes: readonly LoggingNode[]): { leader?: string; term?: number } {
  const changes = nodeRoleChanges(nodes);
  return {
    leader: currentLeader(changes),
    term: changes.length > 0 ? Math.max(...changes.map((c) => c.term)) : undefined,
  };
}

/**
 * Sand Store logs its elections only to <DATA_DIR>/logs/<node-id>.log: the log directories are
 * watched and the files read again on every change (and once after the watches are set: the line
 * may already be there). Resolves with a single leader once no node changed its role for `quietMs`
 * (the gate's rule on a cluster: an election that is still settling is not measured); a timer
 * re-checks when the quiet period would end.
 */
export function waitForSettledLeader(
  nodes: readonly LoggingNode[],
  quietMs: number,
  ms: number,
  children: readonly Child[],
  signal?: AbortSignal,
): Promise<{ leader: string; term: number }> {
  let found: { leader: string; term: number } | undefined;
  const waited = until(
    `a single leader and no role change for ${quietMs / 1000} s in the nodes' event logs`,
    ms,
    children,
    (done) => {
      let seen = -1;
      let changedAt = Date.now();
      let quietTimer: NodeJS.Timeout | undefined;
      const check = () => {
        const changes = nodeRoleChanges(nodes);
        if (changes.length !== seen) [seen, changedAt] = [changes.length, Date.now()];
        const leader = currentLeader(changes);
        clearTimeout(quietTimer);
        if (!leader) return;
        const left = changedAt + quietMs - Date.now();
        if (left > 0) quietTimer = setTimeout(check, left);
        else {
          found = { leader, term: Math.max(...changes.map((c) => c.term)) };
          done();
        }
      };
      const watchers: FSWatcher[] = nodes.map((n) => watch(join(n.dataDir, 'logs'), check));
      check();
      return () => {
        clearTimeout(quietTimer);
        for (const w of watchers) w.close();
      };
    },
    signal,
  );
  return waited.then(() => found!);
}

/** Writes a key through etcd's JSON gateway (no etcdctl needed), as the membership Job does with etcdctl put. */
export async function putKey(endpoint: string, key: string, value: string): Promise<void> {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const res = await fetch(`http://${endpoint}/v3/kv/put`, {
    method: 'POST',
    body: JSON.stringify({ key: b64(key), value: b64(value) }),
  });
  if (!res.ok) throw new StartFailed(`etcd at ${endpoint} refused key ${key}: HTTP ${res.status} ${await res.text()}`);
}

const listenOn = (port: number) =>
  new Promise<Server>((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
const closeAll = (servers: readonly Server[]) =>
  Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));

/** `n` distinct free TCP ports on 127.0.0.1, asked of the OS (all held open until all are known). */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => listenOn(0)));
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await closeAll(servers);
  return ports;
}

/**
 * `n` consecutive free ports on 127.0.0.1 (Sand Store advertises its leader at base + ordinal, so a
 * profile's nodes need a run of ports): a base the OS gives, tried upwards until a run is free.
 */
export async function consecutiveFreePorts(n: number, attempts = 50): Promise<number[]> {
  for (let i = 0; i < attempts; i++) {
    const [base] = await freePorts(1);
    if (base + n > 65_535) continue;
    const held: Server[] = [];
    try {
      for (let p = base; p < base + n; p++) held.push(await listenOn(p));
      return held.map((s) => (s.address() as AddressInfo).port);
    } catch {
      // Taken: another base.
    } finally {
      await closeAll(held);
    }
  }
  throw new StartFailed(`no ${n} consecutive free ports on 127.0.0.1 in ${attempts} attempts`);
}

/** The ports of `ports` something listens on now (a free one can be bound). */
export async function portsInUse(ports: readonly number[]): Promise<number[]> {
  const used: number[] = [];
  for (const p of ports) {
    try {
      await closeAll([await listenOn(p)]);
    } catch {
      used.push(p);
    }
  }
  return used;
}

/** The pids of live processes (from /proc) whose executable is one of `programs`. */
export function processesRunning(programs: readonly string[]): { pid: number; exe: string }[] {
  const found: { pid: number; exe: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let exe: string;
    try {
      exe = readlinkSync(`/proc/${entry}/exe`);
    } catch {
      continue;
    }
    if (programs.includes(exe)) found.push({ pid: Number(entry), exe });
  }
  return found;
}

/** A Sand Store to start on this machine: etcd's members, the membership keys, the nodes. */
export interface LocalSandstoreSpec {
  /** Where every process keeps its data: removed when the processes are stopped. */
  readonly dataRoot: string;
  readonly etcd: readonly Launch[];
  /** host:port of an etcd member's client URL, for the membership keys. */
  readonly etcdEndpoint: string;
  /** The static membership, written before the nodes start (the membership Job's keys). */
  readonly members: readonly { readonly key: string; readonly value: string }[];
  readonly nodes: readonly (Launch & LoggingNode)[];
  readonly limits: {
    /** etcd's start; a node's registration (which retries for up to 30 s) plus an election. */
    readonly etcdMs: number;
    readonly leaderMs: number;
    /** No role change for this long before the leader counts as settled (0: the first leader). */
    readonly quietMs: number;
    /** From SIGTERM to SIGKILL. */
    readonly graceMs: number;
  };
}

/** The processes started, the leader they elected, and how to stop them. */
export interface LocalSandstore {
  readonly children: readonly Child[];
  readonly leader: string;
  readonly term: number;
  /** Stops the nodes, then etcd (SIGTERM, SIGKILL after the bound), waits for every exit, removes the data. Once. */
  stop(): Promise<void>;
}

const ETCD_SERVING = /serving client traffic/;

/**
 * Starts etcd, writes the membership, starts the nodes and waits for a settled leader; on any
 * failure (or `signal`) stops what it started and removes the data before it throws. Should the
 * runner exit without stopping them, the processes are killed and the data removed on its way out.
 */
export async function startLocalSandstore(spec: LocalSandstoreSpec, signal?: AbortSignal): Promise<LocalSandstore> {
  const children: Child[] = [];
  const etcdNames = new Set(spec.etcd.map((e) => e.name));
  const onExit = () => {
    killNow(children);
    rmSync(spec.dataRoot, { recursive: true, force: true });
  };
  process.on('exit', onExit);
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await stopAll(children, (c) => etcdNames.has(c.name), spec.limits.graceMs);
      process.off('exit', onExit);
      rmSync(spec.dataRoot, { recursive: true, force: true });
    })());
  try {
    for (const e of spec.etcd) children.push(launch(e));
    await Promise.all(children.map((c) => waitForLine(c, ETCD_SERVING, spec.limits.etcdMs, children, signal)));
    for (const m of spec.members) await putKey(spec.etcdEndpoint, m.key, m.value);
    // The log directories exist before the nodes do, so that the leader watch can start at once.
    for (const n of spec.nodes) mkdirSync(join(n.dataDir, 'logs'), { recursive: true });
    for (const n of spec.nodes) children.push(launch(n));
    const { leader, term } = await waitForSettledLeader(
      spec.nodes,
      spec.limits.quietMs,
      spec.limits.leaderMs,
      children,
      signal,
    );
    return { children, leader, term, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
