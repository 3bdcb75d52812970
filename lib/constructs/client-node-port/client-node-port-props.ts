import type { SandstoreCluster } from '../sandstore-cluster/sandstore-cluster.js';

export interface ClientNodePortProps {
  /** The data plane to expose, at the node ports its `externalAccess` names. */
  readonly cluster: SandstoreCluster;
  /**
   * A node port to the leader, whichever pod it is (the cluster's leader Service's selector): the
   * one address an outside client needs. Requires the cluster's `leaderRouting`.
   * @default - none
   */
  readonly leaderNodePort?: number;
}
