import { spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDriver } from '../../lib/benchmark/driver-build.js';
import { DriverSummary, RunRecord } from '../../lib/benchmark/record.js';
import { expectExit, root, runCli, sandstoreSource } from './harness.js';
import { checkCsvAndHistograms } from './run-files.js';

/**
 * `npm run benchmark -- --profile=local-node --baseline=processes` as a user runs it: etcd and three
 * Sand Store nodes as plain processes on this machine, measured by the driver, stopped. Checked
 * without trusting the command: the binaries the processes ran (their /proc/<pid>/exe, hashed while
 * they run) against the files inside the images, read by crane and tar; the processes found as the
 * command's descendants in /proc, their listening ports by `ss`; afterwards no pid, no port and no
 * data folder left; the run's CSV and histograms; and the same after Ctrl-C.
 */
const PROFILE = 'local-node';
const CACHE = process.env.SANDSTORE_CACHE_DIR ?? join(homedir(), '.cache', 'sandstore-deploy');
const CRANE = join(CACHE, 'crane-v0.20.2', 'bin', 'crane');
const results = mkdtempSync(join(tmpdir(), 'baseline-e2e-'));
const runDirs = () =>
  existsSync(join(results, PROFILE))
    ? readdirSync(join(results, PROFILE))
        .sort()
        .map((d) => join(results, PROFILE, d))
    : [];
const readRecord = (dir: string) => RunRecord.parse(JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')));
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/**
 * The sha256 of `path` inside `image`, read by crane (the image's merged file system as a tar) and
 * tar: not by the command's code.
 */
function fileInImage(image: string, path: string): string {
  const r = spawnSync(
    'bash',
    ['-o', 'pipefail', '-c', `"${CRANE}" --insecure export "${image}" - | tar -xO "${path.replace(/^\//, '')}"`],
    { maxBuffer: 256 * 2 ** 20 },
  );
  if (r.status !== 0) throw new Error(`crane export ${image} | tar ${path} failed: ${r.stderr.toString()}`);
  return sha256(r.stdout);
}

/**
 * Every live descendant of `pid`, with its executable's target and the sha256 of its bytes (read
 * through /proc/<pid>/exe).
 */
function descendants(pid: number): { pid: number; exe: string; sha256: string }[] {
  const parent = new Map<number, number>();
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      // The field after the command's name (which may hold spaces) in parentheses.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      parent.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // Gone meanwhile.
    }
  }
  const under = (p: number): boolean => p > 1 && (parent.get(p) === pid || under(parent.get(p) ?? 0));
  return [...parent.keys()].filter(under).flatMap((p) => {
    try {
      return [{ pid: p, exe: readlinkSync(`/proc/${p}/exe`), sha256: sha256(readFileSync(`/proc/${p}/exe`)) }];
    } catch {
      return [];
    }
  });
}

/** The TCP ports `pids` listen on, by `ss` (iproute2). */
function listeningPorts(pids: readonly number[]): number[] {
  const out = spawnSync('ss', ['-Hltnp'], { encoding: 'utf8' }).stdout;
  return out
    .split('\n')
    .filter((l) => pids.some((p) => l.includes(`pid=${p},`)))
    .map((l) => Number(/:(\d+)\s/.exec(l.split(/\s+/)[3] + ' ')?.[1]));
}

const portFree = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });

let expected: { sandstore: string; etcd: string };
let scratch: string;

beforeAll(async () => {
  const images = spawnSync('bash', [join(root, 'scripts', 'local-cluster', 'images.sh'), 'ensure'], {
    encoding: 'utf8',
  });
  if (images.status !== 0) throw new Error(`images.sh ensure failed: ${images.stderr}`);
  expected = {
    sandstore: fileInImage('localhost:5000/sandstore-node:local-node-latest', '/usr/local/bin/sandstore'),
    etcd: fileInImage('localhost:5000/etcd:v3.5.9', '/usr/local/bin/etcd'),
  };
  await buildDriver({ source: sandstoreSource() });
}, 900_000);
beforeEach(() => {
  scratch = mkdtempSync(join(tmpdir(), 'baseline-tmp-'));
});
afterEach(() => rmSync(scratch, { recursive: true, force: true }));
afterAll(() => rmSync(results, { recursive: true, force: true }));

/** What ran under the command while it measured, seen once the driver has started. */
interface Observed {
  processes: { pid: number; exe: string; sha256: string }[];
  ports: number[];
}

