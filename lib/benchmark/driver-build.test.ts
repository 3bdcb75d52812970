import { spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { FailedError, RefusedError } from '../errors.js';
import { buildDriver, digestCheckout, type DriverBuild } from './driver-build.js';

/**
 * The driver's build, for real: compiled from the Sand Store checkout (SANDSTORE_SOURCE, else
 * /work/shared/sandstore) into the user's cache, so that a second run of these tests is a cache
 * hit. Then the binary itself: its refusals and its pre-flight against an address where nothing
 * listens. Measuring needs a live Sand Store and is not done here.
 */

const source = process.env.SANDSTORE_SOURCE ?? '/work/shared/sandstore';
/** A cold build fetches Sand Store's modules and compiles gRPC: minutes on two cores. */
const BUILD_TIMEOUT_MS = 15 * 60_000;

let work: string;
let built: DriverBuild;
let sourceBefore: string[];

/** Every entry under dir with its kind, size and modification time: a write anywhere changes it. */
function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      const stat = statSync(path, { throwIfNoEntry: false });
      out.push(
        `${relative(dir, path)} ${entry.isDirectory() ? 'dir' : 'file'} ${stat?.size ?? '-'} ` +
          `${stat?.mtimeMs ?? '-'}`,
      );
      if (entry.isDirectory()) walk(path);
    }
  };
  walk(dir);
  return out.sort();
}

