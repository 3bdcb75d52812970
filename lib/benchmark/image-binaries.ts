/**
 * The programs a profile's image carries, taken out of the image itself: the process baseline runs
 * the very binary the pods run. The image reference is resolved in its registry (the registry's
 * HTTP API v2), the manifest for this machine's platform chosen, and the layers read from the top
 * down until the program's path is found (whiteouts honoured), with tar-stream over node's gunzip.
 * Every document and layer is checked against its digest as it is read. The program lands in a
 * cache keyed by the image manifest's digest, so a second run downloads nothing.
 *
 * Anonymous access only: a registry that answers 401 names what it wants (WWW-Authenticate), and the
 * baseline is refused saying so. The local cluster's registry (localhost:5000) is plain HTTP with no
 * authentication, as are registries on loopback by Docker's own rule; any other host is asked over HTTPS.
 */
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, posix } from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { createGunzip } from 'node:zlib';
import { extract, type Header } from 'tar-stream';
import { FailedError, RefusedError } from '../errors.js';

/** $SANDSTORE_CACHE_DIR, else ~/.cache/sandstore-deploy: the local cluster's cache, shared with its scripts. */
export const cacheDir = () => process.env.SANDSTORE_CACHE_DIR ?? join(homedir(), '.cache', 'sandstore-deploy');

/** An image reference split as the registry API needs it. */
export interface ImageRef {
  readonly text: string;
  readonly registry: string;
  readonly repository: string;
  /** A tag, or a digest (sha256:...). */
  readonly reference: string;
}

/** A program taken out of an image. */
export interface ImageBinary {
  /** The image reference as the manifests name it. */
  readonly image: string;
  /** The digest the reference resolved to (an index's when the registry serves one, as a pod's imageID shows it). */
  readonly imageDigest: string;
  /** The digest of the manifest for this machine's platform: the cache's key. */
  readonly manifestDigest: string;
  readonly platform: string;
  /** Where the program is in the image's file system. */
  readonly pathInImage: string;
  /** The extracted program on this machine. */
  readonly path: string;
  /** sha256 of the program's bytes, hex. */
  readonly sha256: string;
}

const MANIFEST_TYPES = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
} as const;

/** [registry/]path[:tag][@digest], the path's components in Docker's grammar. */
const COMPONENT = '[a-z0-9]+(?:[._-][a-z0-9]+)*';
const IMAGE_REF = new RegExp(
  `^(?:([^/]+)/)?(${COMPONENT}(?:/${COMPONENT})*)(?::(\\w[\\w.-]{0,127}))?(?:@(sha256:[0-9a-f]{64}))?$`,
);

/**
 * Docker's rule: the first component names a registry when it has a dot or a port, or is localhost;
 * else Docker Hub.
 */
export function parseImageRef(text: string): ImageRef {
  const m = IMAGE_REF.exec(text);
  if (!m) {
    throw new RefusedError(
      `image ${JSON.stringify(text)} is not an image reference: expected ` +
        `[registry/]repository[:tag][@sha256:<64 hex>], ` +
        'such as localhost:5000/sandstore-node:local-node-latest. Nothing was started.',
    );
  }
  const [, first, rest, tag, digest] = m;
  const isRegistry = first !== undefined && (first.includes('.') || first.includes(':') || first === 'localhost');
  const registry = isRegistry ? first : 'docker.io';
  const repository = isRegistry ? rest : first ? `${first}/${rest}` : `library/${rest}`;
  return { text, registry, repository, reference: digest ?? tag ?? 'latest' };
}

/** Plain HTTP only to a registry on this machine's loopback, as Docker allows without configuration. */
export function registryBase(registry: string): string {
  const host = registry.replace(/:\d+$/, '');
  const loopback = host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
  return `${loopback ? 'http' : 'https'}://${registry === 'docker.io' ? 'registry-1.docker.io' : registry}`;
}

/** This machine's platform in the OCI's words (GOOS/GOARCH), or what it is when Go has no name for it. */
export function machinePlatform(): { os: string; architecture: string } {
  const arch: Record<string, string> = {
    x64: 'amd64',
    arm64: 'arm64',
    arm: 'arm',
    ia32: '386',
    ppc64: 'ppc64le',
    s390x: 's390x',
    riscv64: 'riscv64',
  };
  return { os: process.platform, architecture: arch[process.arch] ?? process.arch };
}

/** How long a registry may take to answer a request (its headers; a layer's body may take longer). */
const REGISTRY_ANSWER_SECONDS = 10;

