import { LabelKeys } from '../../labels.js';
import { find, ofKind, synthesize } from '../../../test/helpers.js';
import { LocalSsdStorage } from '../local-ssd-storage/index.js';
import { EtcdControlPlane } from './etcd-control-plane.js';

const build = (props: ConstructorParameters<typeof EtcdControlPlane>[2] = {}) => {
  let etcd!: EtcdControlPlane;
  const objects = synthesize(
    (chart) => {
      const storage = new LocalSsdStorage(chart, 'storage', { taint: { key: 'node.sandstore.io/disk', value: 'ssd' } });
      etcd = new EtcdControlPlane(chart, 'etcd', { storage, ...props });
    },
    { namespace: 'bench', labels: { [LabelKeys.profile]: 'p', [LabelKeys.instance]: 'p' } },
  );
  return { etcd, objects, sts: find(objects, 'StatefulSet', 'etcd') };
};

describe('EtcdControlPlane', () => {
  test('new EtcdControlPlane(scope, id) works: one member, no disruption budget', () => {
    const objects = synthesize((chart) => new EtcdControlPlane(chart, 'etcd'));
    expect(find(objects, 'StatefulSet', 'etcd').spec.replicas).toBe(1);
    expect(ofKind(objects, 'PodDisruptionBudget')).toHaveLength(0);
  });

  test.each([1, 3, 5])(
    '%i members: --initial-cluster and the client endpoints list every member in the namespace',
    (replicas) => {
      const { etcd, sts } = build({ replicas });
      const args: string[] = sts.spec.template.spec.containers[0].args;
      const initial = args
        .find((a) => a.startsWith('--initial-cluster='))!
        .split('=')
        .slice(1)
        .join('=')
        .split(',');
      expect(initial).toEqual(
        Array.from({ length: replicas }, (_, i) => `etcd-${i}=http://etcd-${i}.etcd.bench.svc:2380`),
      );
      expect(etcd.clientEndpoints).toEqual(Array.from({ length: replicas }, (_, i) => `etcd-${i}.etcd.bench.svc:2379`));
      expect(sts.spec.replicas).toBe(replicas);
    },
  );

  test('members start in parallel and resolve before Ready, or a multi-member cluster never forms', () => {
    const { objects, sts } = build({ replicas: 3 });
    expect(sts.spec.podManagementPolicy).toBe('Parallel');
    expect(find(objects, 'Service', 'etcd').spec).toMatchObject({ clusterIP: 'None', publishNotReadyAddresses: true });
  });

  test('a client Service with a cluster IP, routing to members before they are Ready, for the waits applied with etcd', () => {
    const { etcd, objects } = build({ replicas: 3 });
    const svc = find(objects, 'Service', 'etcd-client');
    expect(svc.metadata.annotations['sandstore.io/deploy-phase']).toBe('base');
    expect(svc.spec.clusterIP).toBeUndefined();
    expect(svc.spec.publishNotReadyAddresses).toBe(true);
    expect(svc.spec.selector).toEqual(etcd.podSelector);
    expect(svc.spec.ports).toEqual([{ name: 'client', port: 2379, targetPort: 'client' }]);
    expect(etcd.clientServiceEndpoint).toBe('etcd-client.bench.svc:2379');
  });

  test.each([
    [3, 2],
    [5, 3],
  ])('%i members get a disruption budget keeping %i (quorum)', (replicas, minAvailable) => {
    const { objects } = build({ replicas });
    expect(find(objects, 'PodDisruptionBudget', 'etcd').spec.minAvailable).toBe(minAvailable);
  });

  test(
    'probes, resources, pull policy, claim template with the labels, SSD placement, ' + 'anti-affinity across hosts',
    () => {
      const { sts } = build();
      const pod = sts.spec.template.spec;
      const container = pod.containers[0];
      expect(container.startupProbe.httpGet.path).toBe('/health');
      expect(container.readinessProbe.httpGet.path).toBe('/health');
      expect(container.livenessProbe.httpGet.path).toBe('/health?serializable=true');
      // Probed every second (the deploy waits for Ready), with the patience of before: 120 s to
      // start, 15 s of failures before a member is taken out of service.
      const patience = (p: { periodSeconds: number; failureThreshold: number }) => [
        p.periodSeconds,
        p.periodSeconds * p.failureThreshold,
      ];
      expect(patience(container.startupProbe)).toEqual([1, 120]);
      expect(patience(container.readinessProbe)).toEqual([1, 15]);
      // The membership bootstrap writes every node in one transaction.
      expect(container.args).toContain('--max-txn-ops=1024');
      expect(container.resources.requests).toEqual({ cpu: '100m', memory: '256Mi', 'ephemeral-storage': '64Mi' });
      expect(container.resources.limits).toEqual({ cpu: '1', memory: '512Mi', 'ephemeral-storage': '1Gi' });
      expect(container.imagePullPolicy).toBe('Always');
      expect(pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm).toEqual({
        topologyKey: 'kubernetes.io/hostname',
        labelSelector: { matchLabels: sts.spec.selector.matchLabels },
      });
      const claim = sts.spec.volumeClaimTemplates[0];
      expect(claim.spec).toMatchObject({
        storageClassName: 'sandstore-local-ssd',
        resources: { requests: { storage: '1Gi' } },
      });
      expect(claim.metadata.labels).toMatchObject({ [LabelKeys.profile]: 'p', [LabelKeys.component]: 'control-plane' });
      expect(pod.nodeSelector).toEqual({ 'node.sandstore.io/disk': 'ssd' });
      expect(pod.tolerations).toEqual([
        { key: 'node.sandstore.io/disk', operator: 'Equal', value: 'ssd', effect: 'NoSchedule' },
      ]);
    },
  );

  test.each([
    [{ replicas: 2 }, /replicas 2; expected an odd whole number from 1 to 7/],
    [{ replicas: 0 }, /replicas 0; expected an odd whole number from 1 to 7/],
    [{ replicas: 9 }, /replicas 9; expected an odd whole number from 1 to 7/],
    [{ replicas: NaN }, /replicas NaN; expected an odd whole number from 1 to 7/],
    [{ storageSize: '1GB' }, /storageSize "1GB"; expected a Kubernetes quantity/],
    [{ name: 'Etcd' }, /name "Etcd"; expected a DNS label/],
    [
      { resources: { requests: { cpu: 'lots', memory: '1Gi' }, limits: { cpu: '1', memory: '1Gi' } } },
      /resources.requests.cpu "lots"/,
    ],
    [{ image: 'etcd' }, /image "etcd"; expected an image reference with a tag/],
    [
      { image: ' quay.io/coreos/etcd:v3.5.0' },
      /image " quay.io\/coreos\/etcd:v3.5.0"; expected an image reference with a tag/,
    ],
    [
      { storageSize: '0' },
      /storageSize "0"; expected a Kubernetes quantity such as "20Gi" or "512Mi", greater than 0, in whole bytes and at most 9223372036854775807/,
    ],
    [
      { resources: { requests: { cpu: '0m', memory: '1Gi' }, limits: { cpu: '1', memory: '1Gi' } } },
      /resources.requests.cpu "0m"; expected a Kubernetes quantity such as "500m" or "2", greater than 0/,
    ],
    [
      { resources: { requests: { cpu: '1', memory: '1Gi' }, limits: { cpu: '1', memory: '1000Mi' } } },
      /resources.limits.memory "1000Mi"; expected at least resources.requests.memory, "1Gi"/,
    ],
  ])('rejects %j naming the field, the value and the accepted form', (props, message) => {
    expect(() => build(props)).toThrow(message);
  });
});
