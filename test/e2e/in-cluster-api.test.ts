import { expect } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Pod } from '../../lib/runner/kube.js';
import { objectsOf, waitFor } from '../../lib/runner/watch.js';
import { clusterEnv, kubeFor } from './harness.js';

/**
 * A pod on the real node reaches the API server as in-cluster clients do: through the `kubernetes`
 * Service (kubernetes.default.svc, 10.96.0.1:443), over HTTPS verified against the CA the kubelet
 * mounts, authenticated with the pod's ServiceAccount token (scripts/local-cluster/apiprobe). The
 * API server itself stays on 127.0.0.1: its advertised address, the Service's endpoint, is the node
 * IP, where nodeproxy listens inside the node's network namespace (scripts/local-cluster/README.md,
 * "The API server for pods").
 */
const kube = kubeFor();
const env = clusterEnv();
const NAMESPACE = `in-cluster-api-${randomBytes(3).toString('hex')}`;
/** What kube-apiserver advertised before it advertised the node's IP: no pod reaches it. */
const OLD_ADVERTISED = '10.255.0.1';

beforeAll(async () => {
  await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE } });
});
afterAll(async () => {
  await kube.delete('Namespace', NAMESPACE);
});

interface ProbeResult {
  readonly exitCode?: number;
  readonly out: { version?: string; user?: string; error?: string };
}

/**
 * Runs the probe in a pod on the real node until it exits; returns its exit code and the JSON line
 * it left in its termination message. `kubernetesAt`: the IP that kubernetes.default.svc resolves
 * to in that pod (/etc/hosts), else the cluster DNS answers (the `kubernetes` Service).
 */
async function probe(name: string, kubernetesAt?: string): Promise<ProbeResult> {
  const pod: Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NAMESPACE },
    spec: {
      restartPolicy: 'Never',
      nodeSelector: { 'node.sandstore.io/runtime': 'containerd' },
      tolerations: [{ key: 'node.sandstore.io/runtime', operator: 'Exists', effect: 'NoSchedule' }],
      ...(kubernetesAt ? { hostAliases: [{ ip: kubernetesAt, hostnames: ['kubernetes.default.svc'] }] } : {}),
      securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        {
          name: 'probe',
          image: 'localhost:5000/kube-api-probe:v1',
          // The tag stays when apiprobe/main.go changes (images.sh rebuilds and pushes it).
          imagePullPolicy: 'Always',
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
        },
      ],
    },
  };
  await kube.apply(pod);
  const done = await waitFor(
    kube,
    [{ key: 'pod', kind: 'Pod', namespace: NAMESPACE, fieldSelector: `metadata.name=${name}` }],
    {
      what: `pod ${name} to finish`,
      timeoutSeconds: 90,
      check: (s) =>
        objectsOf(s, 'pod', 'Pod').find((p) => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed'),
    },
  );
  const terminated = done.status?.containerStatuses?.[0]?.state?.terminated;
  return { exitCode: terminated?.exitCode, out: JSON.parse(terminated?.message ?? '{}') as ProbeResult['out'] };
}

/** Runs a command in the real node's network namespace. */
const inNode = (cmd: string, ...args: string[]) =>
  spawnSync('nsenter', [`--net=/run/netns/${env.NODE_NETNS}`, cmd, ...args], { encoding: 'utf8' });

test('the kubernetes Service leads a pod on the real node to the API server: TLS verified, its token accepted', async () => {
  const endpoints = await kube.get('Endpoints', 'kubernetes', 'default');
  expect(endpoints.subsets).toEqual([
    {
      addresses: [{ ip: env.NODE_IP }],
      ports: [{ name: 'https', port: Number(env.APISERVER_PORT), protocol: 'TCP' }],
    },
  ]);

  const r = await probe('probe');
  expect(r).toEqual({
    exitCode: 0,
    out: { version: 'v1.28.15', user: `system:serviceaccount:${NAMESPACE}:default` },
  });
});

test('control: the same pod, led to the endpoint the API server advertised before, cannot reach it', async () => {
  // A Service like `kubernetes` whose endpoint is the old one; the pod resolves kubernetes.default.svc
  // to it, so only where that name leads differs from the test above.
  const port = Number(env.APISERVER_PORT);
  await kube.apply({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'apiserver-before', namespace: NAMESPACE },
    spec: { ports: [{ name: 'https', port: 443, targetPort: port }] },
  });
  await kube.apply({
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name: 'apiserver-before', namespace: NAMESPACE },
    subsets: [{ addresses: [{ ip: OLD_ADVERTISED }], ports: [{ name: 'https', port }] }],
  });
  const service = await kube.get('Service', 'apiserver-before', NAMESPACE);
  // kube-proxy must have the Service's DNAT in place, else the pod meets its no-endpoint REJECT
  // instead. Its rules have no watch: read them until they are there.
  const dnat = `-j DNAT --to-destination ${OLD_ADVERTISED}:${port}`;
  for (const deadline = Date.now() + 30_000; !inNode('iptables-save', '-t', 'nat').stdout.includes(dnat);) {
    if (Date.now() > deadline) throw new Error(`kube-proxy did not program "${dnat}" within 30 s`);
    await new Promise((r) => setTimeout(r, 200));
  }

  const r = await probe('probe-before', service.spec?.clusterIP);
  expect(r.exitCode).toBe(1);
  // What a pod met before (issue 23): the node has no route to that address.
  expect(r.out.error).toMatch(/dial tcp [\d.]+:443: connect: network is unreachable/);
});

test('the API server listens on loopback only; the node namespace, where its endpoint is, has no way out', () => {
  const apiserverPid = readFileSync(join(env.CLUSTER_DIR, 'pids', 'kube-apiserver.pid'), 'utf8').trim();
  const listening = execFileSync('ss', ['-Hltnp'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes(`pid=${apiserverPid},`))
    .map((l) => l.trim().split(/\s+/)[3]);
  expect(listening).toEqual([`127.0.0.1:${env.APISERVER_PORT}`]);

  // The endpoint's listener is nodeproxy's, inside the node's namespace.
  const nodeproxyPid = readFileSync(join(env.CLUSTER_DIR, 'pids', 'nodeproxy.pid'), 'utf8').trim();
  const inNamespace = inNode('ss', '-Hltnp')
    .stdout.split('\n')
    .filter((l) => l.includes(`pid=${nodeproxyPid},`))
    .map((l) => l.trim().split(/\s+/)[3]);
  expect(inNamespace).toContain(`${env.NODE_IP}:${env.APISERVER_PORT}`);
  // No default route there: an answer to anyone beyond this machine has no way to leave.
  expect(inNode('ip', '-4', 'route', 'show', 'default').stdout).toBe('');
  const out = inNode('ip', '-4', 'route', 'get', '198.51.100.1');
  expect({ status: out.status, stderr: out.stderr.trim() }).toEqual({
    status: 2,
    stderr: 'RTNETLINK answers: Network is unreachable',
  });
});
