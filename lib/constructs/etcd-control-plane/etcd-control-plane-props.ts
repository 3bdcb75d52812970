/*
 * EtcdControlPlane's props and defaults. No cdk8s here (types only), so that the profile schema,
 * which the runner loads without cdk8s, can leave these to the construct.
 */
import type { LocalSsdStorage } from '../local-ssd-storage/local-ssd-storage.js';
import type { ContainerResources } from '../resources.js';

export interface EtcdControlPlaneProps {
  /**
   * Number of etcd members: 1 for a benchmark laptop, 3 or 5 to survive member loss. Odd only: an
   * even count raises the quorum without adding fault tolerance. At most 7, as etcd advises.
   * @default 1
   */
  readonly replicas?: number;
  /**
   * Name of the StatefulSet and of its headless service; members are `<name>-<ordinal>`.
   * @default 'etcd'
   */
  readonly name?: string;
  /**
   * etcd image; it must carry `etcd` and `etcdctl` (API v3).
   * @default 'quay.io/coreos/etcd:v3.5.0' (the image upstream Sand Store uses)
   */
  readonly image?: string;
  /**
   * Where the members' volumes come from and where the members run.
   * @default - the cluster's default StorageClass and no node placement
   */
  readonly storage?: LocalSsdStorage;
  /**
   * Volume size per member.
   * @default '1Gi'
   */
  readonly storageSize?: string;
  /**
   * CPU and memory per member.
   * @default { requests: { cpu: '100m', memory: '256Mi' }, limits: { cpu: '1', memory: '512Mi' } }
   */
  readonly resources?: ContainerResources;
}

/** The value of each optional prop that is left out (but `storage`, which has no value then). */
export const ETCD_CONTROL_PLANE_DEFAULTS = {
  replicas: 1,
  name: 'etcd',
  image: 'quay.io/coreos/etcd:v3.5.0',
  storageSize: '1Gi',
  resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { cpu: '1', memory: '512Mi' } },
} as const satisfies Omit<Required<EtcdControlPlaneProps>, 'storage'>;