/**
 * Runs the baseline; when the driver's first phase is measuring, looks at the command's
 * descendants; `then` may act on the command.
 */
async function runBaseline(args: readonly string[], then?: (child: ChildProcess) => void) {
  const observed: Observed = { processes: [], ports: [] };
  let seen = false;
  const r = await runCli(
    [
      'benchmark',
      `--profile=${PROFILE}`,
      '--baseline=processes',
      `--source=${sandstoreSource()}`,
      `--results-dir=${results}`,
      '--timeout=120',
      ...args,
    ],
    {
      // The data folder goes where the test can see that it is gone.
      env: { TMPDIR: scratch },
      onStdout: (text, child) => {
        if (seen || !/ 1\/\d measure/.test(text)) return;
        seen = true;
        // The driver is a descendant too: it is no Sand Store.
        observed.processes = descendants(child.pid!).filter((p) => !p.exe.endsWith('sandstore-bench'));
        observed.ports = listeningPorts(observed.processes.map((p) => p.pid));
        then?.(child);
      },
    },
  );
  return { r, observed };
}

async function expectNothingLeft(observed: Observed): Promise<void> {
  expect(observed.processes.filter((p) => existsSync(`/proc/${p.pid}`))).toEqual([]);
  expect(await Promise.all(observed.ports.map(async (port) => [port, await portFree(port)]))).toEqual(
    observed.ports.map((port) => [port, true]),
  );
  expect(readdirSync(scratch).filter((f) => f.startsWith('sandstore-baseline-'))).toEqual([]);
}

test("the baseline runs etcd and three nodes from the images' own binaries, measures them, and leaves nothing behind", async () => {
  const { r, observed } = await runBaseline(['--duration=2', '--warmup=1', '--concurrency=2']);
  expectExit(r, 0);
  // Seen in /proc while they ran: three Sand Store nodes and one etcd, each the very file inside its image.
  const bySha = (sha: string) => observed.processes.filter((p) => p.sha256 === sha);
  expect({
    sandstore: bySha(expected.sandstore).length,
    etcd: bySha(expected.etcd).length,
    all: observed.processes.length,
  }).toEqual({ sandstore: 3, etcd: 1, all: 4 });
  // Each listened: the nodes' gRPC ports and etcd's client, peer and metrics ports (one node's
  // metrics, :2112, may be there too).
  expect(observed.ports.length).toBeGreaterThanOrEqual(3 + 3);
  await expectNothingLeft(observed);
  const [dir] = runDirs();
  checkCsvAndHistograms(dir, 2);
  const record = readRecord(dir);
  expect(record.status).toBe('valid');
  expect(record.target?.kind).toBe('processes');
  expect(record.target?.binaries.map((b) => [b.program, b.pathInImage, b.sha256])).toEqual([
    ['sandstore', '/usr/local/bin/sandstore', expected.sandstore],
    ['etcd', '/usr/local/bin/etcd', expected.etcd],
  ]);
  expect(record.target?.processes.map((p) => [p.name, p.exeSha256])).toEqual([
    ['etcd-0', expected.etcd],
    ['sandstore-0', expected.sandstore],
    ['sandstore-1', expected.sandstore],
    ['sandstore-2', expected.sandstore],
  ]);
  expect(record.target?.processes.map((p) => p.pid).sort()).toEqual(observed.processes.map((p) => p.pid).sort());
  expect(record.target?.leftovers).toEqual([]);
  // The leader first, as on a cluster: the seeds begin with the leader's address.
  const leader = record.target?.processes.find((p) => p.name === record.leadership.before.leader);
  expect(record.driver.options.seeds[0]).toBe(leader?.address);
});

test('Ctrl-C during the baseline keeps what was measured, marks it interrupted, exits 130 and leaves nothing behind', async () => {
  const before = runDirs().length;
  const { r, observed } = await runBaseline(['--duration=20', '--warmup=0', '--ops=stat,listdir'], (child) =>
    setTimeout(() => child.kill('SIGINT'), 1500),
  );
  expectExit(r, 130);
  expect(observed.processes).toHaveLength(4);
  await expectNothingLeft(observed);
  const dir = runDirs()[before];
  expect(readRecord(dir).status).toBe('interrupted');
  const summary = DriverSummary.parse(JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')));
  expect(summary.phases.map((p) => [p.operation, p.complete])).toEqual([['stat', false]]);
  expect(summary.phases[0].ok_ops).toBeGreaterThan(0);
});
