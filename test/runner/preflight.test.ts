import type { Lease, Node, ObjectOf, Pod } from '../../lib/runner/kube.js';
import { findingLine, ignoredChecks } from '../../lib/runner/commands/check.js';
import { freeBase } from '../../lib/runner/preflight/checks.js';
import { distributionOf, provisionerFix, upgradeFix } from '../../lib/runner/preflight/fixes.js';
import { nodeOrTaintFix, templateNeeds, schedulableNodes } from '../../lib/runner/preflight/nodes.js';
import {
  addAmounts,
  formatAmount,
  freeOn,
  milli,
  placePods,
  plannedPods,
  podRequests,
  tolerates,
  untoleratedTaints,
} from '../../lib/runner/preflight/scheduling.js';
import { heldAt, leaderLockEvidence, leaderLockNames, runningEvidence } from '../../lib/runner/preflight/storage.js';
import { versionVerdict } from '../../lib/runner/preflight/version.js';
import { loadProfile } from '../../lib/profiles.js';
import { renderProfile, type Manifest } from '../../lib/synth.js';
import { parse } from 'yaml';

const node = (
  name: string,
  opts: {
    labels?: Record<string, string>;
    taints?: { key: string; value?: string; effect: string }[];
    ready?: boolean;
    unschedulable?: boolean;
    allocatable?: Record<string, string>;
    providerID?: string;
  } = {},
): Node => ({
  kind: 'Node',
  metadata: { name, labels: opts.labels ?? {} },
  spec: { taints: opts.taints, unschedulable: opts.unschedulable, providerID: opts.providerID },
  status: {
    conditions: [{ type: 'Ready', status: opts.ready === false ? 'False' : 'True' }],
    allocatable: opts.allocatable ?? { cpu: '2', memory: '4Gi', pods: '110' },
  },
});

describe('quantities', () => {
  test.each([
    ['50m', 50n],
    ['1', 1000n],
    ['1000m', 1000n],
    ['0.5', 500n],
    ['64Mi', 64n * 2n ** 20n * 1000n],
    ['24629000Ki', 24629000n * 1024n * 1000n],
    ['1k', 1000000n],
    ['267847642337', 267847642337000n],
  ])('%s is %d thousandths', (q, v) => {
    expect(milli(q)).toBe(v);
  });
  test('a value that is no quantity is an error, not a zero', () => {
    expect(() => milli('lots')).toThrow('not a Kubernetes quantity: "lots"');
  });
  test("a pod asks for its containers' sum, or its largest init container when larger, plus its overhead", () => {
    const r = podRequests({
      containers: [
        { resources: { requests: { cpu: '100m', memory: '64Mi' } } },
        { resources: { requests: { cpu: '10m' } } },
      ],
      initContainers: [{ resources: { requests: { cpu: '500m', memory: '16Mi' } } }],
      overhead: { cpu: '5m' },
    });
    expect(formatAmount('cpu', r.get('cpu')!)).toBe('505m');
    expect(formatAmount('memory', r.get('memory')!)).toBe('64Mi');
  });
  test("a node's room is allocatable minus its pods' requests, one pod slot each", () => {
    const free = freeOn(node('n', { allocatable: { cpu: '2', memory: '1Gi', pods: '3' } }), [
      {
        metadata: { name: 'p' },
        spec: { containers: [{ name: 'c', resources: { requests: { cpu: '1500m', memory: '512Mi' } } }] },
      },
    ]);
    expect([
      formatAmount('cpu', free.get('cpu')!),
      formatAmount('memory', free.get('memory')!),
      formatAmount('pods', free.get('pods')!),
    ]).toEqual(['500m', '512Mi', '2']);
  });
  test('addAmounts subtracts with a negative factor', () => {
    expect(addAmounts(new Map([['cpu', 5n]]), new Map([['cpu', 2n]]), -1n).get('cpu')).toBe(3n);
  });
});

