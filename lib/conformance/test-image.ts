/**
 * The image `conformance` runs: Sand Store's own cluster tests (`go test -c ./integration/cluster`,
 * static, linux/amd64) and kubectl, which those tests call, in one layer with nothing else (no
 * shell, no base image: nothing is pulled). Built offline as the local cluster's images are
 * (scripts/local-cluster/images.sh): a deterministic tar (sorted, mtime 0, root-owned), so the same
 * inputs give the same digest, and kept in the cache under a key that hashes every input (the
 * checkout's Go sources, go.mod and go.sum, the Go version, kubectl, this recipe), so a second run
 * builds nothing. Pushed to the profile's registry over its HTTP API v2, anonymously, as the local
 * cluster's registry on localhost:5000 takes it; the pods pull it by digest.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { cacheDir, registryBase } from '../benchmark/image-binaries.js';
import { FailedError, RefusedError } from '../errors.js';
import { describeExit, run } from '../image/process.js';

/** Bumped when what goes into the image changes in a way the inputs' hashes do not show. */
const RECIPE = 'cluster-tests-image-v1';
export const TEST_IMAGE_REPOSITORY = 'sandstore-cluster-tests';
/** Where the binaries live in the image, and the user the image runs as (images.sh's nonroot). */
export const TEST_BINARY = '/usr/local/bin/cluster-tests';
const KUBECTL = '/usr/local/bin/kubectl';
export const NONROOT = 65532;
const PLATFORM = { os: 'linux', architecture: 'amd64' } as const;
/** The package upstream's Dockerfile builds its test-runner from (`go test -c ./integration/cluster`). */
export const TESTS_PACKAGE = 'integration/cluster';
const SANDSTORE_MODULE = 'github.com/AnishMulay/sandstore';

const MEDIA = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/**
 * The checkout, resolved, when it is Sand Store's and holds its cluster tests; refused otherwise
 * (before anything is built or sent).
 */
export function checkSource(source: string): string {
  const dir = resolve(source);
  const goMod = join(dir, 'go.mod');
  const accepted = `a Sand Store checkout (go.mod of module ${SANDSTORE_MODULE}) holding ${TESTS_PACKAGE}/*_test.go`;
  if (!existsSync(goMod) || !readFileSync(goMod, 'utf8').split('\n').includes(`module ${SANDSTORE_MODULE}`))
    throw new RefusedError(
      `--source: ${dir} is not Sand Store (no go.mod of module ${SANDSTORE_MODULE}); expected ${accepted}. Nothing was built or sent.`,
    );
  const tests = join(dir, TESTS_PACKAGE);
  const hasTests =
    existsSync(tests) && statSync(tests).isDirectory() && readdirSync(tests).some((f) => f.endsWith('_test.go'));
  if (!hasTests)
    throw new RefusedError(
      `--source: ${dir} has no ${TESTS_PACKAGE} (Sand Store's cluster tests); expected ${accepted}. Nothing was built or sent.`,
    );
  return dir;
}

/** ELF's markers: the x86-64 machine, and the program header that names a dynamic loader. */
const ELF_MAGIC = '7f454c46';
const EM_X86_64 = 62;
const PT_INTERP = 3;

/** Whether `file` is a static linux/amd64 executable (kubectl must run with no libc in the image). */
function isStaticAmd64(file: string): boolean {
  const elf = readFileSync(file);
  if (elf.length < 64 || elf.subarray(0, 4).toString('hex') !== ELF_MAGIC || elf.readUInt16LE(18) !== EM_X86_64)
    return false;
  const phoff = Number(elf.readBigUInt64LE(32));
  const size = elf.readUInt16LE(54);
  const count = elf.readUInt16LE(56);
  for (let i = 0; i < count; i++) if (elf.readUInt32LE(phoff + i * size) === PT_INTERP) return false;
  return true;
}

/** The kubectl the image carries, refused unless it is a static linux/amd64 executable. */
export function checkKubectl(path: string): string {
  const file = resolve(path);
  const accepted = 'a static linux/amd64 kubectl (scripts/local-cluster/build.sh builds one)';
  if (!existsSync(file) || !statSync(file).isFile())
    throw new RefusedError(`--kubectl: ${file} does not exist; expected ${accepted}. Nothing was built or sent.`);
  if (!isStaticAmd64(file))
    throw new RefusedError(
      `--kubectl: ${file} is not a static linux/amd64 executable; expected ${accepted}. Nothing was built or sent.`,
    );
  return file;
}

/** Every Go source, go.mod and go.sum of the checkout (no .git), as sorted "path sha256" lines. */
function sourceLines(dir: string): string[] {
  const files = readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && /\.go$|^go\.(mod|sum)$/.test(e.name))
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .filter((p) => !p.split('/').includes('.git'))
    .sort();
  return files.map((p) => `${p} ${sha256(readFileSync(join(dir, p)))}`);
}

