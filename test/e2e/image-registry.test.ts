import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabelKeys } from '../../lib/labels.js';
import { objectsOf, waitFor } from '../../lib/runner/watch.js';
import {
  auditEntries,
  auditLog,
  type AuditEntry,
  clusterEnv,
  CONTEXT,
  expectExit,
  kubeFor,
  podReady,
  projectWithVariant,
  root,
  runCli,
  type CliResult,
  sandstoreSource,
} from './harness.js';

/**
 * Flow 1 against a real Docker engine and an authenticated registry (scripts/docker-engine.sh:
 * dockerd 20.10 with a socket of its own, distribution's registry with htpasswd on 127.0.0.1:5001):
 * `update --build` stopped before the cluster by each failure a real daemon and registry give
 * (no daemon, no login, a wrong password, no Dockerfile, a compile error, a read-only registry), as
 * the API server's audit log shows; then the real node pulling from that registry with the profile's
 * pull Secret and `update --build` rolling its pods onto exactly the digest the registry holds.
 * Upstream's Dockerfile builds unchanged, from base images the engine script makes offline.
 */
const PROFILE = 'local-node-private';
const NAMESPACE = 'sandstore-private';
const SECRET = 'sandstore-pull';
const kube = kubeFor();
const source = sandstoreSource();
let work: string;
let engineEnv: Record<string, string>;
let registry: string;
let dockerConfig: string;
let temp: string;