const sha256Of = (data: Buffer | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** A GET on the registry; 401 and anything but 200 are refused naming the URL and what the registry said. */
async function registryGet(ref: ImageRef, path: string, accept?: string): Promise<Response> {
  const url = `${registryBase(ref.registry)}/v2/${ref.repository}/${path}`;
  let res: Response;
  // A timer of our own (AbortSignal.timeout's does not keep the process alive): undici retries a
  // connection the server closes without answering, without end, and the runner would exit 13.
  const deadline = new AbortController();
  const timer = setTimeout(
    () => deadline.abort(new Error(`no answer within ${REGISTRY_ANSWER_SECONDS} s`)),
    REGISTRY_ANSWER_SECONDS * 1000,
  );
  try {
    res = await fetch(url, { headers: accept ? { Accept: accept } : {}, redirect: 'follow', signal: deadline.signal });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new FailedError(
      `cannot reach the registry of ${ref.text} at ${url}: ` +
        `${cause?.code ?? cause?.message ?? (err as Error).message}. Nothing was started.`,
      ["Is the registry up? The local cluster's is started by `bash scripts/local-cluster/images.sh ensure`."],
    );
  } finally {
    clearTimeout(timer);
  }
  if (res.status === 401) {
    const wants = res.headers.get('www-authenticate') ?? 'credentials';
    throw new RefusedError(
      `the registry of ${ref.text} asks for authentication (${wants}); the process baseline ` +
        `reads images anonymously. Nothing was started.`,
      [
        'It would need a token from that realm, got with the credentials `docker login` keeps, ' +
          'sent as a Bearer header on every request; that is not implemented.',
        'Copy the image to a registry this machine reads without credentials (the local ' +
          "cluster's localhost:5000, with `crane copy`), and point the profile's image at it.",
      ],
    );
  }
  if (res.status !== 200) {
    const body = (await res.text()).slice(0, 300).trim();
    const hint =
      res.status === 404
        ? [
            `Is ${ref.text} pushed? \`npm run image -- --profile=<profile>\` (on the local cluster ` +
              `\`bash scripts/local-cluster/images.sh ensure\`) pushes it.`,
          ]
        : [];
    throw new FailedError(
      `the registry answered ${res.status} for ${url}${body ? `: ${body}` : ''}. Nothing was started.`,
      hint,
    );
  }
  return res;
}

interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size?: number;
  readonly platform?: { os: string; architecture: string; variant?: string };
}
interface Manifest {
  readonly mediaType?: string;
  readonly manifests?: Descriptor[];
  readonly config?: Descriptor;
  readonly layers?: Descriptor[];
}
interface ImageConfig {
  readonly os: string;
  readonly architecture: string;
  readonly config?: { Entrypoint?: string[] | null; Cmd?: string[] | null; Env?: string[] | null };
}

/** A manifest by tag or digest, its bytes checked against the digest the registry gives or the reference names. */
async function getManifest(ref: ImageRef, reference: string): Promise<{ manifest: Manifest; digest: string }> {
  const res = await registryGet(ref, `manifests/${reference}`, Object.values(MANIFEST_TYPES).join(', '));
  const body = Buffer.from(await res.arrayBuffer());
  const digest = sha256Of(body);
  const claimed = reference.startsWith('sha256:') ? reference : res.headers.get('docker-content-digest');
  if (claimed && claimed !== digest)
    throw new FailedError(
      `the manifest of ${ref.text} does not match its digest: ${claimed} named, ${digest} ` +
        `received. Nothing was started.`,
    );
  return { manifest: JSON.parse(body.toString('utf8')) as Manifest, digest };
}

/** What the image is: the digest its reference resolves to, the manifest for this machine, and its config. */
export interface ResolvedImage {
  readonly ref: ImageRef;
  readonly imageDigest: string;
  readonly manifestDigest: string;
  readonly manifest: Manifest;
  readonly config: ImageConfig;
}

/**
 * Resolves the reference, picks this machine's platform from an index, and refuses an image this
 * machine cannot run.
 */
export async function resolveImage(text: string): Promise<ResolvedImage> {
  const ref = parseImageRef(text);
  const top = await getManifest(ref, ref.reference);
  const here = machinePlatform();
  let chosen = top;
  if (top.manifest.manifests) {
    const match = top.manifest.manifests.find(
      (d) => d.platform?.os === here.os && d.platform.architecture === here.architecture,
    );
    if (!match)
      refusePlatform(
        text,
        top.manifest.manifests.map((d) => `${d.platform?.os}/${d.platform?.architecture}`).join(', '),
      );
    chosen = await getManifest(ref, match.digest);
  }
  if (!chosen.manifest.config || !chosen.manifest.layers)
    throw new FailedError(
      `the manifest of ${text} has no config or layers (media type ` +
        `${chosen.manifest.mediaType ?? 'unknown'}). Nothing was started.`,
    );
  const config = JSON.parse((await getBlob(ref, chosen.manifest.config)).toString('utf8')) as ImageConfig;
  if (config.os !== here.os || config.architecture !== here.architecture)
    refusePlatform(text, `${config.os}/${config.architecture}`);
  return { ref, imageDigest: top.digest, manifestDigest: chosen.digest, manifest: chosen.manifest, config };
}

