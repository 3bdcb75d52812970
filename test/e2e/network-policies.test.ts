import { expect } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import type { ObjectOf, Pod } from '../../lib/runner/kube.js';
import { objectsOf, waitFor } from '../../lib/runner/watch.js';
import { LabelKeys, profileSelector } from '../../lib/labels.js';
import { clusterEnv, expectExit, kubeFor, podReady, runCli } from './harness.js';

/**
 * The profile's NetworkPolicies, enforced on the real node by kube-router's firewall
 * (scripts/local-cluster/node.sh), tried with real connections from real pods: Sand Store has no
 * authentication and its etcd client no TLS, so these policies are all that keeps other pods away
 * from Sand Store's membership in etcd. The last test deletes the policies and tries the same
 * connections again: they then succeed, so the tests before it can fail.
 *
 * kube-router rejects a forbidden connection (ICMP port unreachable), so the client sees it refused
 * at once; the probe tells "connected", "refused" and "timed out" (no answer within its 5 s connect
 * timeout) apart, and every port it is refused on here is one that etcd listens on (the last test).
 */
const PROFILE = 'local-node';
const NAMESPACE = 'sandstore-node';
const OTHER = `netpol-other-${randomBytes(3).toString('hex')}`;
const kube = kubeFor();
const env = clusterEnv();
const kubectl = (...args: string[]) =>
  execFileSync(env.KUBECTL, ['--kubeconfig', env.KUBECONFIG_CLUSTER, ...args], { encoding: 'utf8' });
/** The node's iptables rules (kube-router's and kube-proxy's): in its network namespace. */
const nodeRules = () =>
  spawnSync('nsenter', [`--net=/run/netns/${env.NODE_NETNS}`, 'iptables-save', '-t', 'filter'], { encoding: 'utf8' })
    .stdout;
/** kube-router's rule that sends what reaches a pod through `policy`'s chain: there while the policy selects a pod. */
const policyRule = (policy: string) => `"run through nw policy ${policy}"`;

/** "connected", "refused", "timed out", or what else nc said. */
type Outcome = string;

/**
 * kube-router programs iptables, which has no watch: read the node's rules until `done` holds (at
 * most 60 s). What it waits for is a rule, never a time.
 */
