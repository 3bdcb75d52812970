import { expect } from '@jest/globals';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { objectsOf, waitFor } from '../../lib/runner/watch.js';
import { profileSelector } from '../../lib/labels.js';
import { loadProfile } from '../../lib/profiles.js';
import type { CoreV1Event } from '@kubernetes/client-node';
import type { Kube, PersistentVolume, Pod } from '../../lib/runner/kube.js';
import {
  CONTEXT,
  clusterEnv,
  expectExit,
  kubeFor,
  nodeFsType,
  nodeMountAt,
  onNode,
  podReady,
  root,
  runCli,
} from './harness.js';

/**
 * The real node's volumes through rancher's local-path-provisioner (scripts/local-cluster/node.sh):
 * a profile's storage.nodePath puts its claims on the node's ext4 or xfs image, and destroy removes
 * their directories through local-path's own helper pods. Read back from the API server, a watch on
 * the helper pods, /proc/mounts and the node's disk, not from the runner's output.
 */
const kube = kubeFor();
const env = clusterEnv();
const HELPER_NAMESPACE = 'local-path-storage';
/** Where the real node sees its disk (scripts/local-cluster/node.sh's NODE_VIEW_DIR), on every local cluster. */
const NODE_VIEW_DIR = '/var/lib/sandstore-node';
/** Each file system's directory: as the node sees it, and on this host. */
const FILE_SYSTEMS = {
  ext4: { onNode: `${NODE_VIEW_DIR}/ext4`, onHost: env.NODE_EXT4_DIR },
  xfs: { onNode: `${NODE_VIEW_DIR}/xfs`, onHost: env.NODE_XFS_DIR },
} as const;
type FileSystem = keyof typeof FILE_SYSTEMS;

/** The file system type of the mount that holds `path` (findmnt walks up to it). */
const fsTypeOf = (path: string) =>
  execFileSync('findmnt', ['-n', '-o', 'FSTYPE', '--target', path], { encoding: 'utf8' }).trim();

/**
 * Waits until process `pid` has gone; a process of another parent has nothing to wait on, so /proc
 * is re-read every 100 ms.
 */
async function awaitExit(pid: number, timeoutMs: number): Promise<void> {
  for (
    const deadline = Date.now() + timeoutMs;
    existsSync(`/proc/${pid}`);
    await new Promise((r) => setTimeout(r, 100))
  ) {
    if (Date.now() > deadline) throw new Error(`process ${pid} still running after ${timeoutMs} ms`);
  }
}

/**
 * "<reason>: <message>" of each event on claim `name` (default namespace) that a provisioner
 * reports while it works on it.
 */
function provisionerEventsOn(context: string, claim: string): string[] {
  const out = execFileSync(
    join(clusterEnv(context).KUBE_BIN_DIR, 'kubectl'),
    [
      '--context',
      context,
      'get',
      'events',
      '-n',
      'default',
      '--field-selector',
      `involvedObject.kind=PersistentVolumeClaim,involvedObject.name=${claim}`,
      '-o',
      'json',
    ],
    { encoding: 'utf8' },
  );
  const events = (JSON.parse(out) as { items: CoreV1Event[] }).items;
  return events
    .filter((e) => ['Provisioning', 'ProvisioningFailed'].includes(e.reason ?? ''))
    .map((e) => `${e.reason}: ${e.message}`);
}

/** Events are not a kind the runner watches: re-read every 500 ms until `done` holds. */
async function awaitEvents(
  context: string,
  claim: string,
  done: (events: string[]) => boolean,
  timeoutMs: number,
): Promise<string[]> {
  for (const deadline = Date.now() + timeoutMs; ; await new Promise((r) => setTimeout(r, 500))) {
    const events = provisionerEventsOn(context, claim);
    if (done(events)) return events;
    if (Date.now() > deadline)
      throw new Error(`claim ${claim}: events ${JSON.stringify(events)} after ${timeoutMs} ms`);
  }
}

