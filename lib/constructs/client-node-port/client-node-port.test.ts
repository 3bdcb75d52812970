import { ofKind, synthesize } from '../../../test/helpers.js';
import { EtcdControlPlane } from '../etcd-control-plane/index.js';
import { SandstoreCluster, type ExternalAccess } from '../sandstore-cluster/index.js';
import { ClientNodePort } from './client-node-port.js';
import { POD_NAME_LABEL } from '../../labels.js';

function build(replicas: number, externalAccess: ExternalAccess | undefined) {
  return synthesize((chart) => {
    const etcd = new EtcdControlPlane(chart, 'etcd');
    const cluster = new SandstoreCluster(chart, 'sandstore', {
      etcd,
      image: 'r/sandstore-node:t',
      replicas,
      externalAccess,
    });
    new ClientNodePort(chart, 'client', { cluster });
  });
}

describe('ClientNodePort', () => {
  test('one NodePort per pod, selected by its pod-name label, at base + ordinal', () => {
    const services = ofKind(build(5, {}), 'Service').filter((s) => s.spec.type === 'NodePort');
    expect(services.map((s) => [s.metadata.name, s.spec.selector[POD_NAME_LABEL], s.spec.ports[0].nodePort])).toEqual(
      Array.from({ length: 5 }, (_, i) => [`sandstore-${i}-external`, `sandstore-${i}`, 30080 + i]),
    );
    for (const s of services) expect(s.spec.ports[0]).toMatchObject({ port: 8080, targetPort: 'grpc' });
  });

  test('a cluster without external access is refused: its nodes would advertise no node port', () => {
    expect(() => build(3, undefined)).toThrow(
      /ClientNodePort test\/client: the cluster test\/sandstore has no externalAccess/,
    );
  });
});
