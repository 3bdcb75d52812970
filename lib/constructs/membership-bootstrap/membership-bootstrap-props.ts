import type { EtcdControlPlane } from '../etcd-control-plane/etcd-control-plane.js';
import type { StoragePlacement } from '../local-ssd-storage/local-ssd-storage.js';

/** A Sand Store node as its peers and clients know it. */
export interface SandstoreMember {
  /** Its node id, which is its pod's name. */
  readonly id: string;
  /** The in-cluster `host:port` that peers and clients dial. */
  readonly address: string;
}

export interface MembershipBootstrapProps {
  /** The control plane the membership is written to; its image carries `etcdctl`. */
  readonly etcd: EtcdControlPlane;
  /** Every node of the data plane, in ordinal order. */
  readonly members: readonly SandstoreMember[];
  /** The data plane's name: the Job is `<dataPlaneName>-membership-bootstrap`. */
  readonly dataPlaneName: string;
  /**
   * Where the Job's pod runs.
   * @default - anywhere
   */
  readonly placement?: StoragePlacement;
}
