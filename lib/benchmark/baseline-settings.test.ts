import { distDir } from '../paths.js';
import { loadProfile } from '../profiles.js';
import { RefusedError } from '../errors.js';
import { readManifests } from '../runner/manifests.js';
import type { Manifest } from '../synth.js';
import { find, ofKind } from '../../test/helpers.js';
import { isManifestOf } from '../k8s-types.js';
import { baselineSettings, numberedLayout } from './baseline-settings.js';

/**
 * The baseline's settings against the profiles' own dist/ (the reviewed YAML): the same variables,
 * values and flags as the StatefulSets', except those the settings list as differences, each with
 * the pod's value; addresses that lead to the processes' own ports.
 */

async function manifestsOf(name: string): Promise<Manifest[]> {
  return readManifests(distDir(), await loadProfile(name));
}

const layoutFor = (manifests: readonly Manifest[]) =>
  numberedLayout(manifests, { dataRoot: '/data', etcdBase: 40_000, nodeBase: 41_000 });

const statefulSet = (manifests: readonly Manifest[], name: string) => find(manifests, 'StatefulSet', name);
const configMap = (manifests: readonly Manifest[]) => ofKind(manifests, 'ConfigMap')[0]?.data ?? {};

test(
  "each Sand Store node has the StatefulSet's variables and flags; every value that " +
    "differs is listed with the pod's value",
  async () => {
    const manifests = await manifestsOf('local-node');
    const settings = baselineSettings(manifests, layoutFor(manifests));
    const container = statefulSet(manifests, 'sandstore').spec.template.spec.containers.find(
      (c) => c.name === 'sandstore',
    );
    const podEnv: Record<string, string> = { ...configMap(manifests) };
    for (const e of container?.env ?? []) podEnv[e.name] = e.value ?? `(${e.valueFrom.fieldRef.fieldPath})`;
    // The leader handover is a container of the pod's alone (a roll's restart), named among the differences.
    expect(podEnv.LEADER_HANDOVER).toBeUndefined();
    expect(settings.differences.find((d) => d.setting.startsWith('sidecars'))?.kubernetes).toContain('leader handover');
    expect(settings.sandstore.command).toBeUndefined();
    const listed = new Map(
      settings.differences
        .filter((d) => d.setting.startsWith('Sand Store env '))
        .map((d) => [d.setting.slice('Sand Store env '.length), d.kubernetes]),
    );
    expect(settings.nodes.map((n) => n.name)).toEqual(['sandstore-0', 'sandstore-1', 'sandstore-2']);
    for (const node of settings.nodes) {
      expect(Object.keys(node.env).sort()).toEqual(Object.keys(podEnv).sort());
      for (const [k, v] of Object.entries(podEnv)) {
        if (node.env[k] !== v) expect({ k, listedAs: listed.get(k) }).toEqual({ k, listedAs: v });
      }
      expect(node.args).toEqual(container?.args);
    }
    // The Raft settings are not addresses: they are the same.
    for (const k of ['RAFT_MAX_BATCH_SIZE', 'RAFT_MAX_BATCH_WAIT_MS', 'RAFT_SNAPSHOT_THRESHOLD_LOGS'])
      expect(settings.nodes[0].env[k]).toBe(podEnv[k]);
    expect(settings.nodes.map((n) => [n.env.NODE_ID, n.env.LISTEN_ADDR, n.env.DATA_DIR])).toEqual([
      ['sandstore-0', '127.0.0.1:41000', '/data/sandstore-0'],
      ['sandstore-1', '127.0.0.1:41001', '/data/sandstore-1'],
      ['sandstore-2', '127.0.0.1:41002', '/data/sandstore-2'],
    ]);
    // etcd's client port (2379) of etcd-0 is 40000 in the layout; leaders are advertised at base + ordinal.
    expect(
      new Set(settings.nodes.map((n) => `${n.env.ETCD_ENDPOINTS} ${n.env.EXTERNAL_BASE_PORT} ${n.env.HOST_IP}`)),
    ).toEqual(new Set(['127.0.0.1:40000 41000 127.0.0.1']));
  },
);

test(
  'etcd keeps every flag, with its URLs on 127.0.0.1 at its own ports and its data in its ' +
    "folder; the membership keys are the Job's",
  async () => {
    const manifests = await manifestsOf('local-node');
    const settings = baselineSettings(manifests, layoutFor(manifests));
    const container = statefulSet(manifests, 'etcd').spec.template.spec.containers[0];
    const flags = (args: readonly string[]) => args.map((a) => a.split('=')[0]);
    expect(flags(settings.etcd[0].args)).toEqual(flags(container?.args ?? []));
    const arg = (flag: string) => settings.etcd[0].args.find((a) => a.startsWith(`${flag}=`));
    expect([
      arg('--listen-client-urls'),
      arg('--advertise-client-urls'),
      arg('--data-dir'),
      arg('--initial-cluster'),
      arg('--initial-cluster-token'),
    ]).toEqual([
      '--listen-client-urls=http://127.0.0.1:40000',
      '--advertise-client-urls=http://127.0.0.1:40000',
      '--data-dir=/data/etcd-0/data',
      '--initial-cluster=etcd-0=http://127.0.0.1:40001',
      '--initial-cluster-token=sandstore-node-etcd',
    ]);
    expect(settings.members.map((m) => [m.key, JSON.parse(m.value) as unknown])).toEqual(
      [0, 1, 2].map((i) => [
        `/sandstore/config/nodes/sandstore-${i}`,
        { id: `sandstore-${i}`, address: `127.0.0.1:${41_000 + i}`, role: 'voter' },
      ]),
    );
    expect(settings.sandstore.image).toBe('localhost:5000/sandstore-node:local-node-latest');
    expect(settings.etcdImage).toEqual({ image: 'localhost:5000/etcd:v3.5.9', command: ['etcd'] });
  },
);

test('three etcd members each reach the others at their own peer ports', async () => {
  const manifests = await manifestsOf('raft5-etcd3');
  const settings = baselineSettings(manifests, layoutFor(manifests));
  expect(settings.nodes).toHaveLength(5);
  const cluster = settings.etcd.map((e) => e.args.find((a) => a.startsWith('--initial-cluster='))!);
  expect(new Set(cluster)).toEqual(
    new Set([
      '--initial-cluster=etcd-0=http://127.0.0.1:40001,etcd-1=http://127.0.0.1:40011,etcd-2=http://127.0.0.1:40021',
    ]),
  );
  expect(settings.etcd.map((e) => e.address)).toEqual(['127.0.0.1:40000', '127.0.0.1:40010', '127.0.0.1:40020']);
  expect(settings.nodes[4].env.ETCD_ENDPOINTS).toBe('127.0.0.1:40000,127.0.0.1:40010,127.0.0.1:40020');
});

test('a variable the baseline has no value for (a Secret) is refused, naming it', async () => {
  const manifests = structuredClone(await manifestsOf('local-node'));
  const sandstore = manifests
    .filter((m) => isManifestOf(m, 'StatefulSet'))
    .find((m) => m.metadata.name === 'sandstore');
  sandstore?.spec?.template.spec?.containers
    .find((c) => c.name === 'sandstore')
    ?.env?.push({
      name: 'TOKEN',
      valueFrom: { secretKeyRef: { name: 's', key: 'k' } },
    });
  expect(() => baselineSettings(manifests, layoutFor(manifests))).toThrow(RefusedError);
  expect(() => baselineSettings(manifests, layoutFor(manifests))).toThrow(
    /cannot mirror this profile: container sandstore's TOKEN comes from \{"secretKeyRef":/,
  );
});