async function goVersion(): Promise<string> {
  const r = await run('go', ['env', 'GOVERSION'], process.env);
  if (r.exitCode !== 0)
    throw new FailedError(
      `cannot run \`go env GOVERSION\` (${describeExit(r.exitCode)}): Go builds the cluster tests; install Go or put it on PATH`,
    );
  return r.stdout.trim();
}

/** `go test -c ./integration/cluster`, static, for linux/amd64, written to `out`. */
async function buildTestBinary(source: string, out: string, log: (line: string) => void): Promise<void> {
  const started = Date.now();
  log(`conformance: go test -c ./${TESTS_PACKAGE} in ${source} (CGO off, linux/amd64)`);
  const env = {
    ...process.env,
    CGO_ENABLED: '0',
    GOOS: PLATFORM.os,
    GOARCH: PLATFORM.architecture,
    GOFLAGS: '-mod=readonly -buildvcs=false',
  };
  const r = await run('go', ['-C', source, 'test', '-c', '-trimpath', '-o', out, `./${TESTS_PACKAGE}`], env, (line) =>
    log(`  ${line}`),
  );
  if (r.exitCode !== 0)
    throw new FailedError(
      `go test -c ./${TESTS_PACKAGE} failed (${describeExit(r.exitCode)})${r.lastStderrLine ? `: ${r.lastStderrLine}` : ''}; nothing was written to the cluster`,
    );
  log(`conformance: built the cluster tests in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

/** A deterministic tar of the image's one layer: sorted, root-owned, mtime 0. */
async function layerTar(testBinary: string, kubectl: string): Promise<Buffer> {
  const tar = pack();
  const chunks: Buffer[] = [];
  tar.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((ok, fail) => {
    tar.on('end', ok);
    tar.on('error', fail);
  });
  const base = { uid: 0, gid: 0, uname: '', gname: '', mtime: new Date(0) };
  const dir = (name: string, mode = 0o755) => tar.entry({ ...base, name, type: 'directory', mode });
  const file = (name: string, data: Buffer, mode = 0o644) => tar.entry({ ...base, name, type: 'file', mode }, data);
  dir('etc/');
  file('etc/group', Buffer.from(`root:x:0:\nnonroot:x:${NONROOT}:\n`));
  file(
    'etc/passwd',
    Buffer.from(`root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:${NONROOT}:${NONROOT}:nonroot:/tmp:/sbin/nologin\n`),
  );
  dir('tmp/', 0o1777);
  dir('usr/');
  dir('usr/local/');
  dir('usr/local/bin/');
  file(TEST_BINARY.slice(1), readFileSync(testBinary), 0o755);
  file(KUBECTL.slice(1), readFileSync(kubectl), 0o755);
  tar.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** An image as the registry stores it: its blobs by digest, and its manifest. */
export interface OciImage {
  readonly blobs: ReadonlyMap<string, Buffer>;
  readonly manifest: Buffer;
  readonly digest: string;
}

function ociImage(tar: Buffer): OciImage {
  const layer = gzipSync(tar);
  const config = Buffer.from(
    JSON.stringify({
      ...PLATFORM,
      config: {
        User: `${NONROOT}:${NONROOT}`,
        // kubectl keeps its discovery cache under $HOME; the tests' t.TempDir is under TMPDIR.
        Env: ['PATH=/usr/local/bin', 'HOME=/tmp', 'TMPDIR=/tmp'],
        Entrypoint: [TEST_BINARY],
        WorkingDir: '/tmp',
      },
      rootfs: { type: 'layers', diff_ids: [`sha256:${sha256(tar)}`] },
    }),
  );
  const descriptor = (mediaType: string, data: Buffer) => ({
    mediaType,
    digest: `sha256:${sha256(data)}`,
    size: data.length,
  });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.manifest,
      config: descriptor(MEDIA.config, config),
      layers: [descriptor(MEDIA.layer, layer)],
    }),
  );
  return {
    blobs: new Map([
      [`sha256:${sha256(config)}`, config],
      [`sha256:${sha256(layer)}`, layer],
    ]),
    manifest,
    digest: `sha256:${sha256(manifest)}`,
  };
}

/** The cache's copy of an image: blobs/<hex> and manifest.json, complete once `digest` is written. */
function saveImage(dir: string, image: OciImage): void {
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, 'blobs'), { recursive: true });
  for (const [digest, data] of image.blobs) writeFileSync(join(tmp, 'blobs', digest.slice(7)), data);
  writeFileSync(join(tmp, 'manifest.json'), image.manifest);
  writeFileSync(join(tmp, 'digest'), image.digest);
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
}

function loadImage(dir: string): OciImage | undefined {
  if (!existsSync(join(dir, 'digest'))) return undefined;
  const manifest = readFileSync(join(dir, 'manifest.json'));
  const parsed = JSON.parse(manifest.toString('utf8')) as { config: { digest: string }; layers: { digest: string }[] };
  const digests = [parsed.config.digest, ...parsed.layers.map((l) => l.digest)];
  return {
    blobs: new Map(digests.map((d) => [d, readFileSync(join(dir, 'blobs', d.slice(7)))])),
    manifest,
    digest: readFileSync(join(dir, 'digest'), 'utf8').trim(),
  };
}

/** One request to the registry; a refused or failed one ends the command with the registry's words. */
async function registryRequest(
  registry: string,
  method: string,
  url: string,
  init: { body?: Buffer; headers?: Record<string, string> } = {},
): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, { method, headers: init.headers, body: init.body, redirect: 'follow' });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause;
    throw new FailedError(
      `cannot reach the registry ${registry} at ${url}: ${cause?.code ?? (err as Error).message}; nothing was written to the cluster`,
      ["Is the registry up? The local cluster's is started by `bash scripts/local-cluster/images.sh ensure`."],
    );
  }
  if (res.status === 401)
    throw new FailedError(
      `the registry ${registry} asks for authentication (${res.headers.get('www-authenticate') ?? 'credentials'}); conformance pushes its test image anonymously, as to the local cluster's registry. Nothing was written to the cluster.`,
    );
  return res;
}

