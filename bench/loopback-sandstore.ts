/**
 * A Sand Store of one or three nodes on 127.0.0.1, with its own etcd, for the bench: the fastest
 * target this machine offers, so that the load driver's ceiling can be measured against it.
 *
 *   const ss = await startLoopbackSandstore({ nodes: 1, source: '/work/shared/sandstore' });
 *   ... SANDSTORE_SEEDS=ss.seeds.join(',') ...
 *   await ss.stop();
 *
 * The binaries are the local cluster's (scripts/local-cluster/build.sh builds etcd, images.sh
 * builds Sand Store), taken from its cache; a build of theirs in progress is waited for (their
 * flock), and a missing one is built the same way, under the same lock, into the same place, so
 * that neither side builds twice.
 *
 * Three nodes share the loopback interface: every node binds its metrics on :2112 (fixed in code),
 * but Sand Store starts that listener in a goroutine and ignores its error
 * (internal/metrics/prometheus: `go metricsService.Start()`, `http.ListenAndServe` unchecked), so
 * the second and third nodes simply serve no metrics. No network namespaces are needed.
 *
 * One node starts and elects itself, but Sand Store 7ab6010 cannot commit anything alone: its Raft
 * leader advances the commit index only on a follower's AppendEntries reply
 * (durable_raft/replicator.go, advanceCommitIndexLocked), so every mutation (create, write) times
 * out with INTERNAL "context deadline exceeded". Use three nodes for anything that writes.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, watch, type FSWatcher } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { projectRoot } from '../lib/paths.js';

export interface LoopbackSandstore {
  /** host:port of every node, for a client's seeds (SANDSTORE_SEEDS, --seeds). */
  seeds: string[];
  /** Stops the nodes, then etcd (SIGTERM, SIGKILL after a bound), and removes the data. */
  stop(): Promise<void>;
}

export interface LoopbackOptions {
  nodes: 1 | 3;
  /** Sand Store's source (read only: builds write into the cache, never into it). */
  source: string;
}

/** How long each step may take before the start is given up. */
const ETCD_READY_MS = 30_000;
/** Registration (which retries against etcd for up to 30 s) plus an election. */
const LEADER_MS = 60_000;
/** From SIGTERM to SIGKILL: Sand Store can hang ~30 s on shutdown, and its data is thrown away anyway. */
const TERM_GRACE_MS = 3_000;
/** A build of the cluster's (build.sh, images.sh) holds its lock this long at most (lib.sh's with_lock). */
const LOCK_WAIT_S = 1800;
const SANDSTORE_TAGS = 'grpc,etcd';

