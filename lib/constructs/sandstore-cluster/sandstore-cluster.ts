import { Construct } from 'constructs';
import {
  IntOrString,
  KubeConfigMap,
  KubeService,
  KubeStatefulSet,
  type Container,
  type Probe,
} from '../../../imports/k8s.js';
import {
  Component,
  DeployPhase,
  phaseAnnotation,
  POD_NAME_LABEL,
  SandstoreContainers,
  SEED_CLAIM_LABELS,
  SEED_POD_LABELS,
} from '../../labels.js';
import { check, rules } from '../../validation.js';
import { Declared, declareFindings } from '../checker-declarations.js';
import type { EtcdControlPlane } from '../etcd-control-plane/etcd-control-plane.js';
import { podPlacement, type StoragePlacement } from '../local-ssd-storage/local-ssd-storage.js';
import {
  ETCD_RETRY_SECONDS,
  MEMBERSHIP_PREFIX,
  MembershipBootstrap,
} from '../membership-bootstrap/membership-bootstrap.js';
import {
  checkResources,
  EPHEMERAL_STORAGE,
  toResourceRequirements,
  volumeClaimSpec,
  type ContainerResources,
} from '../resources.js';
import { componentLabels, namespaceOf, preferSeparateHosts, quorumDisruptionBudget, selectorLabels } from '../scope.js';
import { restrictedContainerSecurityContext, restrictedPodSecurityContext } from '../security.js';
import { SmokeTest } from '../smoke-test/smoke-test.js';
import { handoverScript, heldConnectionScript, HANDOVER_SCRIPT_ENV, releaseGateScript } from './leader-handover.js';
import { LeaderRouting } from './leader-routing.js';
import {
  SANDSTORE_CLUSTER_DEFAULTS as DEFAULTS,
  type ImagePullPolicy,
  type RaftTunables,
  type SandstoreClusterProps,
} from './sandstore-cluster-props.js';

const SANDSTORE_PORT = 8080;
const SANDSTORE_METRICS_PORT = 2112;
const DATA_DIR = '/var/lib/sandstore';
/**
 * How long a stopping pod keeps its address after SIGTERM: kube-proxy moves a Service ~1 s after
 * its endpoint goes (its `minSyncPeriod`), and a dial DNATed to an address nobody holds waits out
 * gRPC's 20 s connect timeout. Measured on the real node: 2 s covers it.
 */
export const HANDOVER_LINGER_SECONDS = 2;
/** How long a restarted member waits for the leader's dial; the leader's back-off steps reach ~4 s. */
const HANDOVER_HOLD_SECONDS = 8;
const HANDOVER_VOLUME = 'leader-handover';
const HANDOVER = {
  port: SANDSTORE_PORT,
  dataDir: DATA_DIR,
  scratchDir: '/run/leader-handover',
  holdSeconds: HANDOVER_HOLD_SECONDS,
  // Sand Store registers with etcd (up to its 30 s timeout) before it starts Raft and listens.
  listenSeconds: 30,
} as const;

/**
 * Sand Store's Raft data plane, per its runtime contract: the ConfigMap of its environment, a
 * headless service for peer DNS and a Service per pod, the StatefulSet, a PodDisruptionBudget that
 * keeps quorum, the membership bootstrap Job for any replica count and an optional smoke-test Job.
 */
