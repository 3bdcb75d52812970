import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { FailedError, RefusedError } from '../errors.js';
import { imageBinary, machinePlatform, parseImageRef, registryBase, resolveImage } from './image-binaries.js';

/**
 * The binaries taken out of an image, against a registry served here over HTTP (the v2 API's
 * manifest and blob routes, as the local cluster's registry answers them), with layers made as
 * tar files by tar-stream and gzip: found through whiteouts and links, checked by digest, cached,
 * and refused for another platform or a registry that wants credentials.
 */

type Entry = { name: string; data?: string; type?: 'file' | 'symlink'; linkname?: string };

async function layer(entries: readonly Entry[]): Promise<Buffer> {
  const p = pack();
  for (const e of entries)
    p.entry({ name: e.name, type: e.type ?? 'file', linkname: e.linkname, mode: 0o755 }, e.data ?? '');
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of p) chunks.push(chunk as Buffer);
  return gzipSync(Buffer.concat(chunks));
}

const digest = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface Registry {
  readonly host: string;
  /** Requests for blobs so far (layers and configs). */
  blobRequests(): number;
  close(): Promise<void>;
}

/** Serves `repo:tag` as an OCI image of `layers` (bottom first) whose config says `platform`. */
async function registry(
  repo: string,
  tag: string,
  layers: readonly Buffer[],
  platform = machinePlatform(),
  opts: { auth?: boolean; corrupt?: boolean } = {},
): Promise<Registry> {
  const config = Buffer.from(
    JSON.stringify({
      ...platform,
      config: { Entrypoint: ['/usr/local/bin/sandstore'], Env: ['PATH=/usr/local/bin:/bin'] },
      rootfs: { type: 'layers' },
    }),
  );
  const blobs = new Map<string, Buffer>([[digest(config), config], ...layers.map((l) => [digest(l), l] as const)]);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digest(config), size: config.length },
      layers: layers.map((l) => ({
        mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
        digest: digest(l),
        size: l.length,
      })),
    }),
  );
  let blobRequests = 0;
  const server: Server = createServer((req, res) => {
    if (opts.auth) {
      res
        .writeHead(401, { 'WWW-Authenticate': 'Bearer realm="https://auth.example/token",service="registry.example"' })
        .end();
      return;
    }
    const blob = new RegExp(`^/v2/${repo}/blobs/(sha256:[0-9a-f]{64})$`).exec(req.url ?? '');
    const manifestHeaders = {
      'Content-Type': 'application/vnd.oci.image.manifest.v1+json',
      'Docker-Content-Digest': digest(manifest),
    };
    if (req.url === `/v2/${repo}/manifests/${tag}`) res.writeHead(200, manifestHeaders).end(manifest);
    else if (blob && blobs.has(blob[1])) {
      blobRequests++;
      const body = blobs.get(blob[1])!;
      res.writeHead(200).end(opts.corrupt && body !== config ? Buffer.concat([body, Buffer.from('x')]) : body);
    } else res.writeHead(404).end('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(server.address() as { port: number }).port}`,
    blobRequests: () => blobRequests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

let cache: string;
let served: Registry | undefined;
beforeEach(() => {
  cache = mkdtempSync(join(tmpdir(), 'image-binaries-'));
  process.env.SANDSTORE_CACHE_DIR = cache;
});
afterEach(async () => {
  await served?.close();
  served = undefined;
  delete process.env.SANDSTORE_CACHE_DIR;
  rmSync(cache, { recursive: true, force: true });
});

test('image references split as Docker splits them; only loopback registries are asked over plain HTTP', () => {
  expect(parseImageRef('localhost:5000/sandstore-node:local-node-latest')).toMatchObject({
    registry: 'localhost:5000',
    repository: 'sandstore-node',
    reference: 'local-node-latest',
  });
  expect(parseImageRef('quay.io/coreos/etcd:v3.5.0')).toMatchObject({
    registry: 'quay.io',
    repository: 'coreos/etcd',
    reference: 'v3.5.0',
  });
  expect(parseImageRef('etcd')).toMatchObject({
    registry: 'docker.io',
    repository: 'library/etcd',
    reference: 'latest',
  });
  expect(parseImageRef(`r.io/a/b@sha256:${'a'.repeat(64)}`)).toMatchObject({ reference: `sha256:${'a'.repeat(64)}` });
  expect(() => parseImageRef('Not An Image')).toThrow(
    /is not an image reference: expected \[registry\/\]repository\[:tag\]/,
  );
  expect(['localhost:5000', '127.0.0.1:5000', 'registry.example:5000'].map(registryBase)).toEqual([
    'http://localhost:5000',
    'http://127.0.0.1:5000',
    'https://registry.example:5000',
  ]);
});

test(
  'the program is found in the top layer that has it, through a symlink, byte for byte, ' +
    "and cached by the manifest's digest",
  async () => {
    const lower = await layer([
      { name: 'usr/local/bin/sandstore', data: 'old binary' },
      { name: 'opt/sandstore-2', data: 'new binary' },
    ]);
    const upper = await layer([
      { name: 'usr/local/bin/sandstore', type: 'symlink', linkname: '../../../opt/sandstore-2' },
    ]);
    served = await registry('node', 'v1', [lower, upper]);
    const image = await resolveImage(`${served.host}/node:v1`);
    const binary = await imageBinary(image, undefined);
    expect(binary.pathInImage).toBe('/opt/sandstore-2');
    expect(readFileSync(binary.path, 'utf8')).toBe('new binary');
    expect(binary.sha256).toBe(createHash('sha256').update('new binary').digest('hex'));
    expect(binary.path.startsWith(join(cache, 'image-binaries', image.manifestDigest.slice(7)))).toBe(true);
    const before = served.blobRequests();
    expect(await imageBinary(await resolveImage(`${served.host}/node:v1`), undefined)).toEqual(binary);
    expect(served.blobRequests() - before).toBe(1); // the config only: no layer read again
  },
);

test("a file deleted by an upper layer's whiteout is not there", async () => {
  const lower = await layer([{ name: 'usr/local/bin/sandstore', data: 'binary' }]);
  const upper = await layer([{ name: 'usr/local/bin/.wh.sandstore' }]);
  served = await registry('node', 'v1', [lower, upper]);
  await expect(imageBinary(await resolveImage(`${served.host}/node:v1`), undefined)).rejects.toThrow(
    /holds no file at \/usr\/local\/bin\/sandstore/,
  );
});

test("a bare command is looked for along the image's PATH", async () => {
  served = await registry('etcd', 'v1', [await layer([{ name: 'bin/etcd', data: 'etcd binary' }])]);
  const binary = await imageBinary(await resolveImage(`${served.host}/etcd:v1`), ['etcd']);
  expect([binary.pathInImage, readFileSync(binary.path, 'utf8')]).toEqual(['/bin/etcd', 'etcd binary']);
});

test('an image for another platform is refused, naming both and what to do, before a layer is read', async () => {
  const other = machinePlatform().architecture === 'arm64' ? 'amd64' : 'arm64';
  served = await registry('node', 'v1', [await layer([{ name: 'usr/local/bin/sandstore', data: 'x' }])], {
    os: 'linux',
    architecture: other,
  });
  const err = (await resolveImage(`${served.host}/node:v1`).catch((e: unknown) => e)) as RefusedError;
  expect(err).toBeInstanceOf(RefusedError);
  expect(err.message).toContain(
    `carries programs for linux/${other}; this machine is ` +
      `${machinePlatform().os}/${machinePlatform().architecture} and cannot run them`,
  );
  expect(err.details.join('\n')).toContain('on the Kubernetes node itself');
  expect(served.blobRequests()).toBe(1); // the config, not the layer
});

test('a registry that asks for credentials is refused, naming what it asks for', async () => {
  served = await registry('node', 'v1', [], machinePlatform(), { auth: true });
  const err = (await resolveImage(`${served.host}/node:v1`).catch((e: unknown) => e)) as RefusedError;
  expect(err).toBeInstanceOf(RefusedError);
  expect(err.message).toContain(
    'asks for authentication (Bearer ' +
      'realm="https://auth.example/token",service="registry.example"); the process baseline ' +
      'reads images anonymously',
  );
});

test('a damaged layer fails naming it, and nothing is cached', async () => {
  served = await registry(
    'node',
    'v1',
    [await layer([{ name: 'usr/local/bin/sandstore', data: 'x' }])],
    machinePlatform(),
    { corrupt: true },
  );
  const image = await resolveImage(`${served.host}/node:v1`);
  await expect(imageBinary(image, undefined)).rejects.toThrow(FailedError);
  await expect(imageBinary(image, undefined)).rejects.toThrow(
    /^layer sha256:[0-9a-f]{64} of 127\.0\.0\.1:\d+\/node:v1 (does not match its digest|cannot be read)/,
  );
  expect(readdirSync(join(cache, 'image-binaries', image.manifestDigest.slice(7)))).toEqual([]);
});
