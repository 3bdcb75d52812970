import { Construct } from 'constructs';
import {
  IntOrString,
  KubeConfigMap,
  KubeJob,
  KubePodDisruptionBudget,
  KubeService,
  KubeStatefulSet,
  Quantity,
  type Container,
  type PodSecurityContext,
  type PodSpec,
  type Probe,
  type SecurityContext,
} from '../../../imports/k8s.js';
import { componentLabels, namespaceOf, selectorLabels } from '../scope.js';
import { Component, DeployPhase, phaseAnnotation, POD_NAME_LABEL, SandstoreContainers } from '../../labels.js';
import { check, quorum, rules } from '../../validation.js';
import type { EtcdControlPlane } from '../etcd-control-plane/index.js';
import type { LocalSsdStorage } from '../local-ssd-storage/index.js';
import { toResourceRequirements, volumeClaimSpec, type ContainerResources } from '../resources.js';
import { restrictedContainerSecurityContext, restrictedPodSecurityContext } from '../security.js';

/** Sand Store's Raft tunables (see the runtime contract); each must be a whole number > 0. */
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

export interface SandstoreClusterProps {
  /** The control plane whose members become ETCD_ENDPOINTS and which the bootstrap Job writes to. */
  readonly etcd: EtcdControlPlane;
  /** The node image, `<registry>/<repository>:<tag>`; it carries `sandstore`, `smoke`, and busybox's `sh`, `wget` and `timeout`. */
  readonly image: string;
  /**
   * Raft members. Odd and at least 3: fewer cannot survive a failure, an even count adds no tolerance.
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
  readonly imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
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

export const SANDSTORE_PORT = 8080;
export const SANDSTORE_METRICS_PORT = 2112;
export const MEMBERSHIP_PREFIX = '/sandstore/config/nodes/';
const DATA_DIR = '/var/lib/sandstore';

/** One entry of the static membership the bootstrap Job writes. */
export interface MembershipEntry {
  readonly key: string;
  readonly value: string;
}

/**
 * Sand Store's Raft data plane, per its runtime contract: the ConfigMap of its environment, a
 * headless service for peer DNS, the StatefulSet (one pod at a time, stable names and claims), a
 * PodDisruptionBudget that keeps quorum, the membership bootstrap Job for any replica count and an
 * optional smoke-test Job.
 */
export class SandstoreCluster extends Construct {
  public readonly name: string;
  public readonly replicas: number;
  public readonly image: string;
  public readonly headlessServiceName: string;
  public readonly configMapName: string;
  public readonly bootstrapJobName: string;
  /** Undefined when the smoke test is disabled. */
  public readonly smokeJobName?: string;
  /** Pod names in ordinal order: `<name>-0` ... */
  public readonly podNames: readonly string[];
  /** In-cluster `host:port` of every node, as peers and in-cluster clients reach them. */
  public readonly nodeAddresses: readonly string[];
  /** The etcd keys and values the bootstrap Job writes, in ordinal order. */
  public readonly membership: readonly MembershipEntry[];
  public readonly podSelector: Readonly<Record<string, string>>;
  public readonly bootstrapPodSelector: Readonly<Record<string, string>>;
  public readonly smokePodSelector: Readonly<Record<string, string>>;
  public readonly port = SANDSTORE_PORT;
  public readonly metricsPort = SANDSTORE_METRICS_PORT;
  /** Undefined when only pods in the namespace reach the nodes. */
  public readonly externalAccess?: { readonly basePort: number; readonly advertiseHost?: string };

  /** Where every pod of the cluster runs, Jobs included (undefined: anywhere). */
  private readonly placement?: LocalSsdStorage['placement'];