async function expectStatus(res: Response, ok: number[], what: string): Promise<void> {
  if (ok.includes(res.status)) return;
  const body = (await res.text()).slice(0, 200).trim();
  throw new FailedError(
    `${what} failed: the registry answered ${res.status}${body ? ` (${body})` : ''}; nothing was written to the cluster`,
  );
}

/** Pushes the image's blobs (those the registry lacks) and its manifest under `tag`. */
async function pushImage(registry: string, tag: string, image: OciImage): Promise<void> {
  const base = `${registryBase(registry)}/v2/${TEST_IMAGE_REPOSITORY}`;
  const have = await registryRequest(registry, 'HEAD', `${base}/manifests/${image.digest}`, {
    headers: { Accept: MEDIA.manifest },
  });
  if (have.status === 200) return;
  for (const [digest, data] of image.blobs) {
    if ((await registryRequest(registry, 'HEAD', `${base}/blobs/${digest}`)).status === 200) continue;
    const start = await registryRequest(registry, 'POST', `${base}/blobs/uploads/`);
    await expectStatus(start, [202], `starting the upload of ${digest} to ${registry}`);
    const location = new URL(start.headers.get('location') ?? '', `${base}/`);
    location.searchParams.set('digest', digest);
    const put = await registryRequest(registry, 'PUT', location.toString(), {
      body: data,
      headers: { 'Content-Type': 'application/octet-stream' },
    });
    await expectStatus(put, [201], `uploading ${digest} to ${registry}`);
  }
  const put = await registryRequest(registry, 'PUT', `${base}/manifests/${tag}`, {
    body: image.manifest,
    headers: { 'Content-Type': MEDIA.manifest },
  });
  await expectStatus(put, [201], `pushing ${registry}/${TEST_IMAGE_REPOSITORY}:${tag}`);
}

export interface TestImageOptions {
  /** The checkout, as checkSource returned it. */
  readonly source: string;
  /** The kubectl, as checkKubectl returned it. */
  readonly kubectl: string;
  /** The profile's registry (image.registry). */
  readonly registry: string;
  readonly log: (line: string) => void;
}

/** Builds (unless the cache has it) and pushes the test image; returns its reference by digest. */
export async function ensureTestImage(opts: TestImageOptions): Promise<string> {
  const inputs = [
    RECIPE,
    await goVersion(),
    `kubectl ${sha256(readFileSync(opts.kubectl))}`,
    ...sourceLines(opts.source),
  ].join('\n');
  const key = sha256(inputs);
  const dir = join(cacheDir(), 'cluster-tests', key);
  let image = loadImage(dir);
  if (image) {
    opts.log(
      `conformance: test image ${image.digest} from the cache (key ${key.slice(0, 12)}: sources, Go, kubectl unchanged)`,
    );
  } else {
    mkdirSync(join(cacheDir(), 'cluster-tests'), { recursive: true });
    const binary = join(cacheDir(), 'cluster-tests', `${key}.bin-${process.pid}`);
    try {
      await buildTestBinary(opts.source, binary, opts.log);
      image = ociImage(await layerTar(binary, opts.kubectl));
    } finally {
      rmSync(binary, { force: true });
    }
    saveImage(dir, image);
    writeFileSync(join(dir, 'inputs'), inputs);
    opts.log(`conformance: built test image ${image.digest} (key ${key.slice(0, 12)})`);
  }
  await pushImage(opts.registry, key.slice(0, 16), image);
  const ref = `${opts.registry}/${TEST_IMAGE_REPOSITORY}@${image.digest}`;
  opts.log(`conformance: ${ref} is in the registry`);
  return ref;
}