export class SandstoreCluster extends Construct {
  public readonly name: string;
  public readonly replicas: number;
  public readonly image: string;
  public readonly imagePullPolicy: ImagePullPolicy;
  /** Undefined: pulled without a Secret. */
  public readonly imagePullSecret?: string;
  public readonly storageSize: string;
  public readonly resources: ContainerResources;
  public readonly raft: Required<RaftTunables>;
  /** Undefined when only pods in the namespace reach the nodes. */
  public readonly externalAccess?: { readonly basePort: number; readonly advertiseHost?: string };
  public readonly headlessServiceName: string;
  public readonly configMapName: string;
  /** Pod names in ordinal order: `<name>-0` ... */
  public readonly podNames: readonly string[];
  /** In-cluster `host:port` of every node, as peers and in-cluster clients reach them. */
  public readonly nodeAddresses: readonly string[];
  public readonly podSelector: Readonly<Record<string, string>>;
  public readonly port = SANDSTORE_PORT;
  public readonly metricsPort = SANDSTORE_METRICS_PORT;
  public readonly membershipBootstrap: MembershipBootstrap;
  /** Undefined when the smoke test is disabled. */
  public readonly smokeTest?: SmokeTest;
  public readonly leaderHandover: boolean;
  /** The leader's Service and the role sidecar; undefined without `leaderRouting`. */
  public readonly leaderRouting?: LeaderRouting;

  /** Where every pod of the cluster runs, Jobs included (undefined: anywhere). */
  private readonly placement?: StoragePlacement;
  private readonly labels: Readonly<Record<string, string>>;
  /** Where wait-for-membership asks etcd: its client Service, which resolves before etcd's pods have addresses. */
  private readonly etcdGateEndpoint: string;

  public constructor(scope: Construct, id: string, props: SandstoreClusterProps) {
    super(scope, id);
    const who = `SandstoreCluster ${this.node.path}`;
    this.name = props.name ?? DEFAULTS.name;
    this.replicas = props.replicas ?? DEFAULTS.replicas;
    this.image = props.image;
    this.imagePullPolicy = props.imagePullPolicy ?? DEFAULTS.imagePullPolicy;
    this.imagePullSecret = props.imagePullSecret;
    this.storageSize = props.storageSize ?? DEFAULTS.storageSize;
    this.resources = props.resources ?? DEFAULTS.resources;
    this.leaderHandover = props.leaderHandover ?? DEFAULTS.leaderHandover;
    this.raft = {
      maxBatchSize: props.raft?.maxBatchSize ?? DEFAULTS.raft.maxBatchSize,
      maxBatchWaitMs: props.raft?.maxBatchWaitMs ?? DEFAULTS.raft.maxBatchWaitMs,
      snapshotThresholdLogs: props.raft?.snapshotThresholdLogs ?? DEFAULTS.raft.snapshotThresholdLogs,
    };
    this.externalAccess = props.externalAccess && {
      basePort: props.externalAccess.basePort ?? DEFAULTS.externalAccessBasePort,
      advertiseHost: props.externalAccess.advertiseHost,
    };
    check(who, 'name', this.name, rules.dnsLabel);
    check(who, 'replicas', this.replicas, rules.raftReplicas);
    check(who, 'image', this.image, rules.imageReference);
    if (this.imagePullSecret !== undefined) check(who, 'imagePullSecret', this.imagePullSecret, rules.dnsSubdomain);
    check(who, 'storageSize', this.storageSize, rules.bytes);
    checkResources(who, 'resources', this.resources);
    check(who, 'raft.maxBatchSize', this.raft.maxBatchSize, rules.raftLogEntries);
    check(who, 'raft.maxBatchWaitMs', this.raft.maxBatchWaitMs, rules.batchWaitMs);
    check(who, 'raft.snapshotThresholdLogs', this.raft.snapshotThresholdLogs, rules.raftLogEntries);
    if (this.externalAccess) {
      check(who, 'externalAccess.basePort', this.externalAccess.basePort, rules.nodePort);
      check(who, 'externalAccess.basePort', this.externalAccess.basePort, rules.nodePortBaseFor(this.replicas));
      if (this.externalAccess.advertiseHost !== undefined)
        check(who, 'externalAccess.advertiseHost', this.externalAccess.advertiseHost, rules.host);
    }

    this.labels = componentLabels(this, this.name, Component.dataPlane);
    this.podSelector = selectorLabels(this, this.name, Component.dataPlane);
    this.placement = props.storage?.placement;
    this.headlessServiceName = `${this.name}-headless`;
    this.configMapName = `${this.name}-config`;
    this.etcdGateEndpoint = props.etcd.clientServiceEndpoint;
    this.podNames = Array.from({ length: this.replicas }, (_, i) => `${this.name}-${i}`);
    // Each node is addressed through a Service of its own (see peerServices), whose virtual IP
    // outlives the pod's IP: `<pod>.<namespace>.svc:8080`.
    this.nodeAddresses = this.podNames.map((pod) => `${pod}.${namespaceOf(this)}.svc:${SANDSTORE_PORT}`);

    if (props.leaderRouting) {
      check(who, 'leaderRouting.roleLabelImage', props.leaderRouting.roleLabelImage, rules.imageReference);
      this.leaderRouting = new LeaderRouting(
        this,
        'LeaderRouting',
        {
          name: this.name,
          podNames: this.podNames,
          podSelector: this.podSelector,
          labels: this.labels,
          port: SANDSTORE_PORT,
          dataDir: DATA_DIR,
          imagePullPolicy: this.imagePullPolicy,
        },
        props.leaderRouting.roleLabelImage,
      );
    }
    this.configMap(props.etcd);
    this.headlessService();
    this.peerServices();
    this.statefulSet(props.storage?.storageClassName);
    quorumDisruptionBudget(this, {
      name: this.name,
      labels: this.labels,
      members: this.replicas,
      podSelector: this.podSelector,
    });
    this.membershipBootstrap = new MembershipBootstrap(this, 'MembershipBootstrap', {
      etcd: props.etcd,
      image: this.image,
      imagePullPolicy: this.imagePullPolicy,
      imagePullSecret: this.imagePullSecret,
      members: this.podNames.map((pod, i) => ({ id: pod, address: this.nodeAddresses[i] })),
      dataPlaneName: this.name,
      placement: this.placement,
    });
    if (props.smokeTest ?? DEFAULTS.smokeTest) {
      this.smokeTest = new SmokeTest(this, 'SmokeTest', {
        dataPlaneName: this.name,
        image: this.image,
        imagePullPolicy: this.imagePullPolicy,
        imagePullSecret: this.imagePullSecret,
        seeds: this.nodeAddresses,
        placement: this.placement,
      });
    }
  }

