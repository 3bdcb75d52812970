import type { EtcdControlPlane } from '../etcd-control-plane/etcd-control-plane.js';
import type { StoragePlacement } from '../local-ssd-storage/local-ssd-storage.js';
import type { ImagePullPolicy } from '../sandstore-cluster/sandstore-cluster-props.js';

/** A Sand Store node as its peers and clients know it. */
export interface SandstoreMember {
  /** Its node id, which is its pod's name. */
  readonly id: string;
  /** The in-cluster `host:port` that peers and clients dial. */
  readonly address: string;
}

export interface MembershipBootstrapProps {
  /** The control plane the membership is written to. */
  readonly etcd: EtcdControlPlane;
  /**
   * The Job's image: it must carry a POSIX shell, `wget` (with `--post-file`) and `timeout`, as the
   * data plane's busybox-based image does (its wait-for-membership uses the same).
   */
  readonly image: string;
  /** The image's pull policy (the data plane's, for the same image). */
  readonly imagePullPolicy: ImagePullPolicy;
  /**
   * The Secret the kubelet pulls the image with (imagePullSecrets): the data plane's, for the same image.
   * @default - none
   */
  readonly imagePullSecret?: string;
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
