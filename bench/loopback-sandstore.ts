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
 * that neither side builds twice. The processes are lib/benchmark/local-processes.ts's (which says
 * why several nodes can share loopback, and why one node cannot commit).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { cacheDir } from '../lib/benchmark/image-binaries.js';
import { freePorts, startLocalSandstore } from '../lib/benchmark/local-processes.js';
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

/**
 * How long each step may take before the start is given up; from SIGTERM to SIGKILL (Sand Store can
 * hang ~30 s on shutdown, and its data is thrown away anyway).
 */
const LIMITS = { etcdMs: 30_000, leaderMs: 60_000, quietMs: 0, graceMs: 3_000 };
/** A build of the cluster's (build.sh, images.sh) holds its lock this long at most (lib.sh's with_lock). */
const LOCK_WAIT_S = 1800;
const SANDSTORE_TAGS = 'grpc,etcd';

export async function startLoopbackSandstore(opts: LoopbackOptions): Promise<LoopbackSandstore> {
  const bins = ensureBinaries(opts.source);
  const dir = mkdtempSync(join(tmpdir(), 'sandstore-loopback-'));
  const [clientPort, peerPort, ...nodePorts] = await freePorts(2 + opts.nodes);
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const etcd = {
    name: 'etcd',
    program: bins.etcd,
    cwd: dir,
    env: { PATH: process.env.PATH ?? '' },
    args: [
      '--name=loopback',
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=loopback=${peer}`,
      // Nothing to keep: fsync costs would only slow the node's start.
      '--unsafe-no-fsync',
    ],
  };
  const nodes = nodePorts.map((port, i) => {
    const [id, address, dataDir] = [`loopback-${i}`, `127.0.0.1:${port}`, join(dir, `loopback-${i}`)];
    mkdirSync(dataDir, { recursive: true });
    // Only what the runtime contract names: the caller's RAFT_* or ADVERTISE_HOST must not leak in.
    const env = {
      PATH: process.env.PATH ?? '',
      ETCD_ENDPOINTS: `127.0.0.1:${clientPort}`,
      NODE_ID: id,
      LISTEN_ADDR: address,
      DATA_DIR: dataDir,
    };
    return { name: id, id, address, dataDir, program: bins.sandstore, args: ['--server', 'node'], env, cwd: dataDir };
  });
  const members = nodes.map((n) => ({
    key: `/sandstore/config/nodes/${n.id}`,
    value: JSON.stringify({ id: n.id, address: n.address, role: 'voter' }),
  }));
  const ss = await startLocalSandstore({
    dataRoot: dir,
    etcd: [etcd],
    etcdEndpoint: `127.0.0.1:${clientPort}`,
    members,
    nodes,
    limits: LIMITS,
  });
  return { seeds: nodes.map((n) => n.address), stop: () => ss.stop() };
}

// ------------------------------------------------------------------------------ binaries ---
/**
 * etcd from build.sh's cache and Sand Store from images.sh's, built there (under their lock) when
 * missing. Synchronous: the builds' output goes to our stderr, and nothing else runs meanwhile.
 */
export function ensureBinaries(source: string): { etcd: string; sandstore: string } {
  const cache = cacheDir();
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
  underLock(
    join(cache, '.build.lock'),
    `etcd ${version}`,
    `
    [[ -f $BIN/.complete && -x $BIN/etcd && -x $BIN/etcdctl ]] && exit 0
    echo "loopback Sand Store: building etcd $VERSION into $BIN" >&2
    export CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false"
    tmp=$(mktemp -d "$CACHE/.build.XXXXXX"); trap 'rm -rf "$tmp"' EXIT
    (cd "$LC" && go build -trimpath -ldflags="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$VERSION" -o "$tmp/" ./etcd go.etcd.io/etcd/etcdctl/v3)
    rm -rf "$BIN"; mkdir -p "$BIN"; mv "$tmp/etcd" "$tmp/etcdctl" "$BIN/"; date -u +%FT%TZ >"$BIN/.complete"`,
    { BIN: bin, VERSION: version, CACHE: cache, LC: lc },
  );
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
  underLock(
    join(cache, '.images.lock'),
    'Sand Store',
    `
    [[ -f $DIR/.complete ]] && exit 0
    echo "loopback Sand Store: building Sand Store from $SRC into $DIR (cold: about 3 minutes)" >&2
    export CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false"
    tmp=$(mktemp -d "$CACHE/.build.XXXXXX"); trap 'rm -rf "$tmp"' EXIT
    go -C "$SRC" build -trimpath -tags "$TAGS" -o "$tmp/sandstore" ./cmd/sandstore
    go -C "$SRC" build -trimpath -o "$tmp/smoke" ./clients/open_smoke
    go -C "$SRC" build -trimpath -o "$tmp/durability_smoke" ./clients/durability_smoke
    echo "$SRC tags=$TAGS $GOVERSION" >"$tmp/.complete"
    rm -rf "$DIR"; mkdir -p "$(dirname "$DIR")"; mv -T "$tmp" "$DIR"; trap - EXIT`,
    { DIR: dir, SRC: src, CACHE: cache, TAGS: SANDSTORE_TAGS, GOVERSION: goVersion },
  );
  return join(dir, 'sandstore');
}

/**
 * Runs a bash script under the cluster scripts' flock: it waits for a build of theirs in progress
 * (then finds the result), or builds while they wait.
 */
function underLock(lock: string, what: string, script: string, env: Record<string, string>): void {
  const r = spawnSync('flock', ['-w', String(LOCK_WAIT_S), lock, 'bash', '-euo', 'pipefail', '-c', script], {
    env: { ...process.env, ...env },
    stdio: ['ignore', process.stderr, process.stderr],
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