  public constructor(scope: Construct, id: string, props: SandstoreClusterProps) {
    super(scope, id);
    const who = `SandstoreCluster ${this.node.path}`;
    this.name = props.name ?? 'sandstore';
    this.replicas = props.replicas ?? 3;
    this.image = props.image;
    const storageSize = props.storageSize ?? '20Gi';
    check(who, 'name', this.name, rules.dnsLabel);
    check(who, 'replicas', this.replicas, rules.oddAtLeast(3));
    check(who, 'image', this.image, rules.imageReference);
    const raft: Required<RaftTunables> = {
      maxBatchSize: props.raft?.maxBatchSize ?? 64,
      maxBatchWaitMs: props.raft?.maxBatchWaitMs ?? 10,
      snapshotThresholdLogs: props.raft?.snapshotThresholdLogs ?? 1000,
    };
    for (const [tunable, value] of Object.entries(raft)) check(who, `raft.${tunable}`, value, rules.positiveInt);
    this.externalAccess = props.externalAccess && {
      basePort: props.externalAccess.basePort ?? 30080,
      advertiseHost: props.externalAccess.advertiseHost,
    };
    if (this.externalAccess) {
      check(who, 'externalAccess.basePort', this.externalAccess.basePort, rules.nodePort);
      check(who, 'externalAccess.basePort', this.externalAccess.basePort, rules.nodePortBaseFor(this.replicas));
      if (this.externalAccess.advertiseHost !== undefined) check(who, 'externalAccess.advertiseHost', this.externalAccess.advertiseHost, rules.nonEmpty);
    }
    const resources = toResourceRequirements(who, 'resources', props.resources ?? {
      requests: { cpu: '500m', memory: '512Mi' },
      limits: { cpu: '2', memory: '2Gi' },
    });

    const labels = componentLabels(this, this.name, Component.dataPlane);
    this.podSelector = selectorLabels(this, this.name, Component.dataPlane);
    this.headlessServiceName = `${this.name}-headless`;
    this.configMapName = `${this.name}-config`;
    this.bootstrapJobName = `${this.name}-membership-bootstrap`;
    this.podNames = Array.from({ length: this.replicas }, (_, i) => `${this.name}-${i}`);
    // Each node is addressed through a Service of its own (see below), whose virtual IP outlives the
    // pod's IP: `<pod>.<namespace>.svc:8080`.
    this.nodeAddresses = this.podNames.map((pod) => `${pod}.${namespaceOf(this)}.svc:${SANDSTORE_PORT}`);
    this.membership = this.podNames.map((pod, i) => ({
      key: `${MEMBERSHIP_PREFIX}${pod}`,
      value: JSON.stringify({ id: pod, address: this.nodeAddresses[i], role: 'voter' }),
    }));

    new KubeConfigMap(this, 'Config', {
      metadata: { name: this.configMapName, labels, annotations: phaseAnnotation(DeployPhase.base) },
      data: {
        ETCD_ENDPOINTS: props.etcd.clientEndpoints.join(','),
        LISTEN_ADDR: `:${SANDSTORE_PORT}`,
        DATA_DIR,
        RAFT_MAX_BATCH_SIZE: String(raft.maxBatchSize),
        RAFT_MAX_BATCH_WAIT_MS: String(raft.maxBatchWaitMs),
        RAFT_SNAPSHOT_THRESHOLD_LOGS: String(raft.snapshotThresholdLogs),
        ...(this.externalAccess && { EXTERNAL_BASE_PORT: String(this.externalAccess.basePort) }),
        ...(this.externalAccess?.advertiseHost !== undefined && { ADVERTISE_HOST: this.externalAccess.advertiseHost }),
      },
      // Written out as the API server would default it, so that the YAML says the data may change.
      immutable: false,
    });

    new KubeService(this, 'HeadlessService', {
      metadata: { name: this.headlessServiceName, labels, annotations: phaseAnnotation(DeployPhase.base) },
      spec: {
        clusterIp: 'None',
        // Raft peers must resolve each other before any of them is Ready.
        publishNotReadyAddresses: true,
        selector: { ...this.podSelector },
        ports: [
          { name: 'grpc', port: SANDSTORE_PORT, targetPort: IntOrString.fromString('grpc') },
          { name: 'metrics', port: SANDSTORE_METRICS_PORT, targetPort: IntOrString.fromString('metrics') },
        ],
      },
    });

    // One ClusterIP Service per pod, the address peers and in-cluster clients use. A restarted pod
    // gets a new IP, and a peer's gRPC connection resolves a name again at most every 30 s (its DNS
    // resolver's minimum interval): through the pod's own headless name, the leader kept dialing
    // the old IP and the restarted member, hearing no heartbeat, called election after election
    // for 30-40 s after each restart (seen on the real node). The Service's IP never changes;
    // kube-proxy sends it to whichever pod holds the name now, Ready or not (Raft peers must reach
    // each other before any of them is Ready).
    this.podNames.forEach((pod) => {
      new KubeService(this, `PeerService-${pod}`, {
        metadata: { name: pod, labels, annotations: phaseAnnotation(DeployPhase.base) },
        spec: {
          publishNotReadyAddresses: true,
          selector: { ...this.podSelector, [POD_NAME_LABEL]: pod },
          ports: [{ name: 'grpc', port: SANDSTORE_PORT, targetPort: IntOrString.fromString('grpc') }],
        },
      });
    });

    const tcp = (periodSeconds: number, failureThreshold: number): Probe => ({
      tcpSocket: { port: IntOrString.fromString('grpc') },
      periodSeconds,
      failureThreshold,
      timeoutSeconds: 3,
    });
    const placement = props.storage?.placement;
    this.placement = placement;
    const podSecurity = restrictedPodSecurityContext();
    const containerSecurity = restrictedContainerSecurityContext();

    new KubeStatefulSet(this, 'StatefulSet', {
      metadata: { name: this.name, labels, annotations: phaseAnnotation(DeployPhase.dataPlane) },
      spec: {
        replicas: this.replicas,
        serviceName: this.headlessServiceName,
        // Every member starts at once, as consensus systems on Kubernetes do (CockroachDB's chart
        // too): the membership is in etcd before the data plane starts (the bootstrap Job), so an
        // ordered start buys nothing and costs one pod's start-up per replica. The policy governs
        // creation and deletion only: a rolling update still replaces one pod at a time.
        podManagementPolicy: 'Parallel',
        // Replaces the highest ordinal first, one pod at a time, each once the one before is Ready;
        // the runner raises the partition to halt a rollout whose new pod does not become Ready.
        updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 0 } },
        persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' },
        selector: { matchLabels: { ...this.podSelector } },
        template: {
          metadata: {
            labels,
            annotations: {
              'prometheus.io/scrape': 'true',
              'prometheus.io/port': String(SANDSTORE_METRICS_PORT),
              'prometheus.io/path': '/metrics',
            },
          },
          spec: {
            securityContext: podSecurity,
            nodeSelector: placement ? { ...placement.nodeSelector } : undefined,
            tolerations: placement ? [...placement.tolerations] : undefined,
            automountServiceAccountToken: false,
            terminationGracePeriodSeconds: 30,
            affinity: {
              podAntiAffinity: {
                // Preferred, not required: a one-node benchmark laptop must still run every member.
                preferredDuringSchedulingIgnoredDuringExecution: [{
                  weight: 100,
                  podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { ...this.podSelector } } },
                }],
              },
            },
            initContainers: [this.waitForMembershipContainer(props, resources, containerSecurity)],
            containers: [{
              name: SandstoreContainers.node,
              image: this.image,
              imagePullPolicy: props.imagePullPolicy ?? 'Always',
              args: ['--server', 'node'],
              envFrom: [{ configMapRef: { name: this.configMapName } }],
              env: [
                { name: 'NODE_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                // Only used together with EXTERNAL_BASE_PORT (see externalAccess); harmless otherwise.
                { name: 'HOST_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } },
              ],
              ports: [
                { name: 'grpc', containerPort: SANDSTORE_PORT },
                { name: 'metrics', containerPort: SANDSTORE_METRICS_PORT },
              ],
              // Registration with etcd may take up to its 30 s timeout before the port opens.
              startupProbe: tcp(2, 30),
              readinessProbe: tcp(5, 3),
              livenessProbe: tcp(10, 6),
              resources,
              securityContext: containerSecurity,
              volumeMounts: [
                { name: 'data', mountPath: DATA_DIR },
                { name: 'tmp', mountPath: '/tmp' },
              ],
            }, this.eventsContainer(props, containerSecurity)],
            volumes: [{ name: 'tmp', emptyDir: {} }],
          },
        },
        volumeClaimTemplates: [{
          metadata: { name: 'data', labels },
          spec: volumeClaimSpec(who, 'storageSize', storageSize, props.storage?.storageClassName),
        }],
      },
    });