export async function startLoopbackSandstore(opts: LoopbackOptions): Promise<LoopbackSandstore> {
  const bins = ensureBinaries(opts.source);
  const dir = mkdtempSync(join(tmpdir(), 'sandstore-loopback-'));
  const children: Child[] = [];
  // If the bench exits without calling stop(), its processes and data must not outlive it.
  const onExit = () => {
    for (const c of children) if (c.running()) c.proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', onExit);
  const stop = once(async () => {
    process.off('exit', onExit);
    await stopAll(children);
    rmSync(dir, { recursive: true, force: true });
  });
  try {
    const [clientPort, peerPort, ...nodePorts] = await freePorts(2 + opts.nodes);
    const etcdEndpoint = `127.0.0.1:${clientPort}`;
    children.push(startEtcd(bins.etcd, dir, clientPort, peerPort));
    await waitForLine(children[0], /serving client traffic/, ETCD_READY_MS, children);
    const nodes = nodePorts.map((port, i) => ({ id: `loopback-${i}`, address: `127.0.0.1:${port}`, dataDir: join(dir, `loopback-${i}`) }));
    for (const n of nodes) await putMember(etcdEndpoint, n.id, n.address);
    for (const n of nodes) children.push(startNode(bins.sandstore, n, etcdEndpoint));
    await waitForLeader(nodes, LEADER_MS, children);
    return { seeds: nodes.map((n) => n.address), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

// ------------------------------------------------------------------------------ processes ---
interface Child {
  name: string;
  proc: ChildProcess;
  /** Resolves once the process has exited and its stderr is drained (never rejects). */
  exited: Promise<void>;
  running(): boolean;
  /** How it ended, e.g. "exited 1", "killed by SIGTERM", "could not start: ENOENT". */
  ending(): string;
  /** Its last lines of stderr. */
  tail(): string;
  /** Called with every line of stderr. */
  onLine(fn: (line: string) => void): () => void;
}

const TAIL_LINES = 15;

function launch(name: string, cmd: string, args: readonly string[], env: NodeJS.ProcessEnv, cwd: string): Child {
  const proc = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
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
    proc.once('error', (err) => { ending ||= `could not start: ${err.message}`; resolve(); });
    proc.once('close', (code, signal) => { ending ||= signal ? `killed by ${signal}` : `exited ${code}`; resolve(); });
  });
  return {
    name, proc, exited,
    running: () => ending === '',
    ending: () => ending,
    tail: () => [...lines, partial].filter((l) => l.trim() !== '').join('\n'),
    onLine: (fn) => { listeners.add(fn); return () => listeners.delete(fn); },
  };
}

function startEtcd(etcd: string, dir: string, clientPort: number, peerPort: number): Child {
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  return launch('etcd', etcd, [
    '--name=loopback', `--data-dir=${join(dir, 'etcd')}`,
    `--listen-client-urls=${client}`, `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`, `--initial-advertise-peer-urls=${peer}`, `--initial-cluster=loopback=${peer}`,
    // Nothing to keep: fsync costs would only slow the node's start.
    '--unsafe-no-fsync',
  ], { PATH: process.env.PATH }, dir);
}

interface NodeSpec { id: string; address: string; dataDir: string }

function startNode(sandstore: string, n: NodeSpec, etcdEndpoint: string): Child {
  // The log directory exists before the node does, so that the leader watch can start at once.
  mkdirSync(join(n.dataDir, 'logs'), { recursive: true });
  // Only what the runtime contract names: the caller's RAFT_* or ADVERTISE_HOST must not leak in.
  const env = { PATH: process.env.PATH, ETCD_ENDPOINTS: etcdEndpoint, NODE_ID: n.id, LISTEN_ADDR: n.address, DATA_DIR: n.dataDir };
  return launch(n.id, sandstore, ['--server', 'node'], env, n.dataDir);
}

/** SIGTERM to each (data plane first, then etcd), SIGKILL after TERM_GRACE_MS, and waits for every exit. */
async function stopAll(children: readonly Child[]): Promise<void> {
  const stopOne = async (c: Child) => {
    if (!c.running()) return;
    c.proc.kill('SIGTERM');
    const timer = setTimeout(() => c.proc.kill('SIGKILL'), TERM_GRACE_MS);
    await c.exited;
    clearTimeout(timer);
  };
  await Promise.all(children.filter((c) => c.name !== 'etcd').map(stopOne));
  await Promise.all(children.filter((c) => c.name === 'etcd').map(stopOne));
}

// -------------------------------------------------------------------------------- waiting ---
/**
 * Resolves when `arm`'s check calls done; rejects when the deadline passes or any of `children`
 * exits first, naming the process and its last stderr lines. `arm` returns its own clean-up.
 */
function until(what: string, ms: number, children: readonly Child[], arm: (done: () => void) => () => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let disarm = () => {};
    let settled = false;
    // Also reached later, by the exits that stop() causes: only the first call counts.
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      disarm();
      if (err) reject(err); else resolve();
    };
    const timer = setTimeout(() => finish(new Error(`loopback Sand Store: no ${what} within ${ms / 1000} s;${children.map((c) => describe(c)).join(';')}`)), ms);
    for (const c of children) void c.exited.then(() => finish(new Error(`loopback Sand Store: ${c.name} ${c.ending()} before ${what};${describe(c)}`)));
    disarm = arm(() => finish());
  });
}

