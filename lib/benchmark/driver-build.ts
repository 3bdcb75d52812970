import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { FailedError, RefusedError } from '../errors.js';
import { findOnPath, isExecutableFile } from '../executables.js';
import { lineSplitter } from '../lines.js';
import { projectRoot } from '../paths.js';

/**
 * Building the project's load driver (drivers/sandstore-bench) from a Sand Store checkout.
 *
 * The driver uses Sand Store's client library, which needs a communicator from Sand Store's
 * internal packages; Go lets only code inside that module import those. So the driver is compiled
 * as if it were a package of the checkout: `go build -overlay` places its files at
 * clients/sandstore_deploy_bench/ without writing there, and `-modfile` points at a copy of the
 * checkout's go.mod/go.sum, in the cache, that also requires hdrhistogram-go. Nothing is ever
 * written into the checkout.
 *
 * The binary is cached by what it is made of: the checkout's Go sources and module files, the
 * driver's sources, the Go toolchain and the histogram library's version. A cache entry appears
 * complete or not at all (built in a temporary directory beside it, then renamed).
 */

export const SANDSTORE_MODULE = 'github.com/AnishMulay/sandstore';
export const HDRHISTOGRAM_MODULE = 'github.com/HdrHistogram/hdrhistogram-go';
export const HDRHISTOGRAM_VERSION = 'v1.4.0';
/** Where in the checkout the driver's files appear to the go command (virtually). */
const VIRTUAL_PACKAGE = join('clients', 'sandstore_deploy_bench');
/** An existing directory without Go files, for `go vet`, which changes into the package's directory. */
const VET_PACKAGE = 'clients';
const BINARY_NAME = 'sandstore-bench';
/** Part of the cache key: a change to how the binary is built must not reuse an old build. */
const BUILD_RECIPE = 'CGO_ENABLED=0 -trimpath -buildvcs=false -overlay -modfile, recipe 1';
/** A build that talks to the module proxy for longer than this is given up. */
const GO_TIMEOUT_MS = 20 * 60_000;
/** Compiler output kept in an error's details. */
const MAX_DETAIL_LINES = 30;

export interface DriverBuild {
  /** The driver binary, in the cache. */
  path: string;
  /** sha256:<hex> of the binary. */
  binaryDigest: string;
  /** sha256:<hex> over the checkout's *.go, go.mod and go.sum files (relative path and content, in path order). */
  contentDigest: string;
  /** `git rev-parse HEAD` of the checkout when it is a git work tree without changes; else undefined. */
  revision?: string;
}

export interface DriverBuildOptions {
  /** The Sand Store checkout (read only). */
  source: string;
  /** Progress lines (what is being built, the go command's own lines). */
  log?: (line: string) => void;
  /** Replaces $XDG_CACHE_HOME (or ~/.cache) as the root of sandstore-deploy/driver/. */
  cacheRoot?: string;
}

/** Builds the driver from `source`, or returns the cached build of the same inputs. */
export async function buildDriver(opts: DriverBuildOptions): Promise<DriverBuild> {
  const log = opts.log ?? (() => undefined);
  const source = checkoutOf(opts.source);
  const go = findOnPath('go', process.env.PATH);
  if (go === undefined) {
    throw new RefusedError(
      'cannot build the load driver: `go` is not on PATH; install Go 1.24 or newer ' +
        "(https://go.dev/doc/install, or your distribution's golang package) and run again",
    );
  }
  const contentDigest = digestCheckout(source);
  const driver = driverSources();
  const goVersion = await toolchainVersion(go, source);
  const dir = join(driverCacheRoot(opts.cacheRoot), cacheKey(contentDigest, driver, goVersion));
  const binary = join(dir, BINARY_NAME);
  if (isExecutableFile(binary)) {
    log(`driver: ${binary} (cached build for this checkout)`);
  } else {
    log(
      `driver: building ${BINARY_NAME} from ${source} with ${goVersion} (a first build ` +
        `fetches modules through the Go module proxy and can take minutes)`,
    );
    await build(go, source, driver, dir, log);
    log(`driver: built ${binary}`);
  }
  return { path: binary, binaryDigest: sha256File(binary), contentDigest, revision: await cleanRevision(source) };
}

/** `go version` as run in the checkout (where a go.mod's toolchain line would apply). */
async function toolchainVersion(go: string, source: string): Promise<string> {
  const result = await runGo(go, ['version'], source, goEnv(source, ''));
  if (result.exitCode !== 0 || result.stdout.trim() === '') {
    throw new FailedError(`cannot build the load driver: \`go version\` failed in ${source} (${describe(result)})`, [
      ...relevantLines(result.stderr),
      `Check that ${go} is a working Go installation (Go 1.24 or newer).`,
    ]);
  }
  return result.stdout.trim();
}