describe('placing the pods dist/ makes', () => {
  let local: Manifest[];
  beforeAll(async () => {
    local = [...renderProfile(await loadProfile('local'))].map(([, text]) => parse(text) as Manifest);
  });

  test('every replica of both StatefulSets and the membership Job, and the smoke Job only if asked', () => {
    const planned = plannedPods(local.filter((m) => m.metadata.name !== 'sandstore-smoke-test'));
    expect(planned.map((p) => [p.workload, p.count])).toEqual(
      expect.arrayContaining([
        ['StatefulSet sandstore', 3],
        ['StatefulSet etcd', 1],
        ['Job sandstore-membership-bootstrap', 1],
      ]),
    );
    expect(planned).toHaveLength(3);
  });
  test('pods that fit leave nothing unplaced; one CPU too few leaves a pod, naming the resource and the most room left', () => {
    const pods = [
      {
        workload: 'StatefulSet big',
        podSpec: { containers: [{ resources: { requests: { cpu: '1', memory: '1Gi' } } }] },
        count: 3,
      },
    ];
    const room = (cpu: string) =>
      new Map([
        ['a', freeOn(node('a', { allocatable: { cpu, memory: '8Gi', pods: '10' } }), [])],
        ['b', freeOn(node('b', { allocatable: { cpu: '1', memory: '8Gi', pods: '10' } }), [])],
      ]);
    expect(placePods(pods, room('2'))).toEqual([]);
    const [u, ...rest] = placePods(pods, room('1500m'));
    expect(rest).toEqual([]);
    expect({ ...u, wants: formatAmount('cpu', u.wants), mostFree: formatAmount('cpu', u.mostFree) }).toEqual({
      workload: 'StatefulSet big',
      resource: 'cpu',
      wants: '1',
      mostFree: '500m',
      node: 'a',
    });
  });
  test('the pod count is a resource too', () => {
    const pods = [{ workload: 'StatefulSet s', podSpec: { containers: [] }, count: 2 }];
    const [u] = placePods(
      pods,
      new Map([['a', freeOn(node('a', { allocatable: { cpu: '1', memory: '1Gi', pods: '1' } }), [])]]),
    );
    expect(u.resource).toBe('pods');
  });
});

describe('tolerations and nodes', () => {
  const taint = { key: 'node.sandstore.io/disk', value: 'ssd', effect: 'NoSchedule' };
  test.each([
    [{ key: 'node.sandstore.io/disk', operator: 'Equal', value: 'ssd', effect: 'NoSchedule' }, true],
    [{ key: 'node.sandstore.io/disk', value: 'ssd' }, true],
    [{ key: 'node.sandstore.io/disk', operator: 'Exists' }, true],
    [{ operator: 'Exists' }, true],
    [{ key: 'node.sandstore.io/disk', value: 'hdd', effect: 'NoSchedule' }, false],
    [{ key: 'node.sandstore.io/disk', value: 'ssd', effect: 'NoExecute' }, false],
    [{ key: 'other', operator: 'Exists' }, false],
  ] as const)('%j tolerates disk=ssd:NoSchedule: %s', (tol, expected) => {
    expect(tolerates(tol, taint)).toBe(expected);
  });
  test('PreferNoSchedule taints never keep pods off', () => {
    expect(untoleratedTaints(node('n', { taints: [{ key: 'x', effect: 'PreferNoSchedule' }] }), [])).toEqual([]);
  });
  const needs = {
    workload: 'StatefulSet sandstore',
    nodeSelector: { 'node.sandstore.io/disk': 'ssd' },
    tolerations: [{ key: 'node.sandstore.io/disk', operator: 'Equal' as const, value: 'ssd', effect: 'NoSchedule' }],
  };
  test('a labelled, Ready, uncordoned node with tolerated taints fits; every other node says why not', () => {
    const nodes = [
      node('good', { labels: { 'node.sandstore.io/disk': 'ssd' }, taints: [taint] }),
      node('plain'),
      node('cordoned', { labels: { 'node.sandstore.io/disk': 'ssd' }, unschedulable: true }),
      node('down', { labels: { 'node.sandstore.io/disk': 'ssd' }, ready: false }),
      node('gpu', {
        labels: { 'node.sandstore.io/disk': 'ssd' },
        taints: [{ key: 'gpu', value: 'true', effect: 'NoExecute' }],
      }),
    ];
    const { fit, obstacles } = schedulableNodes(nodes, needs);
    expect(fit.map((n) => n.metadata.name)).toEqual(['good']);
    expect(Object.fromEntries(obstacles)).toEqual({
      plain: ['lacks label node.sandstore.io/disk=ssd'],
      cordoned: ['is cordoned'],
      down: ['is not Ready'],
      gpu: ['has taint the pods do not tolerate: gpu=true:NoExecute'],
    });
  });
  test('the fix is the one command that makes a node fit: uncordon, untaint, or label', () => {
    expect(
      nodeOrTaintFix('c', [node('n', { labels: { 'node.sandstore.io/disk': 'ssd' }, unschedulable: true })], needs),
    ).toBe('kubectl --context=c uncordon n');
    expect(
      nodeOrTaintFix(
        'c',
        [
          node('n', {
            labels: { 'node.sandstore.io/disk': 'ssd' },
            taints: [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }],
          }),
        ],
        needs,
      ),
    ).toBe('kubectl --context=c taint node n gpu=true:NoSchedule-');
    expect(nodeOrTaintFix('c', [node('minikube')], needs)).toBe(
      'kubectl --context=c label node minikube node.sandstore.io/disk=ssd',
    );
    expect(nodeOrTaintFix('c', [node('down', { ready: false })], needs)).toBeUndefined();
  });
  test('the pod templates are read from dist/, smoke Job included only when given', async () => {
    const local = [...renderProfile(await loadProfile('local'))].map(([, text]) => parse(text) as Manifest);
    expect(
      templateNeeds(local)
        .map((t) => t.workload)
        .sort(),
    ).toEqual([
      'Job sandstore-membership-bootstrap',
      'Job sandstore-smoke-test',
      'StatefulSet etcd',
      'StatefulSet sandstore',
    ]);
    expect(templateNeeds(local)[0].tolerations).toEqual([
      { effect: 'NoSchedule', key: 'node.sandstore.io/disk', operator: 'Equal', value: 'ssd' },
    ]);
  });
});