const engine = (...args: string[]) => {
  const r = spawnSync('bash', [join(root, 'scripts', 'docker-engine.sh'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, SANDSTORE_SOURCE: source },
    timeout: 900_000,
  });
  if (r.status !== 0) throw new Error(`docker-engine.sh ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
};
/** Debian's docker CLI (the engine's own version) first, our daemon, a docker config of the test's. */
const dockerEnv = (config = dockerConfig) => ({
  PATH: `/usr/bin:${process.env.PATH ?? ''}`,
  DOCKER_HOST: engineEnv.DOCKER_HOST,
  DOCKER_CONFIG: config,
});
const docker = (args: string[], input?: string) => {
  const r = spawnSync('/usr/bin/docker', args, {
    encoding: 'utf8',
    input,
    env: { ...process.env, ...dockerEnv() },
    timeout: 600_000,
  });
  if (r.status !== 0) throw new Error(`docker ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
};
const kubectl = (...args: string[]) => {
  const cache = process.env.SANDSTORE_CACHE_DIR ?? join(homedir(), '.cache', 'sandstore-deploy');
  const r = spawnSync(join(cache, 'kubernetes-v1.28.15', 'bin', 'kubectl'), ['--context', CONTEXT, ...args], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
};

/** The runner's requests (its user agent) received in [from, to], from the API server's audit log. */
const runnerRequests = async (from: number, to: number): Promise<AuditEntry[]> =>
  (await auditEntries(from, to)).filter((e) => (e.userAgent ?? '').startsWith('sandstore-deploy'));

/** `update --build` of the private profile, with the runner's requests the audit log saw meanwhile. */
async function updateBuild(
  from: string,
  env: Record<string, string> = {},
): Promise<{ r: CliResult; requests: AuditEntry[] }> {
  const started = Date.now() - 100;
  const r = await runCli(['update', `--profile=${PROFILE}`, '--build', `--source=${from}`, '--timeout=300'], {
    cwd: work,
    env: { ...dockerEnv(), ...env },
  });
  return { r, requests: await runnerRequests(started, Date.now() + 100) };
}

/** Reads the tag's manifest back from the registry with the login, and its config's platform. */
async function registryManifest(tag: string): Promise<{ digest: string; platform: string }> {
  const auth = `Basic ${Buffer.from(`${engineEnv.SANDSTORE_AUTH_REGISTRY_USER}:${engineEnv.SANDSTORE_AUTH_REGISTRY_PASSWORD}`).toString('base64')}`;
  const manifest = await fetch(`http://${registry}/v2/sandstore-node/manifests/${tag}`, {
    headers: { authorization: auth, accept: 'application/vnd.docker.distribution.manifest.v2+json' },
  });
  expect(manifest.status).toBe(200);
  const body = (await manifest.json()) as { config: { digest: string } };
  const config = await fetch(`http://${registry}/v2/sandstore-node/blobs/${body.config.digest}`, {
    headers: { authorization: auth },
  });
  const { os, architecture } = (await config.json()) as { os: string; architecture: string };
  return { digest: manifest.headers.get('docker-content-digest') ?? '', platform: `${os}/${architecture}` };
}

const dataPlanePods = async () =>
  (await kube.list('Pod', { namespace: NAMESPACE })).items.filter(
    (p) => p.metadata.labels?.[LabelKeys.component] === 'data-plane',
  );

beforeAll(() => {
  if (!existsSync(auditLog()))
    throw new Error(`the API server's audit log ${auditLog()} is missing: start the cluster with up.sh`);
  engineEnv = Object.fromEntries(
    engine('up')
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  registry = engineEnv.SANDSTORE_AUTH_REGISTRY;
  temp = mkdtempSync(join(tmpdir(), 'sandstore-image-e2e-'));
  dockerConfig = join(temp, 'docker-config');
  docker(
    ['login', '--username', engineEnv.SANDSTORE_AUTH_REGISTRY_USER, '--password-stdin', registry],
    engineEnv.SANDSTORE_AUTH_REGISTRY_PASSWORD,
  );
  work = projectWithVariant(
    'local-node',
    PROFILE,
    `namespace: '${NAMESPACE}', image: { registry: '${registry}', tag: '${PROFILE}-latest', ` +
      `pullSecret: '${SECRET}' }, storage: { ...base.storage, className: 'sandstore-private-ssd' }, ` +
      `clientAccess: { nodePortBase: 30480 }`,
  );
}, 900_000);

afterAll(async () => {
  if (work) await runCli(['destroy', `--profile=${PROFILE}`, '--timeout=120'], { cwd: work });
  forgetPulledImages();
  engine('readonly', 'off');
  // Nothing of the suite's is left running; the engine's data root (its build cache) is kept.
  engine('down');
  if (temp) rmSync(temp, { recursive: true, force: true });
  if (work) rmSync(work, { recursive: true, force: true });
}, 300_000);

/**
 * The node's containerd forgets what it pulled from this registry: an image of the same content
 * pulled later from the local cluster's registry would otherwise report this registry's name in
 * its pods' imageID (containerd names content by the first reference it knew).
 */
function forgetPulledImages(): void {
  const ctr = (...args: string[]) =>
    spawnSync('ctr', ['--address', clusterEnv().CONTAINERD_SOCK, '-n', 'k8s.io', 'images', ...args], {
      encoding: 'utf8',
    });
  const refs = ctr('ls', '-q')
    .stdout.split('\n')
    .filter((ref) => ref.startsWith(`${registry}/`));
  if (refs.length > 0) expect(ctr('rm', ...refs).status).toBe(0);
}

describe('update --build stops before the cluster', () => {
  test('the checkout has no Dockerfile', async () => {
    const { r, requests } = await updateBuild(join(temp));
    expectExit(r, 2);
    expect(r.stderr).toContain(`the source path ${temp} has no deploy/docker/Dockerfile`);
    expect(requests).toEqual([]);
  });

  test('not logged in to the registry (an empty docker config)', async () => {
    const { r, requests } = await updateBuild(source, { DOCKER_CONFIG: mkdtempSync(join(temp, 'empty-')) });
    expectExit(r, 2);
    expect(r.stderr).toContain(`the registry ${registry} asks for a login (GET http://${registry}/v2/: HTTP 401)`);
    expect(r.stderr).toContain(`docker login ${registry}`);
    expect(requests).toEqual([]);
  });

  test('a wrong password stored for the registry', async () => {
    const wrong = mkdtempSync(join(temp, 'wrong-'));
    const auth = Buffer.from(`${engineEnv.SANDSTORE_AUTH_REGISTRY_USER}:not-the-password`).toString('base64');
    writeFileSync(join(wrong, 'config.json'), JSON.stringify({ auths: { [registry]: { auth } } }));
    const { r, requests } = await updateBuild(source, { DOCKER_CONFIG: wrong });
    expectExit(r, 2);
    expect(r.stderr).toContain(`the registry ${registry} refuses the login docker has stored for it`);
    expect(requests).toEqual([]);
  });

  test('the Go code does not compile: the compiler says where, nothing is pushed', async () => {
    const broken = join(temp, 'broken-checkout');
    cpSync(source, broken, { recursive: true, filter: (path) => !path.includes('/.git') });
    const main = join(broken, 'cmd', 'sandstore', 'main.go');
    writeFileSync(main, readFileSync(main, 'utf8').replace('package main\n', 'package main\n\nimport "fmt\n'));
    const { r, requests } = await updateBuild(broken);
    rmSync(broken, { recursive: true, force: true });
    expectExit(r, 1);
    expect(r.stdout).toMatch(/cmd\/sandstore\/main\.go:3:8: .*string literal not terminated/);
    expect(r.stderr).toContain('Nothing was pushed');
    expect(requests).toEqual([]);
  }, 900_000);

  test('the Docker daemon is not running (stopped, the same DOCKER_HOST)', async () => {
    engine('down');
    try {
      const { r, requests } = await updateBuild(source);
      expectExit(r, 2);
      expect(r.stderr).toContain('the Docker daemon is not reachable');
      expect(requests).toEqual([]);
    } finally {
      engine('up');
    }
  }, 900_000);
});

describe('the real node pulls with the pull Secret; update --build rolls onto the pushed digest', () => {
  test('deploy pulls the image from the authenticated registry with the Secret', async () => {
    // A first image under the profile's tag: the local cluster's own build, so the build below
    // yields another digest to roll onto.
    docker(['pull', 'localhost:5000/sandstore-node:local-node-latest']);
    docker(['tag', 'localhost:5000/sandstore-node:local-node-latest', `${registry}/sandstore-node:${PROFILE}-latest`]);
    docker(['push', `${registry}/sandstore-node:${PROFILE}-latest`]);
    const first = await registryManifest(`${PROFILE}-latest`);
    // What docs/image.md tells the operator to do.
    kubectl('apply', '-f', join(work, 'dist', PROFILE, `namespace-${NAMESPACE}.yaml`));
    kubectl(
      '-n',
      NAMESPACE,
      'create',
      'secret',
      'docker-registry',
      SECRET,
      `--docker-server=${registry}`,
      `--docker-username=${engineEnv.SANDSTORE_AUTH_REGISTRY_USER}`,
      `--docker-password=${engineEnv.SANDSTORE_AUTH_REGISTRY_PASSWORD}`,
    );
    expectExit(await runCli(['deploy', `--profile=${PROFILE}`, '--timeout=240'], { cwd: work }), 0);
    const pods = await dataPlanePods();
    expect(pods.map((p) => p.spec?.imagePullSecrets)).toEqual(pods.map(() => [{ name: SECRET }]));
    expect(pods.every(podReady)).toBe(true);
    expect(pods.map((p) => p.status?.containerStatuses?.find((c) => c.name === 'sandstore')?.imageID)).toEqual(
      pods.map(() => `${registry}/sandstore-node@${first.digest}`),
    );
  }, 600_000);

  test("the guard's absence: a pod naming no pull Secret cannot pull the same image (401 from the registry)", async () => {
    const name = 'no-pull-secret';
    await kube.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: NAMESPACE },
      spec: {
        nodeSelector: { 'node.sandstore.io/runtime': 'containerd' },
        tolerations: [{ key: 'node.sandstore.io/runtime', operator: 'Exists', effect: 'NoSchedule' }],
        securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } },
        containers: [
          {
            name: 'sandstore',
            image: `${registry}/sandstore-node:${PROFILE}-latest`,
            imagePullPolicy: 'Always',
            securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
          },
        ],
      },
    });
    try {
      const waiting = await waitFor(
        kube,
        [{ key: 'pod', kind: 'Pod', namespace: NAMESPACE, fieldSelector: `metadata.name=${name}` }],
        {
          what: 'the pod without a pull Secret to fail its pull',
          timeoutSeconds: 120,
          check: (s) =>
            objectsOf(s, 'pod', 'Pod')
              .flatMap((p) => p.status?.containerStatuses ?? [])
              .map((c) => c.state?.waiting)
              .find((w) => w?.reason === 'ErrImagePull' || w?.reason === 'ImagePullBackOff'),
        },
      );
      expect(waiting.message).toMatch(/401 Unauthorized|unauthorized/i);
    } finally {
      await kube.delete('Pod', name, NAMESPACE);
    }
  }, 300_000);

  test('update --build: the registry holds a linux/amd64 image, and every pod runs exactly its digest', async () => {
    const { r } = await updateBuild(source);
    expectExit(r, 0);
    const reported = /image: pushed \S+@(sha256:[0-9a-f]{64})/.exec(r.stdout)?.[1];
    const pushed = await registryManifest(`${PROFILE}-latest`);
    expect(pushed).toEqual({ digest: reported, platform: 'linux/amd64' });
    const pods = await dataPlanePods();
    expect(pods).toHaveLength(3);
    expect(pods.every(podReady)).toBe(true);
    expect(pods.map((p) => p.status?.containerStatuses?.find((c) => c.name === 'sandstore')?.imageID)).toEqual(
      pods.map(() => `${registry}/sandstore-node@${pushed.digest}`),
    );
  }, 900_000);

  test('a read-only registry refuses the push: update stops before the cluster', async () => {
    engine('readonly', 'on');
    try {
      const { r, requests } = await updateBuild(source);
      expectExit(r, 1);
      expect(r.stderr).toContain('docker push of');
      expect(r.stderr).toContain('is not in the registry');
      expect(requests).toEqual([]);
    } finally {
      engine('readonly', 'off');
    }
  }, 900_000);
});
