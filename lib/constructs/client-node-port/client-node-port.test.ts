import { find, ofKind, synthesize } from '../../../test/helpers.js';
import { EtcdControlPlane } from '../etcd-control-plane/index.js';
import { SandstoreCluster } from '../sandstore-cluster/index.js';
import { ClientNodePort, type ClientNodePortProps } from './client-node-port.js';
import { POD_NAME_LABEL } from '../../labels.js';

function build(replicas: number, props: Omit<ClientNodePortProps, 'cluster'> = {}) {
  return synthesize((chart) => {
    const etcd = new EtcdControlPlane(chart, 'etcd');
    const cluster = new SandstoreCluster(chart, 'sandstore', { etcd, image: 'r/sandstore-node:t', replicas });
    new ClientNodePort(chart, 'client', { cluster, ...props });
  });
}

describe('ClientNodePort', () => {
  test('one NodePort per pod, selected by its pod-name label, at base + ordinal', () => {
    const services = ofKind(build(5), 'Service').filter((s) => s.spec.type === 'NodePort');
    expect(services.map((s) => [s.metadata.name, s.spec.selector[POD_NAME_LABEL], s.spec.ports[0].nodePort])).toEqual(
      Array.from({ length: 5 }, (_, i) => [`sandstore-${i}-external`, `sandstore-${i}`, 30080 + i]),
    );
    for (const s of services) expect(s.spec.ports[0]).toMatchObject({ port: 8080, targetPort: 'grpc' });
  });

  test('the data plane advertises its leader at the node port: EXTERNAL_BASE_PORT, and HOST_IP or ADVERTISE_HOST', () => {
    const byHostIp = find(build(3, { basePort: 31000 }), 'ConfigMap', 'sandstore-config').data;
    expect(byHostIp.EXTERNAL_BASE_PORT).toBe('31000');
    expect(byHostIp.ADVERTISE_HOST).toBeUndefined();
    const byHost = find(build(3, { advertiseHost: '192.168.1.20' }), 'ConfigMap', 'sandstore-config').data;
    expect(byHost).toMatchObject({ EXTERNAL_BASE_PORT: '30080', ADVERTISE_HOST: '192.168.1.20' });
    const sts = find(build(3), 'StatefulSet', 'sandstore');
    expect(sts.spec.template.spec.containers[0].env).toContainEqual({ name: 'HOST_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } });
  });

  test.each([
    [3, 29999, /basePort 29999; expected a whole number from 30000 to 32767/],
    [3, 32768, /basePort 32768; expected a whole number from 30000 to 32767/],
    [5, 32765, /basePort 32765; expected at most 32763: with 5 Raft replicas the last node port would be 32769, above 32767/],
  ])('%i replicas at base %i are refused', (replicas, basePort, message) => {
    expect(() => build(replicas, { basePort })).toThrow(message);
  });
});