describe('fix commands by distribution', () => {
  test('the distribution is read from the nodes', () => {
    expect(distributionOf([node('kind-control-plane', { providerID: 'kind://docker/kind/kind-control-plane' })])).toBe(
      'kind',
    );
    expect(
      distributionOf([
        { metadata: { name: 'k', labels: {} }, status: { nodeInfo: { kubeletVersion: 'v1.28.15+k3s1' } } } as Node,
      ]),
    ).toBe('k3s');
    expect(distributionOf([node('minikube', { labels: { 'minikube.k8s.io/name': 'minikube' } })])).toBe('minikube');
    expect(distributionOf([node('x')])).toBe('unknown');
  });
  test("local-path: minikube's addon, k3s's own, kind's manifest; all three when the cluster is not known", () => {
    const apply =
      'kubectl --context=c apply -f https://raw.githubusercontent.com/rancher/local-path-provisioner/v0.0.30/deploy/local-path-storage.yaml';
    expect(provisionerFix('rancher.io/local-path', 'minikube', 'c')).toBe(
      'minikube addons enable storage-provisioner-rancher',
    );
    expect(provisionerFix('rancher.io/local-path', 'kind', 'c')).toBe(apply);
    expect(provisionerFix('rancher.io/local-path', 'k3s', 'c')).toBe(
      `start k3s without \`--disable=local-storage\` (k3s ships local-path), or ${apply}`,
    );
    expect(provisionerFix('rancher.io/local-path', 'unknown', 'c')).toBe(
      `minikube: minikube addons enable storage-provisioner-rancher; k3s: start k3s without \`--disable=local-storage\` (k3s ships local-path), or ${apply}; kind: ${apply}`,
    );
    expect(provisionerFix('example.com/nothing', 'kind', 'c')).toBe(
      'install the provisioner (or CSI driver) that serves example.com/nothing, or set storage.provisioner to one the cluster runs',
    );
  });
  test("an upgrade names the tested release in each distribution's way", () => {
    expect(upgradeFix('kind', 'v1.28.15')).toBe('kind create cluster --image kindest/node:v1.28.15');
    expect(upgradeFix('minikube', 'v1.28.15')).toBe('minikube start --kubernetes-version=v1.28.15');
    expect(upgradeFix('k3s', 'v1.28.15')).toBe('curl -sfL https://get.k3s.io | INSTALL_K3S_VERSION=v1.28.15+k3s1 sh -');
  });
});

describe('versions', () => {
  test.each([
    ['v1.20.15', 'problem'],
    ['v1.21.0', 'warning'],
    ['v1.24.17+k3s1', 'warning'],
    ['v1.25.0', 'ok'],
    ['v1.28.15', 'ok'],
    ['v1.33.1-gke.100', 'ok'],
    ['unknown', 'warning'],
  ])('%s: %s', (v, verdict) => {
    expect(versionVerdict(v).verdict).toBe(verdict);
  });
});