/** local-path-provisioner at build.sh's version, from its module alone (no qualifier.go): the control. */
function buildUpstreamLocalPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'local-path-upstream-'));
  const version = /^LOCAL_PATH_VERSION=(\S+)$/m.exec(
    readFileSync(join(root, 'scripts', 'local-cluster', 'lib.sh'), 'utf8'),
  )![1];
  execFileSync('go', ['install', `github.com/rancher/local-path-provisioner@${version}`], {
    cwd: dir,
    env: { ...process.env, GOBIN: dir, CGO_ENABLED: '0', GOFLAGS: '-buildvcs=false' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return join(dir, 'local-path-provisioner');
}

/** Claim name → its volume, for the profile's claims (all Bound). */
async function volumesOf(profile: string): Promise<Map<string, PersistentVolume>> {
  const claims = (await kube.list('PersistentVolumeClaim', { labelSelector: profileSelector(profile) })).items;
  const volumes = new Map<string, PersistentVolume>();
  for (const c of claims) {
    expect({ claim: c.metadata.name, phase: c.status?.phase }).toEqual({ claim: c.metadata.name, phase: 'Bound' });
    volumes.set(c.metadata.name, await kube.get('PersistentVolume', c.spec?.volumeName ?? ''));
  }
  return volumes;
}

/**
 * Watches local-path's helper pods until one named helper-pod-delete-<volume> has Succeeded for each
 * of `volumes`; returns those pods as last seen. local-path deletes each pod once it has succeeded,
 * so the watch, started before the destroy, is what sees them.
 */
function awaitTeardownPods(k: Kube, volumes: readonly string[], timeoutSeconds: number): Promise<Map<string, Pod>> {
  const seen = new Map<string, Pod>();
  return waitFor(k, [{ key: 'pod', kind: 'Pod', namespace: HELPER_NAMESPACE }], {
    what: `local-path's teardown helper pods for ${volumes.join(', ')}`,
    timeoutSeconds,
    check: (snap) => {
      for (const p of objectsOf(snap, 'pod', 'Pod')) if (p.status?.phase === 'Succeeded') seen.set(p.metadata.name, p);
      return volumes.every((v) => seen.has(`helper-pod-delete-${v}`)) ? seen : undefined;
    },
  });
}

test("the committed profiles name the node's view of its disk, where each cluster's node sees its own mounts", async () => {
  expect(env.NODE_VIEW_DIR).toBe(NODE_VIEW_DIR);
  expect((await loadProfile('local-node')).storage.nodePath).toBe(`${NODE_VIEW_DIR}/volumes`);
  for (const fs of ['ext4', 'xfs'] as const) {
    expect((await loadProfile(`local-node-${fs}`)).storage.nodePath).toBe(FILE_SYSTEMS[fs].onNode);
    // In the node's mount namespace the path is this cluster's loop device, the one mounted on the host.
    const hostMount = execFileSync('findmnt', ['-n', '-o', 'FSTYPE,SOURCE', '--mountpoint', FILE_SYSTEMS[fs].onHost], {
      encoding: 'utf8',
    })
      .trim()
      .split(/\s+/);
    expect(nodeMountAt(FILE_SYSTEMS[fs].onNode)).toEqual(hostMount);
    expect(hostMount[0]).toBe(fs);
  }
  // On the host the path is no mount at all: another cluster's node (the user's) sees its own disk there.
  expect(spawnSync('mountpoint', ['-q', FILE_SYSTEMS.ext4.onNode]).status).not.toBe(0);
});

describe.each(['ext4', 'xfs'] as const)('local-node-%s', (fs: FileSystem) => {
  // The committed profile as it is: its nodePath is the node's view, the same on every local cluster.
  const name = `local-node-${fs}`;
  afterAll(async () => {
    await runCli(['destroy', `--profile=${name}`, '--timeout=120']);
  });

  test(`every claim is a directory made by local-path on the node's ${fs} mount`, async () => {
    expectExit(await runCli(['deploy', `--profile=${name}`, '--timeout=240']), 0);
    const volumes = await volumesOf(name);
    expect([...volumes.keys()].sort()).toEqual([
      'data-etcd-0',
      'data-sandstore-0',
      'data-sandstore-1',
      'data-sandstore-2',
    ]);
    for (const [claim, pv] of volumes) {
      const dir = pv.spec?.hostPath?.path ?? '';
      expect({
        claim,
        madeBy: pv.metadata.annotations?.['local.path.provisioner/selected-node'],
        underMount: dir.startsWith(`${FILE_SYSTEMS[fs].onNode}/`),
        isDir: statSync(onNode(dir)).isDirectory(),
        fsType: nodeFsType(dir),
        sameDevice: statSync(onNode(dir)).dev === statSync(FILE_SYSTEMS[fs].onHost).dev,
      }).toEqual({ claim, madeBy: env.NODE_NAME, underMount: true, isDir: true, fsType: fs, sameDevice: true });
    }
    // Sand Store wrote its state there.
    expect(existsSync(join(onNode(volumes.get('data-sandstore-0')?.spec?.hostPath?.path ?? ''), 'state.db'))).toBe(
      true,
    );
  });

  test("destroy removes the directories through local-path's teardown helper pods on the node", async () => {
    const volumes = await volumesOf(name);
    const names = [...volumes.values()].map((pv) => pv.metadata.name);
    const teardown = awaitTeardownPods(kubeFor(), names, 180);
    expectExit(await runCli(['destroy', `--profile=${name}`, '--timeout=180']), 0);
    const pods = await teardown;
    for (const pv of volumes.values()) {
      const pod = pods.get(`helper-pod-delete-${pv.metadata.name}`);
      const dir = pv.spec?.hostPath?.path ?? '';
      // The helper pod ran `sh /script/teardown` (rm -rf "$VOL_DIR") on the node, on the mount's directory.
      expect({
        node: pod?.spec?.nodeName,
        command: pod?.spec?.containers[0]?.command,
        hostPath: pod?.spec?.volumes?.find((v) => v.name === 'data')?.hostPath?.path,
        onDisk: existsSync(onNode(dir)),
      }).toEqual({
        node: env.NODE_NAME,
        command: ['/bin/sh', '/script/teardown'],
        hostPath: `${FILE_SYSTEMS[fs].onNode}/`,
        onDisk: false,
      });
    }
    expect((await kube.list('PersistentVolume')).items.filter((pv) => names.includes(pv.metadata.name))).toEqual([]);
  });
});

/**
 * On a cluster of its own (its provisioner is stopped, and it is taken down): without local-path
 * a released volume's directory stays on the mount; the next up.sh restarts local-path, which then
 * removes it. down.sh --keep-state unmounts and detaches both images and keeps them; up.sh mounts
 * them again with their data; down.sh leaves no mount, loop device, image or directory behind.
 */
describe("the file systems and local-path across the node's life cycle", () => {
  const NAME = `${CONTEXT}-lp`;
  const script = (s: string, ...args: string[]) =>
    spawnSync('bash', [`scripts/local-cluster/${s}`, '--name', NAME, ...args], { cwd: root, encoding: 'utf8' });
  const mountsUnder = (dir: string) =>
    readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[1])
      .filter((m) => m?.startsWith(`${dir}/`));
  const loopsOf = (image: string) =>
    execFileSync('losetup', ['-n', '-O', 'NAME', '-j', image], { encoding: 'utf8' }).trim();
  afterAll(() => {
    spawnSync('bash', ['scripts/local-cluster/down.sh', '--name', NAME], { cwd: root, stdio: 'inherit' });
  });

  test("local-path leaves a kwok node's claim to the test provisioner; built without local-path/qualifier.go it fails on it", async () => {
    const up = script('up.sh');
    expect({ code: up.status, stderr: up.stderr }).toMatchObject({ code: 0 });
    const own = clusterEnv(NAME);
    const k = kubeFor(NAME);
    const pidOf = (c: string) => Number(readFileSync(join(own.CLUSTER_DIR, 'pids', `${c}.pid`), 'utf8'));
    // The test provisioner stopped: nothing binds a kwok node's claim, whoever looks at it.
    const testProvisioner = pidOf('provisioner');
    process.kill(testProvisioner, 'SIGTERM');
    await awaitExit(testProvisioner, 30_000);
    await k.apply({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: 'kwok', namespace: 'default' },
      spec: {
        storageClassName: 'local-path',
        accessModes: ['ReadWriteOnce'],
        resources: { requests: { storage: '16Mi' } },
      },
    });
    await k.apply({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'kwok', namespace: 'default' },
      spec: {
        nodeSelector: { 'kubernetes.io/hostname': 'kwok-ssd-0' },
        tolerations: [{ operator: 'Exists' }],
        containers: [{ name: 'c', image: 'x' }],
        volumes: [{ name: 'd', persistentVolumeClaim: { claimName: 'kwok' } }],
      },
    });
    // Handed to the external provisioner (kube-controller-manager's annotation), then a claim on the
    // real node provisioned by local-path after it: local-path has had the kwok claim in its queue.
    await waitFor(
      k,
      [{ key: 'c', kind: 'PersistentVolumeClaim', namespace: 'default', fieldSelector: 'metadata.name=kwok' }],
      {
        what: 'the kwok claim to be handed to rancher.io/local-path',
        timeoutSeconds: 60,
        check: (s) =>
          objectsOf(s, 'c').find(
            (c) => c.metadata.annotations?.['volume.kubernetes.io/storage-provisioner'] === 'rancher.io/local-path',
          ),
      },
    );
    await k.apply({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: 'real', namespace: 'default' },
      spec: {
        storageClassName: 'local-path-xfs',
        accessModes: ['ReadWriteOnce'],
        resources: { requests: { storage: '16Mi' } },
      },
    });
    await k.apply({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'real', namespace: 'default' },
      spec: {
        nodeSelector: { 'node.sandstore.io/runtime': 'containerd' },
        terminationGracePeriodSeconds: 0,
        tolerations: [{ key: 'node.sandstore.io/runtime', operator: 'Exists', effect: 'NoSchedule' }],
        containers: [{ name: 'c', image: 'localhost:5000/pause:3.9' }],
        volumes: [{ name: 'd', persistentVolumeClaim: { claimName: 'real' } }],
      },
    });
    await waitFor(
      k,
      [{ key: 'c', kind: 'PersistentVolumeClaim', namespace: 'default', fieldSelector: 'metadata.name=real' }],
      {
        what: "the real node's claim to be Bound",
        timeoutSeconds: 90,
        check: (s) => objectsOf(s, 'c', 'PersistentVolumeClaim').find((c) => c.status?.phase === 'Bound'),
      },
    );
    expect(provisionerEventsOn(NAME, 'kwok')).toEqual([]);

    // The same version built from its module alone: it takes the kwok claim, and fails on it.
    const upstream = buildUpstreamLocalPath();
    const localPath = pidOf('local-path');
    process.kill(localPath, 'SIGTERM');
    await awaitExit(localPath, 30_000);
    const unguarded = spawn(
      upstream,
      [
        'start',
        '--kubeconfig',
        join(own.CLUSTER_DIR, 'kubeconfigs', 'admin.kubeconfig'),
        '--namespace',
        HELPER_NAMESPACE,
        '--configmap-name',
        'local-path-config',
        '--service-account-name',
        'local-path-provisioner-service-account',
      ],
      { stdio: 'ignore' },
    );
    try {
      const failed = await awaitEvents(
        NAME,
        'kwok',
        (events) => events.some((e) => e.startsWith('ProvisioningFailed')),
        60_000,
      );
      expect(failed).toContainEqual(
        expect.stringMatching(/^ProvisioningFailed: .*config doesn't contain node kwok-ssd-0/),
      );
    } finally {
      unguarded.kill('SIGTERM');
      rmSync(dirname(upstream), { recursive: true, force: true });
    }
    // up.sh brings both provisioners back; the test provisioner binds the claim.
    const repaired = script('up.sh');
    expect({ code: repaired.status, stderr: repaired.stderr }).toMatchObject({ code: 0 });
    await waitFor(
      kubeFor(NAME),
      [{ key: 'c', kind: 'PersistentVolumeClaim', namespace: 'default', fieldSelector: 'metadata.name=kwok' }],
      {
        what: 'the kwok claim to be Bound',
        timeoutSeconds: 60,
        check: (s) => objectsOf(s, 'c', 'PersistentVolumeClaim').find((c) => c.status?.phase === 'Bound'),
      },
    );
    const volume = await kubeFor(NAME).get(
      'PersistentVolume',
      (await kubeFor(NAME).get('PersistentVolumeClaim', 'kwok', 'default')).spec?.volumeName ?? '',
    );
    expect(volume.metadata.labels).toMatchObject({ 'sandstore.io/local-provisioner': 'true' });
    for (const name of ['kwok', 'real']) {
      await kubeFor(NAME).delete('Pod', name, 'default');
      await kubeFor(NAME).delete('PersistentVolumeClaim', name, 'default');
    }
  });

  test('a stopped local-path leaves the directory; restarted, it removes it; down leaves nothing mounted or attached', async () => {
    const up = script('up.sh');
    expect({ code: up.status, stderr: up.stderr }).toMatchObject({ code: 0 });
    const own = clusterEnv(NAME);
    const k = kubeFor(NAME);
    const images = ['ext4', 'xfs'].map((fs) => join(own.CLUSTER_DIR, 'node', 'fs', `${fs}.img`));
    expect([fsTypeOf(own.NODE_EXT4_DIR), fsTypeOf(own.NODE_XFS_DIR)]).toEqual(['ext4', 'xfs']);

    // A claim on the ext4 class, used by a pod on the node.
    await k.apply({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: 'c', namespace: 'default' },
      spec: {
        storageClassName: 'local-path-ext4',
        accessModes: ['ReadWriteOnce'],
        resources: { requests: { storage: '16Mi' } },
      },
    });
    await k.apply({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p', namespace: 'default' },
      spec: {
        nodeSelector: { 'node.sandstore.io/runtime': 'containerd' },
        tolerations: [{ key: 'node.sandstore.io/runtime', operator: 'Exists', effect: 'NoSchedule' }],
        terminationGracePeriodSeconds: 0,
        containers: [
          { name: 'c', image: `localhost:5000/pause:3.9`, volumeMounts: [{ name: 'd', mountPath: '/data' }] },
        ],
        volumes: [{ name: 'd', persistentVolumeClaim: { claimName: 'c' } }],
      },
    });
    await waitFor(k, [{ key: 'pod', kind: 'Pod', namespace: 'default', fieldSelector: 'metadata.name=p' }], {
      what: 'pod p to be Ready',
      timeoutSeconds: 90,
      check: (s) => objectsOf(s, 'pod', 'Pod').find(podReady),
    });
    const pv = await k.get(
      'PersistentVolume',
      (await k.get('PersistentVolumeClaim', 'c', 'default')).spec?.volumeName ?? '',
    );
    const dir = pv.spec?.hostPath?.path ?? '';
    writeFileSync(join(onNode(dir, NAME), 'kept'), 'data');

    // down --keep-state: nothing mounted or attached, the images kept; up: mounted again, data there.
    const kept = script('down.sh', '--keep-state');
    expect({ code: kept.status, stderr: kept.stderr }).toMatchObject({ code: 0 });
    expect({
      mounts: mountsUnder(own.NODE_STORAGE_DIR),
      loops: images.map(loopsOf),
      images: images.map(existsSync),
    }).toEqual({ mounts: [], loops: ['', ''], images: [true, true] });
    const again = script('up.sh');
    expect({ code: again.status, stderr: again.stderr }).toMatchObject({ code: 0 });
    expect({ fsType: nodeFsType(dir, NAME), data: readFileSync(join(onNode(dir, NAME), 'kept'), 'utf8') }).toEqual({
      fsType: 'ext4',
      data: 'data',
    });

    // local-path stopped: the claim's deletion releases the volume, and nothing removes its directory.
    const lp = Number(readFileSync(join(own.CLUSTER_DIR, 'pids', 'local-path.pid'), 'utf8'));
    process.kill(lp, 'SIGTERM');
    await awaitExit(lp, 30_000);
    await k.delete('Pod', 'p', 'default');
    await k.delete('PersistentVolumeClaim', 'c', 'default');
    await waitFor(k, [{ key: 'pv', kind: 'PersistentVolume', fieldSelector: `metadata.name=${pv.metadata.name}` }], {
      what: 'the volume to be Released',
      timeoutSeconds: 60,
      check: (s) => objectsOf(s, 'pv', 'PersistentVolume').find((v) => v.status?.phase === 'Released'),
    });
    expect(existsSync(onNode(dir, NAME))).toBe(true);

    // up.sh repairs the cluster (local-path is one of its processes); local-path then removes it.
    const repaired = script('up.sh');
    expect({ code: repaired.status, stderr: repaired.stderr }).toMatchObject({
      code: 0,
      stderr: expect.stringContaining('restarting its processes'),
    });
    await waitFor(
      kubeFor(NAME),
      [{ key: 'pv', kind: 'PersistentVolume', fieldSelector: `metadata.name=${pv.metadata.name}` }],
      {
        what: 'local-path to delete the released volume',
        timeoutSeconds: 120,
        check: (s) => (objectsOf(s, 'pv').length === 0 ? true : undefined),
      },
    );
    expect(existsSync(onNode(dir, NAME))).toBe(false);

    const down = script('down.sh');
    expect({ code: down.status, stderr: down.stderr }).toMatchObject({ code: 0 });
    expect({
      mounts: mountsUnder(own.NODE_STORAGE_DIR),
      storage: existsSync(own.NODE_STORAGE_DIR),
      images: images.map(existsSync),
    }).toEqual({ mounts: [], storage: false, images: [false, false] });
    expect(execFileSync('losetup', ['-a'], { encoding: 'utf8' })).not.toContain(own.CLUSTER_DIR);
  });
});