    new KubePodDisruptionBudget(this, 'DisruptionBudget', {
      metadata: { name: this.name, labels, annotations: phaseAnnotation(DeployPhase.base) },
      // A voluntary disruption may take a member only while a majority stays available.
      spec: { minAvailable: IntOrString.fromNumber(quorum(this.replicas)), selector: { matchLabels: { ...this.podSelector } } },
    });

    this.bootstrapPodSelector = selectorLabels(this, this.name, Component.membershipBootstrap);
    this.bootstrapJob(props.etcd, containerSecurity, podSecurity);

    this.smokePodSelector = selectorLabels(this, this.name, Component.smokeTest);
    if (props.smokeTest ?? true) {
      this.smokeJobName = `${this.name}-smoke-test`;
      this.smokeJob(props, containerSecurity, podSecurity);
    }
  }

  /**
   * Sand Store writes its events (elections, replication, requests) to `<DATA_DIR>/logs/<NODE_ID>.log`
   * on its volume and nothing to stdout. A streaming sidecar, the pattern Kubernetes documents for
   * programs that log to a file, follows that file to its own stdout, so `kubectl logs <pod> -c
   * events` (and `npm run logs`) show them as they happen, while the file stays on the volume.
   */
  private eventsContainer(props: SandstoreClusterProps, securityContext: SecurityContext): Container {
    return {
      name: SandstoreContainers.events,
      image: this.image,
      imagePullPolicy: props.imagePullPolicy ?? 'Always',
      // -F: follow by name and wait for the file, which Sand Store creates once it starts. The shell
      // stays PID 1 with a trap, so the container stops at once on SIGTERM (tail as PID 1 ignores it).
      command: ['sh', '-c', `trap "exit 0" TERM INT\ntail -n +1 -F "${DATA_DIR}/logs/$NODE_ID.log" &\nwait`],
      env: [{ name: 'NODE_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
      resources: { requests: { cpu: Quantity.fromString('10m'), memory: Quantity.fromString('16Mi') }, limits: { cpu: Quantity.fromString('100m'), memory: Quantity.fromString('32Mi') } },
      securityContext,
      volumeMounts: [{ name: 'data', mountPath: DATA_DIR, readOnly: true }],
    };
  }

  /**
   * The image's shell and wget poll etcd's JSON gateway until this node's membership key exists,
   * so a node that starts before etcd (or before the bootstrap Job) waits instead of failing its
   * 30 s registration and crash-looping. Each attempt is bounded by busybox's `timeout` rather than
   * `wget -T`, which crashes (SIGSEGV) in Debian's busybox-static 1.35, found on the real node.
   */
  private waitForMembershipContainer(props: SandstoreClusterProps, resources: ReturnType<typeof toResourceRequirements>, securityContext: SecurityContext): Container {
    const script = [
      // The shell is PID 1 of its container, which ignores SIGTERM unless trapped: without this a
      // waiting pod would hold its deletion for the whole grace period.
      'trap "exit 143" TERM INT',
      'key=$(printf "%s%s" "$MEMBERSHIP_PREFIX" "$NODE_ID" | base64 | tr -d "\\n")',
      'while :; do',
      '  for endpoint in $(echo "$ETCD_ENDPOINTS" | tr "," " "); do',
      '    if timeout 3 wget -q -O - --post-data "{\\"key\\":\\"$key\\"}" "http://$endpoint/v3/kv/range" 2>/dev/null | grep -q "\\"kvs\\""; then',
      '      echo "membership of $NODE_ID found in etcd at $endpoint"; exit 0',
      '    fi',
      '  done',
      '  echo "waiting for etcd ($ETCD_ENDPOINTS) to hold the membership of $NODE_ID"',
      '  sleep 2',
      'done',
    ].join('\n');
    return {
      name: 'wait-for-membership',
      image: this.image,
      imagePullPolicy: props.imagePullPolicy ?? 'Always',
      command: ['sh', '-c', script],
      env: [
        { name: 'NODE_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
        { name: 'ETCD_ENDPOINTS', valueFrom: { configMapKeyRef: { name: this.configMapName, key: 'ETCD_ENDPOINTS' } } },
        { name: 'MEMBERSHIP_PREFIX', value: MEMBERSHIP_PREFIX },
      ],
      resources: { requests: resources.requests, limits: resources.limits },
      securityContext,
    };
  }

  /**
   * Writes the static membership: clear the prefix, then one key per node. etcd's image has no
   * shell, so each etcdctl call is its own init container, generated for any replica count.
   */
  private bootstrapJob(etcd: EtcdControlPlane, securityContext: SecurityContext, podSecurity: PodSecurityContext) {
    const env = [
      { name: 'ETCDCTL_API', value: '3' },
      { name: 'ETCDCTL_ENDPOINTS', value: etcd.clientEndpoints.join(',') },
      { name: 'ETCDCTL_DIAL_TIMEOUT', value: '5s' },
    ];
    const etcdctl = (name: string, args: string[]): Container => ({
      name,
      image: etcd.image,
      command: ['etcdctl', ...args],
      env,
      resources: { requests: { cpu: Quantity.fromString('10m'), memory: Quantity.fromString('32Mi') }, limits: { cpu: Quantity.fromString('100m'), memory: Quantity.fromString('64Mi') } },
      securityContext,
    });
    this.job('MembershipBootstrap', this.bootstrapJobName, Component.membershipBootstrap, DeployPhase.bootstrap, 2, podSecurity, {
      initContainers: [
        etcdctl('clear-membership', ['del', '--prefix', MEMBERSHIP_PREFIX]),
        ...this.membership.map((entry, i) => etcdctl(`register-member-${i}`, ['put', entry.key, entry.value])),
      ],
      containers: [etcdctl('show-membership', ['get', '--prefix', MEMBERSHIP_PREFIX])],
    });
  }

  /** A run-to-completion Job whose pods never restart in place and pass "restricted". */
  private job(id: string, name: string, component: Component, phase: DeployPhase, backoffLimit: number, securityContext: PodSecurityContext, pod: Pick<PodSpec, 'containers' | 'initContainers' | 'volumes'>) {
    const labels = componentLabels(this, this.name, component);
    new KubeJob(this, id, {
      metadata: { name, labels, annotations: phaseAnnotation(phase) },
      spec: {
        backoffLimit,
        activeDeadlineSeconds: 300,
        template: {
          metadata: { labels },
          spec: {
            restartPolicy: 'Never',
            securityContext,
            automountServiceAccountToken: false,
            // On the profile's nodes like the data plane: on a cluster whose other nodes cannot run
            // Sand Store's images (kwok nodes beside a real one), a Job elsewhere would never write the
            // membership or reach the data plane the way its pods do.
            nodeSelector: this.placement ? { ...this.placement.nodeSelector } : undefined,
            tolerations: this.placement ? [...this.placement.tolerations] : undefined,
            ...pod,
          },
        },
      },
    });
  }

  private smokeJob(props: SandstoreClusterProps, securityContext: SecurityContext, podSecurity: PodSecurityContext) {
    this.job('SmokeTest', this.smokeJobName!, Component.smokeTest, DeployPhase.onDemand, 0, podSecurity, {
      containers: [{
        name: 'smoke',
        image: this.image,
        imagePullPolicy: props.imagePullPolicy ?? 'Always',
        command: ['/usr/local/bin/smoke'],
        // The client writes its own log under ./run/smoke/logs: the writable emptyDir, not the
        // read-only root (found on the real node: "mkdir run: read-only file system").
        workingDir: '/tmp',
        env: [{ name: 'SANDSTORE_SEEDS', value: this.nodeAddresses.join(',') }],
        securityContext,
        volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
      }],
      volumes: [{ name: 'tmp', emptyDir: {} }],
    });
  }
}
