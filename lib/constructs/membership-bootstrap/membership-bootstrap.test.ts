import { LabelKeys } from '../../labels.js';
import { find, synthesize } from '../../../test/helpers.js';
import { EtcdControlPlane } from '../etcd-control-plane/index.js';
import { LocalSsdStorage } from '../local-ssd-storage/index.js';
import { MembershipBootstrap } from './membership-bootstrap.js';

const members = [
  { id: 'store-0', address: 'store-0.bench.svc:8080' },
  { id: 'store-1', address: 'store-1.bench.svc:8080' },
  { id: 'store-2', address: 'store-2.bench.svc:8080' },
];

function build() {
  let bootstrap!: MembershipBootstrap;
  let etcd!: EtcdControlPlane;
  const objects = synthesize(
    (chart) => {
      const storage = new LocalSsdStorage(chart, 'storage', { taint: { key: 'node.sandstore.io/disk', value: 'ssd' } });
      etcd = new EtcdControlPlane(chart, 'etcd', { storage, replicas: 3, image: 'registry.example/etcd:v3.5.9' });
      bootstrap = new MembershipBootstrap(chart, 'bootstrap', {
        etcd,
        members,
        dataPlaneName: 'store',
        placement: storage.placement,
      });
    },
    { namespace: 'bench', labels: { [LabelKeys.profile]: 'p', [LabelKeys.instance]: 'p' } },
  );
  return { bootstrap, etcd, job: find(objects, 'Job', 'store-membership-bootstrap') };
}

describe('MembershipBootstrap', () => {
  test("clears the prefix, then writes one voter per member, with etcd's own etcdctl against every member", () => {
    const { bootstrap, etcd, job } = build();
    expect(bootstrap.membership).toEqual(
      members.map((m) => ({
        key: `/sandstore/config/nodes/${m.id}`,
        value: JSON.stringify({ id: m.id, address: m.address, role: 'voter' }),
      })),
    );
    const pod = job.spec.template.spec;
    expect(pod.initContainers.map((c) => c.command)).toEqual([
      ['etcdctl', 'del', '--prefix', '/sandstore/config/nodes/'],
      ...bootstrap.membership.map((m) => ['etcdctl', 'put', m.key, m.value]),
    ]);
    for (const c of [...pod.initContainers, ...pod.containers]) {
      expect(c.image).toBe('registry.example/etcd:v3.5.9');
      expect(c.imagePullPolicy).toBe(etcd.imagePullPolicy);
      expect(Object.keys(c.resources.requests).sort()).toEqual(['cpu', 'ephemeral-storage', 'memory']);
      expect(c.env).toContainEqual({ name: 'ETCDCTL_ENDPOINTS', value: etcd.clientEndpoints.join(',') });
    }
  });

  test('applied in the bootstrap phase, retried twice, on the placement given, selected as its own component', () => {
    const { bootstrap, job } = build();
    expect(job.metadata.annotations['sandstore.io/deploy-phase']).toBe('bootstrap');
    expect(job.spec.backoffLimit).toBe(2);
    expect(job.spec.template.spec.tolerations).toEqual([
      { key: 'node.sandstore.io/disk', operator: 'Equal', value: 'ssd', effect: 'NoSchedule' },
    ]);
    expect(job.spec.template.metadata.labels).toMatchObject(bootstrap.podSelector);
    expect(bootstrap.podSelector).toEqual({
      [LabelKeys.name]: 'store',
      [LabelKeys.component]: 'membership-bootstrap',
      [LabelKeys.instance]: 'p',
    });
  });
});