function refusePlatform(image: string, carries: string): never {
  const here = machinePlatform();
  throw new RefusedError(
    `the profile's image ${image} carries programs for ${carries}; this machine is ` +
      `${here.os}/${here.architecture} and cannot run them as processes. Nothing was started.`,
    [
      "The baseline runs the image's own binaries on this machine, so it must run where they " +
        'run: on the Kubernetes node itself (or a machine like it),',
      'e.g. `ssh <node>` and `npm run benchmark -- --profile=<profile> --baseline=processes` ' +
        'there, then bring its results/ folder back to compare.',
    ],
  );
}

/** A small blob (the config) in memory, checked against its digest. */
async function getBlob(ref: ImageRef, d: Descriptor): Promise<Buffer> {
  const body = Buffer.from(await (await registryGet(ref, `blobs/${d.digest}`)).arrayBuffer());
  if (sha256Of(body) !== d.digest)
    throw new FailedError(`blob ${d.digest} of ${ref.text} does not match its digest. Nothing was started.`);
  return body;
}

/** Hashes what passes through, to check a layer's digest once it has all been read. */
class Digester extends Transform {
  private readonly hash = createHash('sha256');
  public override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    done(null, chunk);
  }
  public digest(): string {
    return `sha256:${this.hash.digest('hex')}`;
  }
}

/** Layer entries' names as tar holds them (`./usr/bin/x`, `usr/bin/x`) made absolute. */
const entryPath = (name: string) => posix.normalize(`/${name}`).replace(/\/$/, '');

/** What one layer says about a path: the file is here, it was deleted here, or nothing. */
type LayerAnswer =
  | { kind: 'file'; tmp: string; sha256: string }
  | { kind: 'link'; target: string }
  | { kind: 'deleted' }
  | { kind: 'absent' };

function whiteouts(path: string): Set<string> {
  const out = new Set([posix.join(posix.dirname(path), `.wh.${posix.basename(path)}`)]);
  for (let dir = posix.dirname(path); dir !== '/'; dir = posix.dirname(dir)) out.add(posix.join(dir, '.wh..wh..opq'));
  return out;
}

const LAYER_TYPES: Record<string, 'gzip' | 'tar'> = {
  'application/vnd.oci.image.layer.v1.tar+gzip': 'gzip',
  'application/vnd.docker.image.rootfs.diff.tar.gzip': 'gzip',
  'application/vnd.oci.image.layer.v1.tar': 'tar',
};

/** Reads one whole layer (so that its digest can be checked), saving `path` into `tmp` when the layer holds it. */
async function searchLayer(ref: ImageRef, layer: Descriptor, path: string, tmp: string): Promise<LayerAnswer> {
  const kind = LAYER_TYPES[layer.mediaType];
  if (!kind)
    throw new RefusedError(
      `a layer of ${ref.text} is ${layer.mediaType}, which the baseline cannot read (gzip or ` +
        `plain tar only; Node 20's zlib has no zstd). Nothing was started.`,
    );
  const res = await registryGet(ref, `blobs/${layer.digest}`);
  const digester = new Digester();
  const tar = extract();
  const deleting = whiteouts(path);
  let answer: LayerAnswer = { kind: 'absent' };
  // A file being written when the layer turns out damaged: finished (or failed) before the caller removes it.
  let writing: Promise<void> | undefined;
  tar.on('entry', (header: Header, stream, next) => {
    const name = entryPath(header.name);
    if (name === path && header.type === 'file') {
      const hash = createHash('sha256');
      stream.on('data', (chunk) => hash.update(chunk as Buffer));
      writing = pipeline(stream, createWriteStream(tmp, { mode: 0o755 })).then(() => {
        answer = { kind: 'file', tmp, sha256: hash.digest('hex') };
        next();
      }, next);
      return;
    }
    if (name === path && (header.type === 'symlink' || header.type === 'link') && header.linkname) {
      answer = {
        kind: 'link',
        target:
          header.type === 'link' ? entryPath(header.linkname) : posix.resolve(posix.dirname(path), header.linkname),
      };
    } else if (deleting.has(name) && answer.kind === 'absent') answer = { kind: 'deleted' };
    stream.on('end', () => next()).resume();
  });
  const body = Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
  try {
    await pipeline(
      ...([body, digester, ...(kind === 'gzip' ? [createGunzip()] : []), tar] as [
        Readable,
        Transform,
        ...NodeJS.WritableStream[],
      ]),
    );
  } catch (err) {
    await writing;
    throw new FailedError(
      `layer ${layer.digest} of ${ref.text} cannot be read (${(err as Error).message}): ` +
        `damaged, or not the ${kind} it says it is. Nothing was started.`,
    );
  }
  if (digester.digest() !== layer.digest)
    throw new FailedError(`layer ${layer.digest} of ${ref.text} does not match its digest. Nothing was started.`);
  return answer;
}