/** The checkout's real path; refused unless its go.mod declares Sand Store's module. */
function checkoutOf(source: string): string {
  const accepted =
    `give the path of a Sand Store checkout (a directory whose go.mod declares module ` + `${SANDSTORE_MODULE})`;
  if (!existsSync(source) || !statSync(source).isDirectory()) {
    throw new RefusedError(`cannot build the load driver: ${source} is not a directory; ${accepted}`);
  }
  const real = realpathSync(source);
  const goMod = join(real, 'go.mod');
  if (!existsSync(goMod)) throw new RefusedError(`cannot build the load driver: ${source} has no go.mod; ${accepted}`);
  const module = /^module\s+"?([^\s"]+)"?/m.exec(readFileSync(goMod, 'utf8'))?.[1];
  if (module !== SANDSTORE_MODULE) {
    throw new RefusedError(
      `cannot build the load driver: ${source} is not a Sand Store checkout (its go.mod ` +
        `declares module ${module ?? 'nothing'}); ${accepted}`,
    );
  }
  return real;
}

/** `${root}/sandstore-deploy/driver`, root being cacheRoot, else $XDG_CACHE_HOME, else ~/.cache. */
export function driverCacheRoot(cacheRoot?: string): string {
  const xdg = process.env.XDG_CACHE_HOME;
  const root = cacheRoot ?? (xdg !== undefined && xdg !== '' ? xdg : join(homedir(), '.cache'));
  return join(root, 'sandstore-deploy', 'driver');
}

function sha256File(path: string): string {
  return `sha256:${createHash('sha256').update(readFileSync(path)).digest('hex')}`;
}

/** A file whose content goes into a digest: its path relative to a root (with /), and its bytes. */
interface SourceFile {
  readonly relativePath: string;
  readonly content: Buffer;
}

function digestFiles(files: readonly SourceFile[]): string {
  const hash = createHash('sha256');
  for (const file of [...files].sort((a, b) =>
    a.relativePath < b.relativePath ? -1 : a.relativePath > b.relativePath ? 1 : 0,
  )) {
    hash.update(`${file.relativePath}\0${file.content.length}\0`).update(file.content);
  }
  return `sha256:${hash.digest('hex')}`;
}

/** sha256 over the checkout's Go sources and module files: what the driver is built from. */
export function digestCheckout(source: string): string {
  return digestFiles(checkoutFiles(source, source));
}

/** *.go, go.mod and go.sum under dir; .git and vendor (never used: builds run with -mod=readonly) skipped. */
function checkoutFiles(root: string, dir: string): SourceFile[] {
  const files: SourceFile[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== '.git' && entry.name !== 'vendor') files.push(...checkoutFiles(root, path));
    } else if ((entry.isFile() || entry.isSymbolicLink()) && /(\.go|^go\.mod|^go\.sum)$/.test(entry.name)) {
      files.push({ relativePath: relative(root, path).split(sep).join('/'), content: readFileSync(path) });
    }
  }
  return files;
}

/**
 * The driver's sources, read once: the same bytes go into the cache key and into the copies the
 * binary is compiled from, so that an edit during a build cannot end up under the wrong key.
 */
interface DriverSources {
  readonly dir: string;
  /** Every file of drivers/sandstore-bench (all go into the cache key). */
  readonly files: readonly SourceFile[];
  /** The files the binary is compiled from (*.go without tests). */
  readonly goFiles: readonly SourceFile[];
}