  /** Sand Store's environment; with external access, also how a leader advertises itself outside. */
  private configMap(etcd: EtcdControlPlane): void {
    new KubeConfigMap(this, 'Config', {
      metadata: { name: this.configMapName, labels: this.labels, annotations: phaseAnnotation(DeployPhase.base) },
      data: {
        ETCD_ENDPOINTS: etcd.clientEndpoints.join(','),
        LISTEN_ADDR: `:${SANDSTORE_PORT}`,
        DATA_DIR,
        RAFT_MAX_BATCH_SIZE: String(this.raft.maxBatchSize),
        RAFT_MAX_BATCH_WAIT_MS: String(this.raft.maxBatchWaitMs),
        RAFT_SNAPSHOT_THRESHOLD_LOGS: String(this.raft.snapshotThresholdLogs),
        ...(this.externalAccess && { EXTERNAL_BASE_PORT: String(this.externalAccess.basePort) }),
        ...(this.externalAccess?.advertiseHost !== undefined && { ADVERTISE_HOST: this.externalAccess.advertiseHost }),
      },
      // Written out as the API server would default it, so that the YAML says the data may change.
      immutable: false,
    });
  }

  private headlessService(): void {
    new KubeService(this, 'HeadlessService', {
      metadata: { name: this.headlessServiceName, labels: this.labels, annotations: phaseAnnotation(DeployPhase.base) },
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
  }

  /**
   * One ClusterIP Service per pod, the address peers and in-cluster clients use. A restarted pod
   * gets a new IP, and a peer's gRPC connection resolves a name again at most every 30 s (its DNS
   * resolver's minimum interval): through the pod's own headless name, the leader kept dialing the
   * old IP and the restarted member, hearing no heartbeat, called election after election for
   * 30-40 s after each restart (seen on the real node). The Service's IP never changes; kube-proxy
   * sends it to whichever pod holds the name now, Ready or not (Raft peers must reach each other
   * before any of them is Ready).
   */
  private peerServices(): void {
    for (const pod of this.podNames) {
      declareFindings(
        new KubeService(this, `PeerService-${pod}`, {
          metadata: { name: pod, labels: this.labels, annotations: phaseAnnotation(DeployPhase.base) },
          spec: {
            publishNotReadyAddresses: true,
            selector: { ...this.podSelector, [POD_NAME_LABEL]: pod },
            ports: [{ name: 'grpc', port: SANDSTORE_PORT, targetPort: IntOrString.fromString('grpc') }],
          },
        }),
        Declared.perPodServiceSelector,
      );
    }
  }

  private statefulSet(storageClassName: string | undefined): void {
    const statefulSet = new KubeStatefulSet(this, 'StatefulSet', {
      metadata: { name: this.name, labels: this.labels, annotations: phaseAnnotation(DeployPhase.dataPlane) },
      spec: {
        replicas: this.replicas,
        serviceName: this.headlessServiceName,
        // Every member starts at once, as consensus systems on Kubernetes do (CockroachDB's chart
        // too): the membership is in etcd before the data plane starts (the bootstrap Job), so an
        // ordered start buys nothing and costs one pod's start-up per replica. The policy governs
        // creation and deletion only: a rolling update still replaces one pod at a time.
        podManagementPolicy: 'Parallel',
        // For `kubectl apply` users: the highest ordinal first, one pod at a time, each once the one
        // before is Ready. `npm run update` switches it to OnDelete and replaces the pods itself in
        // quorum order (lib/runner/quorum-roll.ts), then sets this back.
        updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 0 } },
        persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' },
        selector: { matchLabels: { ...this.podSelector } },
        template: {
          metadata: {
            labels: { ...this.labels, ...SEED_POD_LABELS },
            annotations: {
              'prometheus.io/scrape': 'true',
              'prometheus.io/port': String(SANDSTORE_METRICS_PORT),
              'prometheus.io/path': '/metrics',
            },
          },
          spec: {
            securityContext: restrictedPodSecurityContext(),
            ...podPlacement(this.placement),
            automountServiceAccountToken: false,
            ...(this.imagePullSecret !== undefined && { imagePullSecrets: [{ name: this.imagePullSecret }] }),
            ...(this.leaderRouting && { serviceAccountName: this.leaderRouting.serviceAccountName }),
            terminationGracePeriodSeconds: 30,
            affinity: preferSeparateHosts(this.podSelector),
            initContainers: [this.waitForMembershipContainer()],
            // The handover, when on, first: the kubelet starts Sand Store only after its postStart.
            containers: [
              ...(this.leaderHandover ? [this.handoverContainer()] : []),
              this.nodeContainer(),
              this.eventsContainer(),
              ...(this.leaderRouting ? [this.leaderRouting.sidecar()] : []),
            ],
            volumes: [
              { name: 'tmp', emptyDir: {} },
              ...(this.leaderHandover ? [{ name: HANDOVER_VOLUME, emptyDir: {} }] : []),
              ...(this.leaderRouting ? [this.leaderRouting.tokenVolume()] : []),
            ],
          },
        },
        volumeClaimTemplates: [
          {
            metadata: { name: 'data', labels: { ...this.labels, ...SEED_CLAIM_LABELS } },
            spec: volumeClaimSpec(this.storageSize, storageClassName),
          },
        ],
      },
    });
    declareFindings(statefulSet, Declared.imageByTag, Declared.eventsSidecarProbes);
  }

