/*
 * SandstoreCluster's props and defaults. No cdk8s here (types only): the profile schema imports
 * the accepted values and the pull policy's default from this file, and the runner loads the
 * schema without cdk8s.
 */
import type { EtcdControlPlane } from '../etcd-control-plane/etcd-control-plane.js';
import type { LocalSsdStorage } from '../local-ssd-storage/local-ssd-storage.js';
import type { ContainerResources } from '../resources.js';

/** When the kubelet pulls an image. */
export const IMAGE_PULL_POLICIES = ['Always', 'IfNotPresent', 'Never'] as const;
export type ImagePullPolicy = (typeof IMAGE_PULL_POLICIES)[number];

/**
 * Sand Store's Raft tunables (see the runtime contract); each a whole number from 1 to 10,000 that
 * Sand Store works with (rules.raftLogEntries, rules.batchWaitMs: why these bounds).
 */
export interface RaftTunables {
  /**
   * Entries batched per Raft append (RAFT_MAX_BATCH_SIZE).
   * @default 64
   */
  readonly maxBatchSize?: number;
  /**
   * How long a batch may wait, in milliseconds (RAFT_MAX_BATCH_WAIT_MS).
   * @default 10
   */
  readonly maxBatchWaitMs?: number;
  /**
   * Log entries before a snapshot (RAFT_SNAPSHOT_THRESHOLD_LOGS).
   * @default 1000
   */
  readonly snapshotThresholdLogs?: number;
}

/**
 * How clients outside the Kubernetes cluster reach each node: pod `i` at `<host>:<basePort + i>`,
 * which is also what a node advertises as the leader's address in a NOT_LEADER redirect. The node
 * ports themselves are ClientNodePort's.
 */
export interface ExternalAccess {
  /**
   * Node port of pod 0; pod `i` gets `basePort + i`. Every pod's port must fall in 30000-32767.
   * @default 30080
   */
  readonly basePort?: number;
  /**
   * The host that clients outside the cluster use (ADVERTISE_HOST), e.g. the laptop's LAN address.
   * @default - each pod advertises its node's IP (HOST_IP, from the downward API)
   */
  readonly advertiseHost?: string;
}

export interface SandstoreClusterProps {
  /** The control plane whose members become ETCD_ENDPOINTS and which the bootstrap Job writes to. */
  readonly etcd: EtcdControlPlane;
  /**
   * The node image, `<registry>/<repository>:<tag>`; it carries `sandstore`, `smoke`, and busybox's
   * `sh`, `wget` and `timeout`.
   */
  readonly image: string;
  /**
   * Raft members. Odd and at least 3: fewer cannot survive a failure, an even count adds no tolerance.
   * At most 501 (rules.raftReplicas: the bootstrap Job must fit in one etcd request).
   * @default 3
   */
  readonly replicas?: number;
  /**
   * Name of the StatefulSet; pods (and node ids) are `<name>-<ordinal>`.
   * @default 'sandstore'
   */
  readonly name?: string;
  /**
   * Where the volumes come from and where the pods run.
   * @default - the cluster's default StorageClass and no node placement
   */
  readonly storage?: LocalSsdStorage;
  /**
   * Volume size per pod.
   * @default '20Gi' (upstream's claim size)
   */
  readonly storageSize?: string;
  /**
   * CPU and memory per Sand Store container.
   * @default { requests: { cpu: '500m', memory: '512Mi' }, limits: { cpu: '2', memory: '2Gi' } }
   */
  readonly resources?: ContainerResources;
  /**
   * Raft tunables, written to the ConfigMap.
   * @default - each tunable's own default
   */
  readonly raft?: RaftTunables;
  /**
   * When the kubelet pulls the image. `Always` makes a rollout restart pick up a re-pushed tag.
   * @default 'Always'
   */
  readonly imagePullPolicy?: ImagePullPolicy;
  /**
   * The name of a Secret (type kubernetes.io/dockerconfigjson, in the chart's namespace) that the
   * kubelet pulls the image with: the pods of the StatefulSet and of the smoke test name it in
   * imagePullSecrets. Made by the operator (`kubectl create secret docker-registry`), not here.
   * @default - none: the image is pulled anonymously (or with the node's own registry credentials)
   */
  readonly imagePullSecret?: string;
  /**
   * Whether to generate the smoke-test Job (applied only on request: `npm run smoke`).
   * @default true
   */
  readonly smokeTest?: boolean;
  /**
   * Whether and how clients outside the Kubernetes cluster reach the nodes (give the cluster to a
   * ClientNodePort to open the ports).
   * @default - none: only pods in the namespace reach the nodes
   */
  readonly externalAccess?: ExternalAccess;
  /**
   * A sidecar in each pod keeps the pod's Raft role label (`sandstore.io/raft-role`) from Sand
   * Store's event log, and a Service `<name>-leader` selects the leader: one seed that a leader
   * answers (docs/leader-access.md). The sidecar's image is `sandstore-role-label`
   * (scripts/local-cluster/rolelabel).
   * @default - none: no role label, no leader Service
   */
  readonly leaderRouting?: LeaderRouting;
  /**
   * Whether a replaced member hears the leader before its own election timer runs out: Sand Store's
   * container holds the leader's first connection until Sand Store listens, then hands it over
   * (leader-handover.ts), and the `events` sidecar keeps a stopping pod's address for
   * `HANDOVER_LINGER_SECONDS`, so a dial kube-proxy still sends there is refused instead of lost
   * (docs/performance.md, "What does reach the window").
   * @default true
   */
  readonly leaderHandover?: boolean;
}

export interface LeaderRouting {
  /** The role sidecar's image, `<registry>/sandstore-role-label:<tag>`. */
  readonly roleLabelImage: string;
}

/**
 * The value of each optional prop that is left out (but `storage`, `externalAccess` and
 * `leaderRouting`, which have none).
 */
export const SANDSTORE_CLUSTER_DEFAULTS = {
  replicas: 3,
  name: 'sandstore',
  storageSize: '20Gi',
  resources: { requests: { cpu: '500m', memory: '512Mi' }, limits: { cpu: '2', memory: '2Gi' } },
  raft: { maxBatchSize: 64, maxBatchWaitMs: 10, snapshotThresholdLogs: 1000 },
  imagePullPolicy: 'Always',
  smokeTest: true,
  leaderHandover: true,
  externalAccessBasePort: 30080,
} as const satisfies Omit<
  Required<SandstoreClusterProps>,
  'etcd' | 'image' | 'storage' | 'externalAccess' | 'imagePullSecret' | 'leaderRouting'
> & {
  raft: Required<RaftTunables>;
  externalAccessBasePort: number;
};
