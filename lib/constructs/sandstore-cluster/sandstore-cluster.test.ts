import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { LabelKeys } from '../../labels.js';
import { quorum } from '../../validation.js';
import { find, synthesize } from '../../../test/helpers.js';
import { EtcdControlPlane } from '../etcd-control-plane/index.js';
import { LocalSsdStorage } from '../local-ssd-storage/index.js';
import { SandstoreCluster } from './sandstore-cluster.js';
import { MEMBERSHIP_TXN_ANNOTATION, membershipOfTxn } from '../membership-bootstrap/membership-txn.js';
import type { SandstoreClusterProps } from './sandstore-cluster-props.js';

const IMAGE = 'registry.example/sandstore-node:t1';

/** Sand Store's own container of the StatefulSet (the leader handover's comes first). */
function sandstoreContainer(sts: ReturnType<typeof build>['sts']) {
  const c = sts.spec.template.spec.containers.find((x: { name: string }) => x.name === 'sandstore');
  if (!c) throw new Error('no sandstore container');
  return c;
}

function build(props: Partial<SandstoreClusterProps> = {}, etcdReplicas = 1) {
  let cluster!: SandstoreCluster;
  let etcd!: EtcdControlPlane;
  const objects = synthesize(
    (chart) => {
      const storage = new LocalSsdStorage(chart, 'storage');
      etcd = new EtcdControlPlane(chart, 'etcd', { storage, replicas: etcdReplicas });
      cluster = new SandstoreCluster(chart, 'sandstore', { etcd, storage, image: IMAGE, ...props });
    },
    { namespace: 'bench', labels: { [LabelKeys.profile]: 'p', [LabelKeys.instance]: 'p' } },
  );
  return { cluster, etcd, objects, sts: find(objects, 'StatefulSet', 'sandstore') };
}