  /** Sand Store itself, configured by the ConfigMap and its pod's name, run as its image says. */
  private nodeContainer(): Container {
    const tcp = (periodSeconds: number, failureThreshold: number): Probe => ({
      tcpSocket: { port: IntOrString.fromString('grpc') },
      periodSeconds,
      failureThreshold,
      timeoutSeconds: 3,
    });
    return {
      name: SandstoreContainers.node,
      image: this.image,
      imagePullPolicy: this.imagePullPolicy,
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
      // Registration with etcd may take up to its 30 s timeout before the port opens: 60 s of
      // patience. Asked every second, not two: a deploy or a roll waits on this probe once per
      // pod, and the second probe alone cost ~0.5 s of each on the real node. (The leader
      // handover's listener is closed before this container starts.)
      startupProbe: tcp(1, 60),
      // Ready: it accepts gRPC connections, which peers and clients use. Sand Store exposes no
      // richer signal (no health service, no role in its metrics): docs/leader-access.md.
      readinessProbe: tcp(5, 3),
      // Alive: its metrics server, which the program starts first, answers an HTTP request. A TCP
      // connect to the gRPC port would not tell: the kernel completes the handshake for an open
      // listening socket even while the program itself is stuck.
      livenessProbe: {
        httpGet: { path: '/metrics', port: IntOrString.fromString('metrics') },
        periodSeconds: 10,
        failureThreshold: 6,
        timeoutSeconds: 3,
      },
      resources: toResourceRequirements(this.resources, EPHEMERAL_STORAGE.logging),
      securityContext: restrictedContainerSecurityContext(),
      volumeMounts: [
        { name: 'data', mountPath: DATA_DIR },
        { name: 'tmp', mountPath: '/tmp' },
      ],
    };
  }

