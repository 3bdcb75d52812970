import { LabelKeys } from '../../labels.js';
import { find, synthesize } from '../../../test/helpers.js';
import { EtcdControlPlane } from '../etcd-control-plane/index.js';
import { LocalSsdStorage } from '../local-ssd-storage/index.js';
import { MembershipBootstrap } from './membership-bootstrap.js';
import { MEMBERSHIP_ANNOTATION, MEMBERSHIP_TXN_ANNOTATION, membershipOfTxn } from './membership-txn.js';

const members = [
  { id: 'store-0', address: 'store-0.bench.svc:8080' },
  { id: 'store-1', address: 'store-1.bench.svc:8080' },
  { id: 'store-2', address: 'store-2.bench.svc:8080' },
];

const IMAGE = 'registry.example/sandstore:v1';

function build(memberList = members) {
  let bootstrap!: MembershipBootstrap;
  let etcd!: EtcdControlPlane;
  const objects = synthesize(
    (chart) => {
      const storage = new LocalSsdStorage(chart, 'storage', { taint: { key: 'node.sandstore.io/disk', value: 'ssd' } });
      etcd = new EtcdControlPlane(chart, 'etcd', { storage, replicas: 3, image: 'registry.example/etcd:v3.5.9' });
      bootstrap = new MembershipBootstrap(chart, 'bootstrap', {
        etcd,
        members: memberList,
        image: IMAGE,
        imagePullPolicy: 'Always',
        dataPlaneName: 'store',
        placement: storage.placement,
      });
    },
    { namespace: 'bench', labels: { [LabelKeys.profile]: 'p', [LabelKeys.instance]: 'p' } },
  );
  return { bootstrap, etcd, job: find(objects, 'Job', 'store-membership-bootstrap') };
}

describe('MembershipBootstrap', () => {
  test('one container writes one voter per member in one transaction, mounted from its annotation', () => {
    const { bootstrap, etcd, job } = build();
    expect(bootstrap.membership).toEqual(
      members.map((m) => ({
        key: `/sandstore/config/nodes/${m.id}`,
        value: JSON.stringify({ id: m.id, address: m.address, role: 'voter' }),
      })),
    );
    const annotations = job.spec.template.metadata.annotations;
    expect(membershipOfTxn(annotations[MEMBERSHIP_TXN_ANNOTATION])).toEqual(bootstrap.membership);
    expect(JSON.parse(annotations[MEMBERSHIP_ANNOTATION])).toEqual(bootstrap.membership);
    const pod = job.spec.template.spec;
    expect(pod.initContainers).toBeUndefined();
    expect(pod.containers).toHaveLength(1);
    const [c] = pod.containers;
    expect(c.image).toBe(IMAGE);
    expect(c.imagePullPolicy).toBe('Always');
    expect(Object.keys(c.resources.requests).sort()).toEqual(['cpu', 'ephemeral-storage', 'memory']);
    // etcd's client Service: the Job is applied with etcd, before its pod has an address.
    expect(c.env).toContainEqual({ name: 'ETCD_ENDPOINTS', value: etcd.clientServiceEndpoint });
    expect(etcd.clientServiceEndpoint).toBe('etcd-client.bench.svc:2379');
    expect(c.command.join(' ')).toMatch(
      /wget .*--post-file "\/etc\/membership\/txn.json" "http:\/\/\$endpoint\/v3\/kv\/txn"/,
    );
    expect(c.volumeMounts).toEqual([{ name: 'membership', mountPath: '/etc/membership', readOnly: true }]);
    expect(pod.volumes).toEqual([
      {
        name: 'membership',
        downwardAPI: {
          items: [
            { path: 'txn.json', fieldRef: { fieldPath: `metadata.annotations['${MEMBERSHIP_TXN_ANNOTATION}']` } },
          ],
        },
      },
    ]);
  });

  test('more members than one etcd transaction holds are refused, naming the field and the limit', () => {
    const many = Array.from({ length: 512 }, (_, i) => ({ id: `store-${i}`, address: `store-${i}.bench.svc:8080` }));
    expect(() => build(many)).toThrow(
      /MembershipBootstrap .*: invalid members \(512 of them\); expected at most 511: .* --max-txn-ops \(1024\)/,
    );
    expect(() => build(many.slice(0, 511))).not.toThrow();
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
