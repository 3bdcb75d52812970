import type { EtcdControlPlane } from '../etcd-control-plane/etcd-control-plane.js';
import type { SandstoreCluster } from '../sandstore-cluster/sandstore-cluster.js';

export interface SandstoreNetworkPoliciesProps {
  readonly etcd: EtcdControlPlane;
  readonly cluster: SandstoreCluster;
}