describe('SandstoreCluster', () => {
  test.each([3, 5, 9, 51])(
    '%i replicas: one membership entry per pod, and the bootstrap Job writes exactly those',
    (replicas) => {
      const { cluster, objects } = build({ replicas });
      expect(cluster.membershipBootstrap.membership.map((m) => JSON.parse(m.value) as unknown)).toEqual(
        Array.from({ length: replicas }, (_, i) => ({
          id: `sandstore-${i}`,
          address: `sandstore-${i}.bench.svc:8080`,
          role: 'voter',
        })),
      );
      // Each address is a Service of its own in front of exactly that pod (a stable virtual IP: a
      // restarted pod's new IP must not leave its peers dialing the old one), Ready or not.
      for (let i = 0; i < replicas; i++) {
        const peer = find(objects, 'Service', `sandstore-${i}`);
        expect(peer.spec.clusterIP).toBeUndefined();
        expect(peer.spec.publishNotReadyAddresses).toBe(true);
        expect(peer.spec.selector).toEqual({
          ...cluster.podSelector,
          'statefulset.kubernetes.io/pod-name': `sandstore-${i}`,
        });
        expect(peer.spec.ports).toEqual([{ name: 'grpc', port: 8080, targetPort: 'grpc' }]);
      }
      expect(cluster.membershipBootstrap.membership.map((m) => m.key)).toEqual(
        Array.from({ length: replicas }, (_, i) => `/sandstore/config/nodes/sandstore-${i}`),
      );
      const job = find(objects, 'Job', 'sandstore-membership-bootstrap').spec.template;
      const written = membershipOfTxn(job.metadata.annotations[MEMBERSHIP_TXN_ANNOTATION]);
      expect(new Set(written.map((m) => `${m.key}=${m.value}`))).toEqual(
        new Set(cluster.membershipBootstrap.membership.map((m) => `${m.key}=${m.value}`)),
      );
      // The same image as the nodes: the Job's shell and wget are the ones wait-for-membership uses.
      expect(job.spec.containers.map((c) => c.image)).toEqual([IMAGE]);
    },
  );

  test.each([1, 3, 5])('ETCD_ENDPOINTS lists the %i etcd members, as host:port without a scheme', (etcdReplicas) => {
    const { etcd, objects } = build({}, etcdReplicas);
    const endpoints = find(objects, 'ConfigMap', 'sandstore-config').data.ETCD_ENDPOINTS.split(',');
    expect(endpoints).toEqual([...etcd.clientEndpoints]);
    expect(endpoints).toHaveLength(etcdReplicas);
    for (const e of endpoints) expect(e).toMatch(/^etcd-\d+\.etcd\.bench\.svc:2379$/);
  });

  test(
    'at the most Raft and etcd members, in the longest namespace, the bootstrap Job fits in ' + 'half an etcd request',
    () => {
      const objects = synthesize(
        (chart) => {
          const etcd = new EtcdControlPlane(chart, 'etcd', { replicas: 7 });
          new SandstoreCluster(chart, 'sandstore', { etcd, image: IMAGE, replicas: 501 });
        },
        { namespace: 'n'.repeat(63) },
      );
      // Half: the API server adds defaults and managed fields to what it stores.
      expect(JSON.stringify(find(objects, 'Job', 'sandstore-membership-bootstrap')).length).toBeLessThan(
        (1.5 * 2 ** 20) / 2,
      );
    },
  );

  test.each([3, 5, 7, 51])('the disruption budget for %i replicas can never let quorum be lost', (replicas) => {
    const { objects } = build({ replicas });
    const minAvailable = find(objects, 'PodDisruptionBudget', 'sandstore').spec.minAvailable;
    // Whatever the budget lets evictions take, a majority stays.
    expect(minAvailable).toBeGreaterThanOrEqual(quorum(replicas));
    // And it still lets a node be drained one pod at a time.
    expect(replicas - Number(minAvailable)).toBeGreaterThanOrEqual(1);
  });

  test('runtime contract: NODE_ID is the pod name, LISTEN_ADDR, DATA_DIR on the claim, ports, probes', () => {
    const { objects, sts } = build();
    const node = sandstoreContainer(sts);
    expect(node.env).toContainEqual({ name: 'NODE_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } });
    expect(node.envFrom).toEqual([{ configMapRef: { name: 'sandstore-config' } }]);
    const config = find(objects, 'ConfigMap', 'sandstore-config').data;
    expect(config).toMatchObject({
      LISTEN_ADDR: ':8080',
      RAFT_MAX_BATCH_SIZE: '64',
      RAFT_MAX_BATCH_WAIT_MS: '10',
      RAFT_SNAPSHOT_THRESHOLD_LOGS: '1000',
    });
    expect(node.volumeMounts).toContainEqual({ name: 'data', mountPath: config.DATA_DIR });
    expect(node.ports.map((p) => p.containerPort)).toEqual([8080, 2112]);
    expect(node.startupProbe && node.readinessProbe && node.livenessProbe).toBeTruthy();
    // Ready when it takes gRPC connections; alive while its HTTP server answers (a TCP connect to
    // an open socket succeeds even when the program is stuck), so the two probes differ.
    expect(node.readinessProbe.tcpSocket).toEqual({ port: 'grpc' });
    expect(node.livenessProbe.httpGet).toEqual({ path: '/metrics', port: 'metrics' });
    expect(sts.spec).toMatchObject({
      podManagementPolicy: 'Parallel',
      updateStrategy: { type: 'RollingUpdate' },
      serviceName: 'sandstore-headless',
    });
    expect(sts.spec.template.metadata.annotations).toMatchObject({
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': '2112',
    });
  });

  test('pods wait for their membership in etcd before starting, so start-up races end cleanly', () => {
    const { sts } = build();
    const init = sts.spec.template.spec.initContainers[0];
    expect(init.name).toBe('wait-for-membership');
    expect(init.command.join(' ')).toContain('/v3/kv/range');
    // etcd's client Service, not the members' names in the ConfigMap: the gate may ask before
    // etcd's pod has an address, when a member's name is NXDOMAIN (and cached so).
    expect(init.env).toContainEqual({ name: 'ETCD_ENDPOINTS', value: 'etcd-client.bench.svc:2379' });
  });

  test("a first attempt that hangs (its SYN's REJECT lost on the pod's own node) does not hold up the next", async () => {
    const { sts } = build();
    const init = sts.spec.template.spec.initContainers[0];
    // etcd's JSON gateway, faked: the first request never gets an answer (as a SYN whose REJECT was
    // lost waits for TCP's retransmission), every later one finds the key. The script runs in a
    // real busybox shell with busybox's own wget and timeout, as in the image.
    let requests = 0;
    const server = createServer((_req, res) => {
      if (requests++ === 0) return;
      res.end('{"kvs":[{"key":"k"}]}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    // Kubernetes turns `$$` in a command into `$`.
    const script = init.command[2].replaceAll('$$', '$');
    const started = performance.now();
    const shell = spawn('busybox', ['sh', '-c', script], {
      env: {
        PATH: process.env.PATH,
        NODE_ID: 'sandstore-0',
        ETCD_ENDPOINTS: `127.0.0.1:${port}`,
        MEMBERSHIP_PREFIX: '/m/',
      },
    });
    let stdout = '';
    shell.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    // 'exit', not 'close': attempts still running hold stdout open (in the pod they end with PID 1).
    const status = await new Promise<number | null>((resolve) => shell.on('exit', resolve));
    const seconds = (performance.now() - started) / 1000;
    await new Promise((resolve) => shell.on('close', resolve));
    server.closeAllConnections();
    server.close();
    expect(status).toBe(0);
    expect(stdout).toMatch(
      new RegExp(`^membership of sandstore-0 found in etcd at 127.0.0.1:${port} after [1-9]\\d* earlier tries$`, 'm'),
    );
    // One attempt at a time would have waited out the first one's 3 s bound.
    expect(seconds).toBeLessThan(2.5);
  });

  test("leader handover: a container before Sand Store's, which starts only after its postStart, with its image's own entrypoint", () => {
    const on = build().sts.spec.template.spec.containers;
    expect(on.map((c: { name: string }) => c.name)).toEqual(['leader-handover', 'sandstore', 'events']);
    const [handover, node, events] = [on[0], on[1], on[2]];
    expect(handover?.command).toEqual(['sh', '-c', expect.stringContaining('nc -l -p 8080')]);
    expect(handover?.env?.map((e) => e.name)).toEqual(['LEADER_HANDOVER']);
    expect(handover?.env?.[0]?.value).toContain('printf');
    expect(handover?.lifecycle?.postStart?.exec?.command).toEqual([
      'sh',
      '-c',
      expect.stringContaining('until [ -e /run/leader-handover/leader-handover.released ]'),
    ]);
    // Its flags in its own writable directory; Sand Store's state read-only.
    expect(handover?.volumeMounts).toEqual([
      { name: 'data', mountPath: '/var/lib/sandstore', readOnly: true },
      { name: 'leader-handover', mountPath: '/run/leader-handover' },
    ]);
    expect(handover?.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true });
    // Sand Store runs as its image says: no command, its arguments, its TCP startup probe.
    expect(node?.command).toBeUndefined();
    expect(node?.args).toEqual(['--server', 'node']);
    expect(node?.startupProbe).toMatchObject({ tcpSocket: { port: 'grpc' }, periodSeconds: 1 });
    expect(events?.command?.[2]).toContain('trap "sleep 2; exit 0" TERM INT');

    const off = build({ leaderHandover: false }).sts.spec.template.spec;
    expect(off.containers.map((c: { name: string }) => c.name)).toEqual(['sandstore', 'events']);
    expect(off.volumes.map((v: { name: string }) => v.name)).not.toContain('leader-handover');
    expect(off.containers[0]?.command).toBeUndefined();
    expect(off.containers[1]?.command?.[2]).toContain('trap "exit 0" TERM INT');
  });

  test('claim template from the SSD class with the profile labels; SSD placement; anti-affinity across hosts', () => {
    const { sts } = build({ storageSize: '50Gi' });
    const claim = sts.spec.volumeClaimTemplates[0];
    expect(claim.spec).toMatchObject({
      storageClassName: 'sandstore-local-ssd',
      resources: { requests: { storage: '50Gi' } },
    });
    expect(claim.metadata.labels).toMatchObject({
      [LabelKeys.profile]: 'p',
      [LabelKeys.component]: 'data-plane',
      [LabelKeys.name]: 'sandstore',
    });
    const pod = sts.spec.template.spec;
    expect(pod.nodeSelector).toEqual({ 'node.sandstore.io/disk': 'ssd' });
    expect(
      pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey,
    ).toBe('kubernetes.io/hostname');
  });

  test(
    'the data plane advertises its leader at the node port: EXTERNAL_BASE_PORT, and HOST_IP ' + 'or ADVERTISE_HOST',
    () => {
      const byHostIp = find(
        build({ externalAccess: { basePort: 31000 } }).objects,
        'ConfigMap',
        'sandstore-config',
      ).data;
      expect(byHostIp.EXTERNAL_BASE_PORT).toBe('31000');
      expect(byHostIp.ADVERTISE_HOST).toBeUndefined();
      const byHost = find(
        build({ externalAccess: { advertiseHost: '192.168.1.20' } }).objects,
        'ConfigMap',
        'sandstore-config',
      ).data;
      expect(byHost).toMatchObject({ EXTERNAL_BASE_PORT: '30080', ADVERTISE_HOST: '192.168.1.20' });
      const { sts } = build({ externalAccess: {} });
      expect(sandstoreContainer(sts).env).toContainEqual({
        name: 'HOST_IP',
        valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } },
      });
    },
  );

  test('the smoke-test Job targets every node and is applied only on request', () => {
    const { cluster, objects } = build({ replicas: 5 });
    const job = find(objects, 'Job', 'sandstore-smoke-test');
    expect(job.metadata.annotations['sandstore.io/deploy-phase']).toBe('on-demand');
    expect(job.spec.template.spec.containers[0].env).toEqual([
      { name: 'SANDSTORE_SEEDS', value: cluster.nodeAddresses.join(',') },
    ]);
    expect(() => find(build({ smokeTest: false }).objects, 'Job', 'sandstore-smoke-test')).toThrow();
  });

  test('imagePullSecret: every pod of the image (StatefulSet, membership Job, smoke test) pulls with it; left out, none names one', () => {
    const { objects, sts } = build({ imagePullSecret: 'registry-login' });
    const jobs = ['sandstore-smoke-test', 'sandstore-membership-bootstrap'];
    expect(sts.spec.template.spec.imagePullSecrets).toEqual([{ name: 'registry-login' }]);
    for (const job of jobs)
      expect(find(objects, 'Job', job).spec.template.spec.imagePullSecrets).toEqual([{ name: 'registry-login' }]);
    const without = build();
    expect(without.sts.spec.template.spec.imagePullSecrets).toBeUndefined();
    for (const job of jobs)
      expect(find(without.objects, 'Job', job).spec.template.spec.imagePullSecrets).toBeUndefined();
  });

  test.each([
    [{ replicas: 4 }, /replicas 4; expected an odd whole number from 3 to 501/],
    [{ replicas: 1 }, /replicas 1; expected an odd whole number from 3 to 501/],
    [
      { image: 'registry.example/sandstore-node' },
      /image "registry.example\/sandstore-node"; expected an image reference with a tag/,
    ],
    [{ imagePullSecret: 'Login!' }, /imagePullSecret "Login!"; expected .*DNS/],
    [{ storageSize: '20GB' }, /storageSize "20GB"; expected a Kubernetes quantity such as "20Gi"/],
    [{ storageSize: '' }, /storageSize ""; expected a Kubernetes quantity such as "20Gi" or "512Mi", greater than 0/],
    [
      { resources: { requests: { cpu: '1', memory: '1Gi' }, limits: { cpu: '999m', memory: '1Gi' } } },
      /resources.limits.cpu "999m"; expected at least resources.requests.cpu, "1"/,
    ],
    [
      { resources: { requests: { cpu: '1', memory: '0Mi' }, limits: { cpu: '1', memory: '1Gi' } } },
      /resources.requests.memory "0Mi"; expected .*in whole bytes .*at least "12Mi"/,
    ],
    [
      { externalAccess: { advertiseHost: ' 192.168.1.20' } },
      /externalAccess.advertiseHost " 192.168.1.20"; expected a host name or IP address/,
    ],
    [
      { externalAccess: { advertiseHost: 'fd00::20' } },
      /externalAccess.advertiseHost "fd00::20"; expected a host name or IP address/,
    ],
    [{ raft: { maxBatchSize: 0 } }, /raft\.maxBatchSize 0; expected a whole number from 1 to 10000/],
    [{ raft: { maxBatchWaitMs: 2.5 } }, /raft\.maxBatchWaitMs 2.5/],
    [{ replicas: 503 }, /replicas 503; expected an odd whole number from 3 to 501/],
    [
      { raft: { snapshotThresholdLogs: 1e21 } },
      /raft\.snapshotThresholdLogs 1e\+21; expected a whole number from 1 to 10000/,
    ],
    [
      { raft: { maxBatchWaitMs: 9_223_372_036_854 } },
      /raft\.maxBatchWaitMs 9223372036854; expected a whole number from 1 to 10000/,
    ],
    [{ externalAccess: { basePort: 29999 } }, /basePort 29999; expected a whole number from 30000 to 32767/],
    [{ externalAccess: { basePort: 32768 } }, /basePort 32768; expected a whole number from 30000 to 32767/],
    [
      { replicas: 5, externalAccess: { basePort: 32765 } },
      /basePort 32765; expected at most 32763: with 5 Raft replicas the last node port would be 32769, above 32767/,
    ],
  ])('rejects %j naming the field, the value and the accepted form', (props, message) => {
    expect(() => build(props as Partial<SandstoreClusterProps>)).toThrow(message);
  });
});
