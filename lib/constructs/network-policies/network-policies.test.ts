import { find, synthesize } from '../../../test/helpers.js';
import { ClientNodePort } from '../client-node-port/index.js';
import { EtcdControlPlane } from '../etcd-control-plane/index.js';
import { SandstoreCluster } from '../sandstore-cluster/index.js';
import { SandstoreNetworkPolicies } from './network-policies.js';

function build(exposed: boolean) {
  let cluster!: SandstoreCluster;
  let etcd!: EtcdControlPlane;
  const objects = synthesize((chart) => {
    etcd = new EtcdControlPlane(chart, 'etcd', { replicas: 3 });
    cluster = new SandstoreCluster(chart, 'sandstore', {
      etcd,
      image: 'r/sandstore-node:t',
      externalAccess: exposed ? {} : undefined,
    });
    if (exposed) new ClientNodePort(chart, 'client', { cluster });
    new SandstoreNetworkPolicies(chart, 'policies', { etcd, cluster });
  });
  return { objects, cluster, etcd };
}

describe('SandstoreNetworkPolicies', () => {
  test('ingress is denied by default for every pod of the namespace', () => {
    const deny = find(build(true).objects, 'NetworkPolicy', 'sandstore-default-deny-ingress');
    expect(deny.spec).toEqual({ podSelector: { matchLabels: {} }, policyTypes: ['Ingress'], ingress: [] });
  });

  test('etcd clients are only Sand Store pods and the bootstrap Job; peers only etcd members', () => {
    const { objects, cluster, etcd } = build(true);
    const policy = find(objects, 'NetworkPolicy', 'etcd-ingress');
    expect(policy.spec.podSelector.matchLabels).toEqual(etcd.podSelector);
    const [clients, peers] = policy.spec.ingress;
    expect(clients.from).toEqual([
      { podSelector: { matchLabels: cluster.podSelector } },
      { podSelector: { matchLabels: cluster.membershipBootstrap.podSelector } },
    ]);
    expect(clients.ports).toEqual([{ protocol: 'TCP', port: 2379 }]);
    expect(peers.from).toEqual([{ podSelector: { matchLabels: etcd.podSelector } }]);
    expect(peers.ports).toEqual([
      { protocol: 'TCP', port: 2379 },
      { protocol: 'TCP', port: 2380 },
    ]);
  });

  test('8080 is open to outside clients only when node ports expose it; metrics to anyone', () => {
    const exposed = find(build(true).objects, 'NetworkPolicy', 'sandstore-ingress').spec.ingress;
    expect(exposed[0]).toEqual({ ports: [{ protocol: 'TCP', port: 8080 }] });
    const internal = find(build(false).objects, 'NetworkPolicy', 'sandstore-ingress').spec.ingress;
    expect(internal[0]).toEqual({ from: [{ podSelector: {} }], ports: [{ protocol: 'TCP', port: 8080 }] });
    expect(internal[1]).toEqual({ ports: [{ protocol: 'TCP', port: 2112 }] });
  });
});