function driverSources(): DriverSources {
  const dir = join(projectRoot(), 'drivers', 'sandstore-bench');
  const names = existsSync(dir)
    ? readdirSync(dir, { withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => e.name)
        .sort()
    : [];
  const files = names.map((name) => ({ relativePath: name, content: readFileSync(join(dir, name)) }));
  const goFiles = files.filter((f) => f.relativePath.endsWith('.go') && !f.relativePath.endsWith('_test.go'));
  if (goFiles.length === 0)
    throw new FailedError(
      `cannot build the load driver: ${dir} holds no Go files; the project's tree is ` +
        `incomplete (restore drivers/sandstore-bench from git)`,
    );
  return { dir, files, goFiles };
}

/** The first 16 hex digits of sha256 over everything the binary is made of. */
function cacheKey(contentDigest: string, driver: DriverSources, goVersion: string): string {
  const inputs = [
    `checkout ${contentDigest}`,
    `driver ${digestFiles(driver.files)}`,
    `go ${goVersion}`,
    `${HDRHISTOGRAM_MODULE} ${HDRHISTOGRAM_VERSION}`,
    BUILD_RECIPE,
  ];
  return createHash('sha256').update(inputs.join('\n')).digest('hex').slice(0, 16);
}

/**
 * The go command's environment: the user's, with what would change the build pinned. GOFLAGS is
 * set whole (a user's -mod=vendor or -tags must not reach this build); GOWORK=off keeps a go.work
 * above the checkout out of it; PWD is the checkout, so that the go command sees the same path as
 * the overlay's keys.
 */
function goEnv(source: string, goflags: string): NodeJS.ProcessEnv {
  return { ...process.env, CGO_ENABLED: '0', GOFLAGS: goflags, GOWORK: 'off', PWD: source };
}

/** An -overlay file placing the driver's sources (copies under srcDir) at packageDir in the checkout. */
function overlayFile(source: string, driver: DriverSources, packageDir: string, srcDir: string): string {
  const replace: Record<string, string> = {};
  for (const file of driver.goFiles)
    replace[join(source, packageDir, file.relativePath)] = join(srcDir, file.relativePath);
  return `${JSON.stringify({ Replace: replace }, null, 2)}\n`;
}

/**
 * Builds into a temporary directory beside the cache entry, then renames it into place. The entry
 * keeps what the binary was built from: src/ (the driver's sources), go.mod and go.sum, and
 * overlay.json and vet-overlay.json pointing at src/, for `go vet` (see
 * drivers/sandstore-bench/main.go) or a rebuild by hand.
 */
async function build(
  go: string,
  source: string,
  driver: DriverSources,
  dir: string,
  log: (line: string) => void,
): Promise<void> {
  const parent = dirname(dir);
  mkdirSync(parent, { recursive: true });
  const work = mkdtempSync(join(parent, '.build-'));
  try {
    chmodSync(work, 0o755);
    mkdirSync(join(work, 'src'));
    for (const file of driver.goFiles)
      writeFileSync(join(work, 'src', file.relativePath), file.content, { mode: 0o644 });
    prepareModFile(source, work);
    writeFileSync(join(work, 'overlay.json'), overlayFile(source, driver, VIRTUAL_PACKAGE, join(work, 'src')));
    await addHistogramModule(go, source, work, log);
    await compile(go, source, work, log);
    // The overlays kept in the entry name its final place.
    writeFileSync(join(work, 'overlay.json'), overlayFile(source, driver, VIRTUAL_PACKAGE, join(dir, 'src')));
    writeFileSync(join(work, 'vet-overlay.json'), overlayFile(source, driver, VET_PACKAGE, join(dir, 'src')));
    publish(work, dir);
  } catch (error) {
    rmSync(work, { recursive: true, force: true });
    throw error;
  }
}

/** Copies of the checkout's go.mod and go.sum, writable (a read-only checkout's copies are not). */
function prepareModFile(source: string, work: string): void {
  copyFileSync(join(source, 'go.mod'), join(work, 'go.mod'));
  chmodSync(join(work, 'go.mod'), 0o644);
  if (existsSync(join(source, 'go.sum'))) copyFileSync(join(source, 'go.sum'), join(work, 'go.sum'));
  else writeFileSync(join(work, 'go.sum'), '');
  chmodSync(join(work, 'go.sum'), 0o644);
}

async function addHistogramModule(
  go: string,
  source: string,
  work: string,
  log: (line: string) => void,
): Promise<void> {
  const module = `${HDRHISTOGRAM_MODULE}@${HDRHISTOGRAM_VERSION}`;
  const modfile = `-modfile=${join(work, 'go.mod')}`;
  for (const args of [
    ['mod', 'edit', modfile, `-require=${module}`],
    ['get', modfile, module],
  ]) {
    const result = await runGo(go, args, source, goEnv(source, ''), log);
    if (result.exitCode !== 0) {
      throw new FailedError(
        `the driver did not build from ${source}: \`go ${args[0]} ${args[1]}\` could not add ` +
          `${module} (${describe(result)})`,
        [
          ...relevantLines(result.stderr),
          `The first build fetches ${HDRHISTOGRAM_MODULE} through the Go module proxy ` +
            `(GOPROXY=${process.env.GOPROXY ?? 'the default'}); check that it is reachable, then run again.`,
        ],
      );
    }
  }
}

async function compile(go: string, source: string, work: string, log: (line: string) => void): Promise<void> {
  const args = [
    'build',
    '-trimpath',
    '-buildvcs=false',
    `-overlay=${join(work, 'overlay.json')}`,
    `-modfile=${join(work, 'go.mod')}`,
    '-o',
    join(work, BINARY_NAME),
    `./${VIRTUAL_PACKAGE.split(sep).join('/')}`,
  ];
  log(`driver: go ${args.join(' ')}  (in ${source}, CGO_ENABLED=0 GOFLAGS=-mod=readonly GOWORK=off)`);
  const result = await runGo(go, args, source, goEnv(source, '-mod=readonly'), log);
  if (result.exitCode === 0) return;
  // The driver's files were compiled from copies in the (now discarded) build directory; named as
  // the project's files instead.
  const lines = relevantLines(result.stderr).map((line) =>
    line.replace(/\S*\.build-[A-Za-z0-9]+\/src\//g, 'drivers/sandstore-bench/'),
  );
  const inDriver = lines.some(
    (line) => line.includes('sandstore_deploy_bench') || line.includes('drivers/sandstore-bench/'),
  );
  throw new FailedError(`the driver did not build from ${source}: go build failed (${describe(result)})`, [
    ...lines,
    inDriver
      ? 'The errors are in the driver (drivers/sandstore-bench, compiled as ' +
        "clients/sandstore_deploy_bench): it does not fit this checkout's client library; use " +
        'a checkout it fits, or adapt the driver.'
      : 'The errors are in the checkout itself: fix it (it must pass `go build ./...`) or give another checkout.',
  ]);
}

/** Moves the finished build into place; a concurrent build that got there first wins. */
function publish(work: string, dir: string): void {
  try {
    renameSync(work, dir);
  } catch (error) {
    if (!isExecutableFile(join(dir, BINARY_NAME))) throw error;
    rmSync(work, { recursive: true, force: true });
  }
}

/** The go command's own words, without module download chatter, at most MAX_DETAIL_LINES of them. */
function relevantLines(stderr: string): string[] {
  const lines = stderr
    .split('\n')
    .map((line) => line.trimEnd())
    .filter((line) => line !== '' && !/^go: (downloading|finding|extracting) /.test(line));
  if (lines.length <= MAX_DETAIL_LINES) return lines;
  return [...lines.slice(0, MAX_DETAIL_LINES), `… ${lines.length - MAX_DETAIL_LINES} more lines`];
}

/** The checkout's commit when it is the top of a git work tree with no changes. */
async function cleanRevision(source: string): Promise<string | undefined> {
  const git = findOnPath('git', process.env.PATH);
  if (git === undefined) return undefined;
  // --no-optional-locks: `git status` must not refresh the checkout's index (nothing is written there).
  const env = { ...process.env, GIT_OPTIONAL_LOCKS: '0' };
  const top = await run(git, ['-C', source, 'rev-parse', '--show-toplevel'], source, env);
  if (top.exitCode !== 0 || realpathOrSelf(top.stdout.trim()) !== source) return undefined;
  const status = await run(git, ['-C', source, '--no-optional-locks', 'status', '--porcelain'], source, env);
  if (status.exitCode !== 0 || status.stdout.trim() !== '') return undefined;
  const head = await run(git, ['-C', source, 'rev-parse', 'HEAD'], source, env);
  return head.exitCode === 0 && /^[0-9a-f]{40,64}$/.test(head.stdout.trim()) ? head.stdout.trim() : undefined;
}

function realpathOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

interface Ran {
  readonly exitCode: number | null;
  readonly timedOut: boolean;
  readonly stdout: string;
  readonly stderr: string;
}

function describe(result: Ran): string {
  if (result.timedOut) return `gave up after ${GO_TIMEOUT_MS / 60_000} minutes`;
  return result.exitCode === null ? 'killed by a signal' : `exit code ${result.exitCode}`;
}

function runGo(
  go: string,
  args: readonly string[],
  source: string,
  env: NodeJS.ProcessEnv,
  log?: (line: string) => void,
): Promise<Ran> {
  return run(go, args, source, env, log, GO_TIMEOUT_MS);
}

/** Runs a command to its end, collecting its output; stderr lines are also passed to `log`. */
function run(
  command: string,
  args: readonly string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
  log?: (line: string) => void,
  timeoutMs?: number,
): Promise<Ran> {
  return new Promise((resolvePromise) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
          }, timeoutMs);
    const errLines = lineSplitter((line) => log?.(`  ${line}`));
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      errLines.push(chunk);
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      resolvePromise({ exitCode: null, timedOut, stdout, stderr: `${stderr}${command}: ${error.message}\n` });
    });
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      errLines.end();
      resolvePromise({ exitCode, timedOut, stdout, stderr });
    });
  });
}