describe('provisioner evidence', () => {
  const now = Date.parse('2026-01-01T00:00:30Z');
  test("lock names: sig-storage-lib's and CSI external-provisioner's", () => {
    expect(leaderLockNames('rancher.io/local-path')).toEqual(['rancher.io-local-path', 'rancher-io-local-path']);
    expect(leaderLockNames('ebs.csi.aws.com')).toEqual(['ebs.csi.aws.com', 'ebs-csi-aws-com']);
  });
  test('a lock is held while renewed within twice its duration', () => {
    expect(heldAt('2026-01-01T00:00:10Z', 15, now)).toBe(true);
    expect(heldAt('2025-12-31T23:59:50Z', 15, now)).toBe(false);
    expect(heldAt(undefined, 15, now)).toBe(false);
  });
  const lease = (name: string, renewTime: string): Lease => ({
    metadata: { name, namespace: 'kube-system' },
    spec: { holderIdentity: 'h', leaseDurationSeconds: 15, renewTime },
  });
  test('a held Lease, or an Endpoints lock of the older libraries, is evidence; a stale one or one of another name is not', () => {
    expect(
      leaderLockEvidence('rancher.io/local-path', [lease('rancher.io-local-path', '2026-01-01T00:00:28Z')], [], now),
    ).toBe('its leader-election Lease kube-system/rancher.io-local-path, held by h, renewed 2s ago');
    expect(
      leaderLockEvidence('rancher.io/local-path', [lease('rancher.io-local-path', '2025-12-31T23:00:00Z')], [], now),
    ).toBeUndefined();
    expect(
      leaderLockEvidence('example.com/x', [lease('rancher.io-local-path', '2026-01-01T00:00:28Z')], [], now),
    ).toBeUndefined();
    const endpoints: ObjectOf<'Endpoints'> = {
      metadata: {
        name: 'k8s.io-minikube-hostpath',
        namespace: 'kube-system',
        annotations: {
          'control-plane.alpha.kubernetes.io/leader': JSON.stringify({
            holderIdentity: 'minikube_1',
            leaseDurationSeconds: 15,
            renewTime: '2026-01-01T00:00:25Z',
          }),
        },
      },
    };
    expect(leaderLockEvidence('k8s.io/minikube-hostpath', [], [endpoints], now)).toBe(
      'its leader-election lock Endpoints kube-system/k8s.io-minikube-hostpath, held by minikube_1, renewed 5s ago',
    );
  });
  test('a Running, Ready pod of a known image, or a CSI driver on a node', () => {
    const pod = (image: string, phase = 'Running'): Pod => ({
      metadata: { name: 'p', namespace: 'local-path-storage' },
      spec: { containers: [{ name: 'c', image }] },
      status: { phase, conditions: [{ type: 'Ready', status: 'True' }] },
    });
    expect(
      runningEvidence('rancher.io/local-path', [pod('docker.io/rancher/local-path-provisioner:v0.0.30')], []),
    ).toBe('pod local-path-storage/p (docker.io/rancher/local-path-provisioner:v0.0.30) is Running and Ready');
    expect(
      runningEvidence(
        'rancher.io/local-path',
        [pod('docker.io/rancher/local-path-provisioner:v0.0.30', 'Pending')],
        [],
      ),
    ).toBeUndefined();
    expect(runningEvidence('rancher.io/local-path', [pod('nginx')], [])).toBeUndefined();
    expect(
      runningEvidence(
        'ebs.csi.aws.com',
        [],
        [{ metadata: { name: 'n1' }, spec: { drivers: [{ name: 'ebs.csi.aws.com', nodeID: 'n1' }] } }],
      ),
    ).toBe('CSI driver ebs.csi.aws.com is registered on node n1');
  });
});

describe('output and options', () => {
  const plain = { paint: (_: unknown, text: string) => text };
  test('one line per finding, the fix on the same line', () => {
    expect(
      findingLine(
        { check: 'nodes', verdict: 'problem', text: 'no schedulable node', fix: 'kubectl label node n a=b' },
        plain,
      ),
    ).toBe('✗ nodes: no schedulable node; fix: kubectl label node n a=b');
    expect(findingLine({ check: 'image', verdict: 'warning', text: 'w' }, plain)).toBe('! image: w');
    expect(findingLine({ check: 'version', verdict: 'ok', text: 'fine' }, plain)).toBe('✓ version: fine');
  });
  test('--ignore-check takes known names or all, and names what it refuses', () => {
    expect(ignoredChecks('resources,node-ports')).toEqual(['resources', 'node-ports']);
    expect(ignoredChecks('all')).toContain('storage-class');
    expect(() => ignoredChecks('resources,disk')).toThrow(
      'expected "all" or check names separated by commas, from version, nodes, storage-class, provisioner, resources, node-ports; got "disk"',
    );
  });
  test('a free node-port base skips every taken port', () => {
    expect(freeBase(new Set([30000, 30002]), 2)).toBe(30003);
    expect(freeBase(new Set(), 3)).toBe(30000);
  });
});