const describe = (c: Child) => ` ${c.name}'s last stderr: ${c.tail() || '(empty)'}`;

function waitForLine(child: Child, pattern: RegExp, ms: number, children: readonly Child[]): Promise<void> {
  return until(`"${pattern.source}" from ${child.name}`, ms, children, (done) => child.onLine((line) => { if (pattern.test(line)) done(); }));
}

/**
 * Sand Store logs its election only to <DATA_DIR>/logs/<node-id>.log: watch each node's log
 * directory and re-read the files on every change, and once after the watches are set (the line
 * may already be there).
 */
function waitForLeader(nodes: readonly NodeSpec[], ms: number, children: readonly Child[]): Promise<void> {
  return until('node logging "Became Leader"', ms, children, (done) => {
    const files = nodes.map((n) => join(n.dataDir, 'logs', `${n.id}.log`));
    const check = () => { if (files.some((f) => existsSync(f) && readFileSync(f, 'utf8').includes('Became Leader'))) done(); };
    const watchers: FSWatcher[] = nodes.map((n) => watch(join(n.dataDir, 'logs'), check));
    check();
    return () => { for (const w of watchers) w.close(); };
  });
}

// ---------------------------------------------------------------------------------- etcd ---
/** Writes the node's static membership key through etcd's JSON gateway (no etcdctl needed). */
async function putMember(endpoint: string, id: string, address: string): Promise<void> {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const body = { key: b64(`/sandstore/config/nodes/${id}`), value: b64(JSON.stringify({ id, address, role: 'voter' })) };
  const res = await fetch(`http://${endpoint}/v3/kv/put`, { method: 'POST', body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`loopback Sand Store: etcd refused the membership key of ${id}: HTTP ${res.status} ${await res.text()}`);
}

/** `n` distinct free TCP ports on 127.0.0.1, asked of the OS (all held open until all are known). */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => resolve(s));
  })));
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}

// ------------------------------------------------------------------------------ binaries ---
/**
 * etcd from build.sh's cache and Sand Store from images.sh's, built there (under their lock) when
 * missing. Synchronous: the builds' output goes to our stderr, and nothing else runs meanwhile.
 */
export function ensureBinaries(source: string): { etcd: string; sandstore: string } {
  const cache = process.env.SANDSTORE_CACHE_DIR ?? join(homedir(), '.cache', 'sandstore-deploy');
  mkdirSync(cache, { recursive: true });
  return { etcd: ensureEtcd(cache), sandstore: ensureSandstore(cache, source) };
}

/** scripts/local-cluster, where lib.sh pins etcd's version and build.sh's Go module builds it. */
const clusterScripts = () => join(projectRoot(), 'scripts', 'local-cluster');

function ensureEtcd(cache: string): string {
  const lc = clusterScripts();
  const version = /^ETCD_VERSION=(\S+)$/m.exec(readFileSync(join(lc, 'lib.sh'), 'utf8'))?.[1];
  if (!version) throw new Error(`no ETCD_VERSION in ${join(lc, 'lib.sh')}`);
  const bin = join(cache, `etcd-${version}`, 'bin');
  // Looked at before the lock: build.sh holds it for its whole run, kubernetes and kwok included.
  if (['.complete', 'etcd', 'etcdctl'].every((f) => existsSync(join(bin, f)))) return join(bin, 'etcd');
  // build.sh's recipe for etcd and etcdctl alone (its ldflags, its go.mod), installed as it does.
  underLock(join(cache, '.build.lock'), `etcd ${version}`, `
    [[ -f $BIN/.complete && -x $BIN/etcd && -x $BIN/etcdctl ]] && exit 0
    echo "loopback Sand Store: building etcd $VERSION into $BIN" >&2
    export CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false"
    tmp=$(mktemp -d "$CACHE/.build.XXXXXX"); trap 'rm -rf "$tmp"' EXIT
    (cd "$LC" && go build -trimpath -ldflags="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$VERSION" -o "$tmp/" ./etcd go.etcd.io/etcd/etcdctl/v3)
    rm -rf "$BIN"; mkdir -p "$BIN"; mv "$tmp/etcd" "$tmp/etcdctl" "$BIN/"; date -u +%FT%TZ >"$BIN/.complete"`,
  { BIN: bin, VERSION: version, CACHE: cache, LC: lc });
  return join(bin, 'etcd');
}