/** Symlinks followed in an image before giving up (a loop). */
const MAX_LINKS = 8;

/** Finds `path` in the image's layers, the top layer first, following links; returns the extracted file. */
async function extractFromImage(
  image: ResolvedImage,
  path: string,
  tmp: string,
): Promise<{ sha256: string; pathInImage: string }> {
  const layers = [...(image.manifest.layers ?? [])].reverse();
  let wanted = path;
  for (let hops = 0; hops <= MAX_LINKS; hops++) {
    let answer: LayerAnswer = { kind: 'absent' };
    for (const layer of layers) {
      answer = await searchLayer(image.ref, layer, wanted, tmp);
      if (answer.kind !== 'absent') break;
    }
    if (answer.kind === 'file') return { sha256: answer.sha256, pathInImage: wanted };
    if (answer.kind !== 'link')
      throw new RefusedError(
        `${image.ref.text} holds no file at ` +
          `${wanted}${wanted === path ? '' : ` (where ${path} leads)`}. Nothing was started.`,
      );
    wanted = answer.target;
  }
  throw new RefusedError(
    `${path} in ${image.ref.text} is a chain of more than ${MAX_LINKS} links. Nothing was started.`,
  );
}

/**
 * The program a container runs: its command, else the image's entrypoint, else its command (Cmd); a
 * name without a slash is looked for along the image's PATH, the way the runtime would.
 */
export function programOf(command: readonly string[] | undefined, config: ImageConfig): string | undefined {
  return command?.[0] ?? config.config?.Entrypoint?.[0] ?? config.config?.Cmd?.[0] ?? undefined;
}

/** The directories a bare program name is looked for in, from the image's PATH (or the runtime's default). */
export function searchPath(config: ImageConfig): string[] {
  const path =
    config.config?.Env?.find((e) => e.startsWith('PATH='))?.slice(5) ??
    '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  return path.split(':').filter((d) => d.startsWith('/'));
}

interface CacheEntry {
  readonly pathInImage: string;
  readonly sha256: string;
  readonly file: string;
}

/**
 * The program `command[0]` (or the image's entrypoint) of `image`, extracted into the cache (keyed
 * by the platform manifest's digest and the program) unless it is there already; its sha256 is
 * computed again on every use, so a damaged cache entry is found.
 */
export async function imageBinary(image: ResolvedImage, command: readonly string[] | undefined): Promise<ImageBinary> {
  const program = programOf(command, image.config);
  if (!program)
    throw new RefusedError(
      `${image.ref.text} names no program to run (no command in the manifest, no entrypoint ` +
        `or Cmd in the image). Nothing was started.`,
    );
  const dir = join(cacheDir(), 'image-binaries', image.manifestDigest.replace('sha256:', ''));
  const index = join(dir, `${sha256Of(program).slice(7, 23)}.json`);
  let entry = existsSync(index) ? (JSON.parse(readFileSync(index, 'utf8')) as CacheEntry) : undefined;
  if (!entry || !existsSync(entry.file) || sha256Of(readFileSync(entry.file)).slice(7) !== entry.sha256)
    entry = await extractToCache(image, program, dir, index);
  return {
    image: image.ref.text,
    imageDigest: image.imageDigest,
    manifestDigest: image.manifestDigest,
    platform: `${image.config.os}/${image.config.architecture}`,
    pathInImage: entry.pathInImage,
    path: entry.file,
    sha256: entry.sha256,
  };
}

async function extractToCache(image: ResolvedImage, program: string, dir: string, index: string): Promise<CacheEntry> {
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.extract-${process.pid}-${Date.now()}`);
  try {
    const found = await findProgram(image, program, tmp);
    const file = join(dir, posix.basename(found.pathInImage));
    renameSync(tmp, file);
    const entry = { pathInImage: found.pathInImage, sha256: found.sha256, file };
    writeFileSync(index, `${JSON.stringify(entry, null, 2)}\n`);
    return entry;
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** An absolute path as it is; a bare name along the image's PATH, the first directory that holds it. */
async function findProgram(
  image: ResolvedImage,
  program: string,
  tmp: string,
): Promise<{ sha256: string; pathInImage: string }> {
  if (program.startsWith('/')) return extractFromImage(image, program, tmp);
  const dirs = searchPath(image.config);
  for (const d of dirs) {
    try {
      return await extractFromImage(image, posix.join(d, program), tmp);
    } catch (err) {
      if (!(err instanceof RefusedError) || !err.message.includes('holds no file')) throw err;
    }
  }
  throw new RefusedError(`${image.ref.text} holds no ${program} in its PATH (${dirs.join(':')}). Nothing was started.`);
}
