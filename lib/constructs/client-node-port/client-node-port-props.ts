import type { SandstoreCluster } from '../sandstore-cluster/sandstore-cluster.js';

export interface ClientNodePortProps {
  /** The data plane to expose, at the node ports its `externalAccess` names. */
  readonly cluster: SandstoreCluster;
}