  /**
   * The leader handover (leader-handover.ts): holds a peer's connection on the gRPC port while a
   * restarted member's Sand Store starts. Sand Store's image (its busybox), so that nothing more is
   * pulled; Sand Store's own container keeps the image's entrypoint and its command.
   */
  private handoverContainer(): Container {
    return {
      name: SandstoreContainers.handover,
      image: this.image,
      imagePullPolicy: this.imagePullPolicy,
      command: ['sh', '-c', handoverScript(HANDOVER)],
      env: [{ name: HANDOVER_SCRIPT_ENV, value: heldConnectionScript(HANDOVER) }],
      lifecycle: { postStart: { exec: { command: ['sh', '-c', releaseGateScript(HANDOVER)] } } },
      resources: toResourceRequirements(
        { requests: { cpu: '10m', memory: '16Mi' }, limits: { cpu: '100m', memory: '32Mi' } },
        EPHEMERAL_STORAGE.quiet,
      ),
      securityContext: restrictedContainerSecurityContext(),
      volumeMounts: [
        { name: 'data', mountPath: DATA_DIR, readOnly: true },
        { name: HANDOVER_VOLUME, mountPath: HANDOVER.scratchDir },
      ],
    };
  }

  /**
   * Sand Store writes its events (elections, replication, requests) to `<DATA_DIR>/logs/<NODE_ID>.log`
   * on its volume and nothing to stdout. A streaming sidecar, the pattern Kubernetes documents for
   * programs that log to a file, follows that file to its own stdout, so `kubectl logs <pod> -c
   * events` (and `npm run logs`) show them as they happen, while the file stays on the volume.
   */
  private eventsContainer(): Container {
    return {
      name: SandstoreContainers.events,
      image: this.image,
      imagePullPolicy: this.imagePullPolicy,
      // -F: follow by name and wait for the file, which Sand Store creates once it starts. The shell
      // stays PID 1 with a trap, so the container stops on SIGTERM (tail as PID 1 ignores it): at
      // once, or with the leader handover after HANDOVER_LINGER_SECONDS, keeping the pod's address.
      command: [
        'sh',
        '-c',
        `trap "${this.leaderHandover ? `sleep ${HANDOVER_LINGER_SECONDS}; ` : ''}exit 0" TERM INT\ntail -n +1 -F "${DATA_DIR}/logs/$NODE_ID.log" &\nwait`,
      ],
      env: [{ name: 'NODE_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
      resources: toResourceRequirements(
        { requests: { cpu: '10m', memory: '16Mi' }, limits: { cpu: '100m', memory: '32Mi' } },
        EPHEMERAL_STORAGE.logging,
      ),
      securityContext: restrictedContainerSecurityContext(),
      volumeMounts: [{ name: 'data', mountPath: DATA_DIR, readOnly: true }],
    };
  }

  /**
   * The image's shell and wget poll etcd's JSON gateway until this node's membership key exists,
   * so a node that starts before etcd (or before the bootstrap Job) waits instead of failing its
   * 30 s registration and crash-looping. Each attempt is bounded by busybox's `timeout` rather than
   * `wget -T`, which crashes (SIGSEGV) in Debian's busybox-static 1.35, found on the real node.
   *
   * Attempts start every ETCD_RETRY_SECONDS in the background, none waits for the one before: a
   * NetworkPolicy enforcer admits a new pod's address only once it has seen the pod's IP (kube-router
   * on the real node: 0.1–0.3 s after the pod's first packet), and the REJECT of a first SYN sent
   * before then is lost when the enforcer runs on the pod's own node (the ICMP comes back while
   * connect() still holds the socket: the pod's LockDroppedIcmps), so that attempt stalls for TCP's
   * 1 s initial retransmission. Busybox's `timeout` counts whole seconds and cannot cut it shorter.
   */
  private waitForMembershipContainer(): Container {
    const script = [
      // The shell is PID 1 of its container, which ignores SIGTERM unless trapped: without this a
      // waiting pod would hold its deletion for the whole grace period.
      'trap "exit 143" TERM INT',
      // An attempt that finds the key signals the shell (`$$$$`: Kubernetes turns `$$` into `$`),
      // which exits at once with success.
      'trap "exit 0" USR1',
      'key=$(printf "%s%s" "$MEMBERSHIP_PREFIX" "$NODE_ID" | base64 | tr -d "\\n")',
      'tries=0',
      'while :; do',
      '  for endpoint in $(echo "$ETCD_ENDPOINTS" | tr "," " "); do',
      '    { timeout 3 wget -q -O - --post-data "{\\"key\\":\\"$key\\"}" ' +
        '"http://$endpoint/v3/kv/range" 2>/dev/null | grep -q "\\"kvs\\"" && ' +
        'echo "membership of $NODE_ID found in etcd at $endpoint after $tries earlier tries" && kill -USR1 $$$$; } &',
      '  done',
      // Said once a second has passed without the key, then every 50 tries (about every 10 s).
      '  [ $((tries % 50)) -eq 5 ] && echo "waiting for etcd ($ETCD_ENDPOINTS) to hold the membership of $NODE_ID"',
      '  tries=$((tries + 1))',
      `  sleep ${ETCD_RETRY_SECONDS}`,
      'done',
    ].join('\n');
    return {
      name: 'wait-for-membership',
      image: this.image,
      imagePullPolicy: this.imagePullPolicy,
      command: ['sh', '-c', script],
      env: [
        { name: 'NODE_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
        // Not the members' names Sand Store uses (the ConfigMap's ETCD_ENDPOINTS): this container
        // may start before etcd's pods have addresses, and a member's name looked up then is
        // NXDOMAIN, cached by the cluster's DNS for a while after the member is up.
        { name: 'ETCD_ENDPOINTS', value: this.etcdGateEndpoint },
        { name: 'MEMBERSHIP_PREFIX', value: MEMBERSHIP_PREFIX },
      ],
      // As much CPU and memory as the node: it runs before the node starts, so this costs the pod
      // nothing more.
      resources: toResourceRequirements(this.resources, EPHEMERAL_STORAGE.quiet),
      securityContext: restrictedContainerSecurityContext(),
    };
  }
}