async function untilRules(what: string, done: (rules: string) => boolean): Promise<void> {
  for (const deadline = Date.now() + 60_000; !done(nodeRules());) {
    if (Date.now() > deadline) throw new Error(`kube-router did not ${what} within 60 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Runs a busybox pod on the real node (restricted Pod Security) that tries each target once
 * (`label host port`) with a 5 s connect timeout and resolves `resolve` through the cluster DNS;
 * returns each target's outcome and the address the name resolved to. Labels hold no spaces.
 */
async function probe(
  name: string,
  namespace: string,
  targets: Record<string, string>,
  resolve: string,
): Promise<{ outcomes: Record<string, Outcome>; resolved: string }> {
  const script = [
    'for t; do set -- $t',
    // -e true: close as soon as connected (etcd says nothing first)
    '  o=$(nc -w 5 "$2" "$3" -e true </dev/null 2>&1); rc=$?',
    '  case "$rc:$o" in 0:*) v=connected ;; *refused*) v=refused ;; *"timed out"*) v="timed out" ;; *) v="$o" ;; esac',
    '  echo "$1=$v" >>/dev/termination-log',
    'done',
    `echo "resolved=$(nslookup ${resolve} 2>&1 | sed -n 's/^Address: //p' | tail -n 1)" >>/dev/termination-log`,
  ].join('\n');
  const pod: Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: { 'app.kubernetes.io/name': 'netpol-probe' } },
    spec: {
      restartPolicy: 'Never',
      nodeSelector: { 'node.sandstore.io/runtime': 'containerd' },
      tolerations: [{ key: 'node.sandstore.io/runtime', operator: 'Exists', effect: 'NoSchedule' }],
      securityContext: { runAsNonRoot: true, runAsUser: 65534, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        {
          name: 'probe',
          image: 'localhost:5000/busybox:1.35.0',
          command: ['sh', '-c', script, 'probe', ...Object.entries(targets).map(([k, v]) => `${k} ${v}`)],
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
        },
      ],
    },
  };
  await kube.apply(pod);
  const done = await waitFor(kube, [{ key: 'pod', kind: 'Pod', namespace, fieldSelector: `metadata.name=${name}` }], {
    what: `probe ${namespace}/${name} to finish`,
    timeoutSeconds: 120,
    check: (s) => objectsOf(s, 'pod', 'Pod').find((p) => ['Succeeded', 'Failed'].includes(p.status?.phase ?? '')),
  });
  await kube.delete('Pod', name, namespace);
  const lines = (done.status?.containerStatuses?.[0]?.state?.terminated?.message ?? '').trim().split('\n');
  const fields = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  const { resolved, ...outcomes } = fields;
  return { outcomes, resolved };
}

/** What a pod is checked against: etcd by pod IP and by Service name, and a Sand Store pod's gRPC port. */
async function targets(): Promise<Record<string, string>> {
  const etcdIp = (await kube.get('Pod', 'etcd-0', NAMESPACE)).status?.podIP;
  const sandstoreIp = (await kube.get('Pod', 'sandstore-0', NAMESPACE)).status?.podIP;
  const etcdName = `etcd-0.etcd.${NAMESPACE}.svc.cluster.local`;
  return {
    'etcd-client-by-ip': `${etcdIp} 2379`,
    'etcd-peer-by-ip': `${etcdIp} 2380`,
    'etcd-client-by-name': `etcd.${NAMESPACE}.svc.cluster.local 2379`,
    'etcd-peer-by-name': `${etcdName} 2380`,
    'sandstore-grpc-by-ip': `${sandstoreIp} 8080`,
    'sandstore-grpc-by-name': `sandstore-0.${NAMESPACE}.svc.cluster.local 8080`,
  };
}

const ETCD_FORBIDDEN = {
  'etcd-client-by-ip': 'refused',
  'etcd-peer-by-ip': 'refused',
  'etcd-client-by-name': 'refused',
  'etcd-peer-by-name': 'refused',
};
const GRPC_OPEN = { 'sandstore-grpc-by-ip': 'connected', 'sandstore-grpc-by-name': 'connected' };

/** The profile's policies as they were applied, to put back after the test that deletes them. */
let policies: ObjectOf<'NetworkPolicy'>[] = [];

beforeAll(async () => {
  expectExit(await runCli(['deploy', `--profile=${PROFILE}`, '--timeout=240']), 0);
  await kube.apply({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: OTHER, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } },
  });
  policies = (await kube.list('NetworkPolicy', { namespace: NAMESPACE, labelSelector: profileSelector(PROFILE) }))
    .items;
  await untilRules('enforce the policies', (r) => policies.every((p) => r.includes(policyRule(p.metadata.name))));
}, 300_000);

afterAll(async () => {
  await kube.delete('Namespace', OTHER);
  expectExit(await runCli(['destroy', `--profile=${PROFILE}`, '--timeout=120']), 0);
}, 180_000);

test('the profile ships its three policies, and kube-router on the real node enforces them', async () => {
  expect(policies.map((p) => p.metadata?.name).sort()).toEqual([
    'etcd-ingress',
    'sandstore-default-deny-ingress',
    'sandstore-ingress',
  ]);
  // Each pod of the profile goes through the chains of the policies that select it, by its IP.
  const rules = nodeRules().split('\n');
  const through = async (pod: string) => {
    const ip = (await kube.get('Pod', pod, NAMESPACE)).status?.podIP;
    return rules
      .filter((r) => r.includes(`-d ${ip}/32`) && r.includes('run through nw policy'))
      .map((r) => /run through nw policy ([\w-]+)/.exec(r)![1])
      .sort();
  };
  expect(await through('etcd-0')).toEqual(['etcd-ingress', 'sandstore-default-deny-ingress']);
  expect(await through('sandstore-0')).toEqual(['sandstore-default-deny-ingress', 'sandstore-ingress']);
});

test('a pod in another namespace reaches neither etcd port, by pod IP or by name; Sand Store gRPC stays open; DNS resolves', async () => {
  const r = await probe('from-other', OTHER, await targets(), `etcd.${NAMESPACE}.svc.cluster.local`);
  expect(r.outcomes).toEqual({ ...ETCD_FORBIDDEN, ...GRPC_OPEN });
  expect(r.resolved).toBe((await kube.get('Pod', 'etcd-0', NAMESPACE)).status?.podIP);
});

test("a pod in the profile's namespace that is not Sand Store reaches neither etcd port", async () => {
  const r = await probe('not-sandstore', NAMESPACE, await targets(), `sandstore-0.${NAMESPACE}.svc.cluster.local`);
  expect(r.outcomes).toEqual({ ...ETCD_FORBIDDEN, ...GRPC_OPEN });
  expect(r.resolved).toBe((await kube.get('Service', 'sandstore-0', NAMESPACE)).spec?.clusterIP);
});

test('Sand Store pods and the membership Job reach etcd under the policies: its keys and every live lease are there', async () => {
  const job = await kube.get('Job', 'sandstore-membership-bootstrap', NAMESPACE);
  expect(job.status?.succeeded).toBe(1);
  const pods = (await kube.list('Pod', { namespace: NAMESPACE, labelSelector: profileSelector(PROFILE) })).items;
  const dataPlane = pods.filter((p) => p.metadata.labels?.[LabelKeys.component] === 'data-plane');
  expect(
    dataPlane
      .filter(podReady)
      .map((p) => p.metadata.name)
      .sort(),
  ).toEqual(['sandstore-0', 'sandstore-1', 'sandstore-2']);
  // The Job wrote the membership; each Sand Store node keeps a lease alive through its etcd client.
  const keys = kubectl(
    '-n',
    NAMESPACE,
    'exec',
    'etcd-0',
    '--',
    'etcdctl',
    'get',
    '--prefix',
    '--keys-only',
    '/sandstore/',
  )
    .split('\n')
    .filter((k) => k !== '');
  for (const i of [0, 1, 2]) {
    expect(keys).toContain(`/sandstore/config/nodes/sandstore-${i}`);
    expect(keys).toContain(`/sandstore/leases/sandstore-${i}`);
  }
});

test('a client on the host reaches every node port of the profile', async () => {
  const services = (await kube.list('Service', { namespace: NAMESPACE })).items.filter(
    (s) => s.spec?.type === 'NodePort',
  );
  const ports = services.flatMap((s) => (s.spec?.ports ?? []).map((p) => p.nodePort!));
  expect(ports.length).toBeGreaterThan(0);
  const outcomes = await Promise.all(
    ports.map(
      (port) =>
        new Promise<string>((resolve) => {
          const socket = connect({ host: env.NODE_IP, port, timeout: 5000 });
          socket.on('connect', () => (socket.destroy(), resolve(`${port}: connected`)));
          socket.on('timeout', () => (socket.destroy(), resolve(`${port}: timed out`)));
          socket.on('error', (e: NodeJS.ErrnoException) => resolve(`${port}: ${e.code}`));
        }),
    ),
  );
  expect(outcomes).toEqual(ports.map((p) => `${p}: connected`));
});

test('control: with the policies deleted, the same pods reach both etcd ports (so the tests above can fail)', async () => {
  for (const p of policies) await kube.delete('NetworkPolicy', p.metadata.name, NAMESPACE);
  try {
    await untilRules('drop the policies', (r) => !r.includes('run through nw policy'));
    const open = Object.fromEntries(Object.keys(ETCD_FORBIDDEN).map((k) => [k, 'connected']));
    for (const [name, namespace] of [
      ['other-unprotected', OTHER],
      ['not-sandstore-unprotected', NAMESPACE],
    ]) {
      const r = await probe(name, namespace, await targets(), `etcd.${NAMESPACE}.svc.cluster.local`);
      expect(r.outcomes).toEqual({ ...open, ...GRPC_OPEN });
    }
  } finally {
    for (const p of policies) {
      const { name, namespace, labels, annotations } = p.metadata;
      await kube.apply({
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name, namespace, labels, annotations },
        spec: p.spec,
      });
    }
    await untilRules('enforce the policies again', (r) =>
      policies.every((p) => r.includes(policyRule(p.metadata.name))),
    );
  }
});