function runDriver(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(built.path, args, {
    encoding: 'utf8',
    timeout: 60_000,
    env: { PATH: process.env.PATH, TMPDIR: work, ...env },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sandstore-driver-build-'));
  sourceBefore = listing(source);
  built = await buildDriver({ source });
}, BUILD_TIMEOUT_MS);

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

describe('buildDriver against the real checkout', () => {
  test('builds an executable with sha256 digests of the binary and the checkout', () => {
    expect(statSync(built.path).mode & 0o111).not.toBe(0);
    expect(built.path).toMatch(/sandstore-deploy\/driver\/[0-9a-f]{16}\/sandstore-bench$/);
    expect(built.binaryDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(built.contentDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(built.contentDigest).toBe(digestCheckout(source));
    // The build's inputs are kept beside the binary (for go vet, or a rebuild by hand).
    for (const name of ['go.mod', 'go.sum', 'overlay.json', 'vet-overlay.json'])
      expect(existsSync(join(dirname(built.path), name))).toBe(true);
    expect(readFileSync(join(dirname(built.path), 'go.mod'), 'utf8')).toContain(
      'github.com/HdrHistogram/hdrhistogram-go v1.4.0',
    );
  });

  test('a second call is a cache hit: same path and digests, at once', async () => {
    const lines: string[] = [];
    const started = Date.now();
    const again = await buildDriver({ source, log: (line) => lines.push(line) });
    expect(again).toEqual(built);
    expect(lines.join('\n')).toContain('cached build');
    expect(lines.join('\n')).not.toContain('go build');
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  test('nothing is written into the checkout', () => {
    expect(listing(source)).toEqual(sourceBefore);
    expect(existsSync(join(source, 'clients', 'sandstore_deploy_bench'))).toBe(false);
    expect(existsSync(join(source, 'run'))).toBe(false);
  });

  test(
    'go vet passes on the driver, through the same modfile (and an overlay into an existing directory)',
    () => {
      const cache = dirname(built.path);
      const result = spawnSync(
        'go',
        ['vet', `-overlay=${join(cache, 'vet-overlay.json')}`, `-modfile=${join(cache, 'go.mod')}`, './clients'],
        {
          cwd: source,
          encoding: 'utf8',
          env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=readonly', GOWORK: 'off' },
        },
      );
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
    },
    BUILD_TIMEOUT_MS,
  );
});

describe('buildDriver refuses what it cannot build from', () => {
  test('a path that does not exist', async () => {
    const missing = join(tmpdir(), 'no-such-sandstore-checkout');
    const error = await buildDriver({ source: missing, cacheRoot: work }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RefusedError);
    expect((error as RefusedError).message).toContain(`${missing} is not a directory`);
    expect((error as RefusedError).message).toContain('go.mod declares module github.com/AnishMulay/sandstore');
  });

  test('a Go module that is not Sand Store', async () => {
    const other = join(work, 'other-module');
    mkdirSync(other, { recursive: true });
    writeFileSync(join(other, 'go.mod'), 'module example.com/other\n\ngo 1.24\n');
    const error = await buildDriver({ source: other, cacheRoot: work }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RefusedError);
    expect((error as RefusedError).message).toContain(
      'is not a Sand Store checkout (its go.mod declares module example.com/other)',
    );
  });

  test('no go on PATH', async () => {
    const path = process.env.PATH;
    process.env.PATH = join(work, 'empty-bin');
    try {
      const error = await buildDriver({ source, cacheRoot: work }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RefusedError);
      expect((error as RefusedError).message).toMatch(/`go` is not on PATH; install Go/);
    } finally {
      process.env.PATH = path;
    }
  });

  test(
    "a checkout that does not compile: the compiler's words, no half binary left",
    async () => {
      const broken = join(work, 'broken-sandstore');
      cpSync(source, broken, { recursive: true, filter: (path) => !path.split('/').includes('.git') });
      spawnSync('chmod', ['-R', 'u+w', broken]); // the copy keeps a read-only checkout's modes
      const file = join(broken, 'clients', 'library', 'client.go');
      writeFileSync(
        file,
        readFileSync(file, 'utf8').replace('func NewSandstoreClient(', 'func NewSandstoreClient(((('),
        { mode: 0o644 },
      );
      const cacheRoot = join(work, 'broken-cache');
      const error = await buildDriver({ source: broken, cacheRoot }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(FailedError);
      const failed = error as FailedError;
      expect(failed.message).toContain(`the driver did not build from ${broken}`);
      expect(failed.details.join('\n')).toMatch(/clients\/library\/client\.go:\d+:\d+: syntax error/);
      expect(failed.details.join('\n')).not.toMatch(/goroutine|\n\s+at /);
      const driverCache = join(cacheRoot, 'sandstore-deploy', 'driver');
      expect(readdirSync(driverCache)).toEqual([]);
    },
    BUILD_TIMEOUT_MS,
  );
});

describe('the driver binary', () => {
  test.each([
    [['--out', 'x'], 'missing --seeds: expected host:port,...'],
    [['--seeds', 'nohost', '--out', 'x'], 'invalid --seeds "nohost": expected a comma-separated list of host:port'],
    [
      ['--seeds', 'h:1', '--out', 'x', '--duration', '0'],
      'invalid --duration "0": expected seconds, a number > 0 and <= 86400',
    ],
    [['--seeds', 'h:1', '--out', 'x', '--duration', '86401'], 'invalid --duration "86401"'],
    [['--seeds', 'h:1', '--out', 'x', '--warmup', '-1'], 'invalid --warmup "-1": expected seconds, a number >= 0'],
    [
      ['--seeds', 'h:1', '--out', 'x', '--concurrency', '1025'],
      'invalid --concurrency "1025": expected a whole number of workers from 1 to 1024',
    ],
    [
      ['--seeds', 'h:1', '--out', 'x', '--block-size', '0'],
      'invalid --block-size "0": expected a whole number of bytes from 1 to 67108864',
    ],
    [
      ['--seeds', 'h:1', '--out', 'x', '--ops', 'write,write'],
      'invalid --ops "write,write": expected a comma list of distinct operations',
    ],
    [['--seeds', 'h:1', '--out', 'x', '--ops', 'write,delete'], 'invalid --ops "write,delete"'],
    [['--seeds', 'h:1'], 'missing --out'],
    [['--seeds', 'h:1', '--out', 'x', '--rate', '5'], 'flag provided but not defined: -rate'],
  ])('refuses %j with exit code 2 and one line', (args, message) => {
    const result = runDriver(args);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(message);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stdout).toBe('');
  });

  test('takes the seeds from SANDSTORE_SEEDS when --seeds is absent, and checks them', () => {
    const result = runDriver(['--out', join(work, 'from-env')], { SANDSTORE_SEEDS: 'bad' });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('invalid --seeds (from SANDSTORE_SEEDS) "bad"');
  });

  test('refuses an output directory that already holds a run', () => {
    const out = join(work, 'used-out');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'summary.json'), '{}');
    const result = runDriver(['--seeds', '127.0.0.1:1', '--out', out]);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('already holds summary.json');
  });

  test('exits 1 with "cannot reach Sand Store" when nothing listens at the seeds', () => {
    const out = join(work, 'unreachable');
    const result = runDriver(['--seeds=127.0.0.1:1', `--out=${out}`]);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^cannot reach Sand Store at 127\.0\.0\.1:1: /m);
    expect(readdirSync(out)).toEqual([]);
  });
});