function ensureSandstore(cache: string, source: string): string {
  const src = realpathSync(source);
  if (!existsSync(join(src, 'go.mod'))) throw new Error(`${src} has no go.mod: give the source of Sand Store`);
  const goVersion = spawnSync('go', ['env', 'GOVERSION'], { encoding: 'utf8' }).stdout?.trim();
  if (!goVersion) throw new Error('`go env GOVERSION` failed: Go is needed to find or build Sand Store');
  const dir = join(cache, 'sandstore-bin', sha256(`${sourceDigest(src)} ${goVersion} ${SANDSTORE_TAGS}`).slice(0, 16));
  // Looked at before the lock: images.sh holds it while it also builds and pushes images.
  if (existsSync(join(dir, '.complete'))) return join(dir, 'sandstore');
  // images.sh's sandstore_bins: the node with the tags, the clients without, moved in complete.
  underLock(join(cache, '.images.lock'), 'Sand Store', `
    [[ -f $DIR/.complete ]] && exit 0
    echo "loopback Sand Store: building Sand Store from $SRC into $DIR (cold: about 3 minutes)" >&2
    export CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false"
    tmp=$(mktemp -d "$CACHE/.build.XXXXXX"); trap 'rm -rf "$tmp"' EXIT
    go -C "$SRC" build -trimpath -tags "$TAGS" -o "$tmp/sandstore" ./cmd/sandstore
    go -C "$SRC" build -trimpath -o "$tmp/smoke" ./clients/open_smoke
    go -C "$SRC" build -trimpath -o "$tmp/durability_smoke" ./clients/durability_smoke
    echo "$SRC tags=$TAGS $GOVERSION" >"$tmp/.complete"
    rm -rf "$DIR"; mkdir -p "$(dirname "$DIR")"; mv -T "$tmp" "$DIR"; trap - EXIT`,
  { DIR: dir, SRC: src, CACHE: cache, TAGS: SANDSTORE_TAGS, GOVERSION: goVersion });
  return join(dir, 'sandstore');
}

/**
 * Runs a bash script under the cluster scripts' flock: it waits for a build of theirs in progress
 * (then finds the result), or builds while they wait.
 */
function underLock(lock: string, what: string, script: string, env: Record<string, string>): void {
  const r = spawnSync('flock', ['-w', String(LOCK_WAIT_S), lock, 'bash', '-euo', 'pipefail', '-c', script], {
    env: { ...process.env, ...env }, stdio: ['ignore', process.stderr, process.stderr],
  });
  if (r.error) throw new Error(`cannot run flock to find or build ${what}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`finding or building ${what} failed (exit ${r.status}; its output is above)`);
}

/**
 * images.sh's hash of the source: sha256sum of every file but .git's, in byte order of their
 * ./paths, hashed again; it names the cache directory, so it must match theirs to the byte.
 */
function sourceDigest(src: string): string {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.name === '.git') continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) files.push(`./${relative(src, p)}`);
    }
  };
  walk(src);
  files.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return sha256(files.map((f) => `${sha256(readFileSync(join(src, f)))}  ${f}\n`).join(''));
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

function once(fn: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined;
  return () => (p ??= fn());
}
