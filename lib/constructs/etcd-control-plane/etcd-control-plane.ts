import { Construct } from 'constructs';
import { IntOrString, KubeService, KubeStatefulSet, type Probe } from '../../../imports/k8s.js';
import { Component, DeployPhase, phaseAnnotation } from '../../labels.js';
import { check, rules } from '../../validation.js';
import { podPlacement } from '../local-ssd-storage/local-ssd-storage.js';
import { Declared, declareFindings } from '../checker-declarations.js';
import {
  checkResources,
  EPHEMERAL_STORAGE,
  toResourceRequirements,
  volumeClaimSpec,
  type ContainerResources,
} from '../resources.js';
import { restrictedContainerSecurityContext, restrictedPodSecurityContext } from '../security.js';
import { componentLabels, namespaceOf, preferSeparateHosts, quorumDisruptionBudget, selectorLabels } from '../scope.js';
import { ETCD_CONTROL_PLANE_DEFAULTS as DEFAULTS, type EtcdControlPlaneProps } from './etcd-control-plane-props.js';

const ETCD_CLIENT_PORT = 2379;
const ETCD_PEER_PORT = 2380;
/** etcd serves /health here, separately from the client port, as kubeadm's static pod does. */
const ETCD_METRICS_PORT = 2381;
const DATA_MOUNT = '/var/lib/etcd';
/**
 * Operations etcd accepts in one transaction (its default is 128): the membership bootstrap writes
 * Sand Store's whole membership in one, 2 operations per node plus 1, up to 501 nodes.
 */
const MAX_TXN_OPS = 1024;

/**
 * The etcd control plane Sand Store keeps its membership in: a StatefulSet of `replicas` members
 * with a generated `--initial-cluster`, a headless service that publishes not-ready addresses (a
 * member must be resolvable before it is Ready, or a new cluster never forms), probes, a claim per
 * member and, with more than one member, a PodDisruptionBudget that keeps quorum.
 */
export class EtcdControlPlane extends Construct {
  public readonly name: string;
  public readonly replicas: number;
  public readonly image: string;
  /**
   * The image is named by a tag, as Sand Store's is: pulled at every start, so a node never runs a
   * stale copy of a re-pushed tag, and the registry's credentials are checked each time.
   */
  public readonly imagePullPolicy = 'Always';
  public readonly storageSize: string;
  public readonly resources: ContainerResources;
  /** The headless service, which gives each member its DNS name. */
  public readonly serviceName: string;
  /** `host:port` of every member's client URL, no scheme: the form Sand Store's ETCD_ENDPOINTS takes. */
  public readonly clientEndpoints: readonly string[];
  /**
   * `host:port` of the client Service (a ClusterIP in front of every member), for the waits that
   * start before etcd's pods have addresses: the membership Job and wait-for-membership. Its name
   * resolves from the moment the Service exists, whereas a member's name looked up before its pod
   * has an address gets NXDOMAIN, which the cluster's DNS caches (CoreDNS: up to its `cache` TTL).
   */
  public readonly clientServiceEndpoint: string;
  /** Labels selecting the members' pods (for network policies). */
  public readonly podSelector: Readonly<Record<string, string>>;
  public readonly clientPort = ETCD_CLIENT_PORT;
  /** The most operations one transaction may hold (`--max-txn-ops`). */
  public readonly maxTxnOps = MAX_TXN_OPS;
  public readonly peerPort = ETCD_PEER_PORT;

  public constructor(scope: Construct, id: string, props: EtcdControlPlaneProps = {}) {
    super(scope, id);
    const who = `EtcdControlPlane ${this.node.path}`;
    this.name = props.name ?? DEFAULTS.name;
    this.replicas = props.replicas ?? DEFAULTS.replicas;
    this.image = props.image ?? DEFAULTS.image;
    this.storageSize = props.storageSize ?? DEFAULTS.storageSize;
    this.resources = props.resources ?? DEFAULTS.resources;
    check(who, 'name', this.name, rules.dnsLabel);
    check(who, 'replicas', this.replicas, rules.etcdReplicas);
    check(who, 'image', this.image, rules.imageReference);
    check(who, 'storageSize', this.storageSize, rules.bytes);
    checkResources(who, 'resources', this.resources);

    const namespace = namespaceOf(this);
    this.serviceName = this.name;
    const memberHost = (pod: string) => `${pod}.${this.serviceName}.${namespace}.svc`;
    const members = Array.from({ length: this.replicas }, (_, i) => `${this.name}-${i}`);
    this.clientEndpoints = members.map((m) => `${memberHost(m)}:${ETCD_CLIENT_PORT}`);
    const clientServiceName = `${this.name}-client`;
    this.clientServiceEndpoint = `${clientServiceName}.${namespace}.svc:${ETCD_CLIENT_PORT}`;
    const initialCluster = members.map((m) => `${m}=http://${memberHost(m)}:${ETCD_PEER_PORT}`).join(',');

    const labels = componentLabels(this, this.name, Component.controlPlane);
    this.podSelector = selectorLabels(this, this.name, Component.controlPlane);

    new KubeService(this, 'HeadlessService', {
      metadata: { name: this.serviceName, labels, annotations: phaseAnnotation(DeployPhase.base) },
      spec: {
        clusterIp: 'None',
        publishNotReadyAddresses: true,
        selector: { ...this.podSelector },
        ports: [
          { name: 'client', port: ETCD_CLIENT_PORT, targetPort: IntOrString.fromString('client') },
          { name: 'peer', port: ETCD_PEER_PORT, targetPort: IntOrString.fromString('peer') },
        ],
      },
    });

    // Publishes not-ready addresses too, so that kube-proxy routes to a member as soon as its pod
    // has an address: the waits behind it then reach etcd the moment it serves, without waiting
    // for the readiness probe and an endpoint update. A member that does not serve yet refuses the
    // connection, and the waits retry.
    new KubeService(this, 'ClientService', {
      metadata: { name: clientServiceName, labels, annotations: phaseAnnotation(DeployPhase.base) },
      spec: {
        publishNotReadyAddresses: true,
        selector: { ...this.podSelector },
        ports: [{ name: 'client', port: ETCD_CLIENT_PORT, targetPort: IntOrString.fromString('client') }],
      },
    });

    const health = (path: string, periodSeconds: number, failureThreshold: number): Probe => ({
      httpGet: { path, port: IntOrString.fromString('metrics') },
      periodSeconds,
      failureThreshold,
      timeoutSeconds: 5,
    });

    const statefulSet = new KubeStatefulSet(this, 'StatefulSet', {
      metadata: { name: this.name, labels, annotations: phaseAnnotation(DeployPhase.controlPlane) },
      spec: {
        replicas: this.replicas,
        serviceName: this.serviceName,
        // Members must start together: with OrderedReady, member 0 waits for a quorum that the
        // not-yet-created members 1 and 2 would provide, and a new cluster never forms.
        podManagementPolicy: 'Parallel',
        updateStrategy: { type: 'RollingUpdate' },
        selector: { matchLabels: { ...this.podSelector } },
        template: {
          metadata: { labels },
          spec: {
            securityContext: restrictedPodSecurityContext(),
            ...podPlacement(props.storage?.placement),
            automountServiceAccountToken: false,
            terminationGracePeriodSeconds: 30,
            // One host's failure then costs one member, not the quorum.
            affinity: preferSeparateHosts(this.podSelector),
            containers: [
              {
                name: 'etcd',
                image: this.image,
                imagePullPolicy: this.imagePullPolicy,
                command: ['etcd'],
                args: [
                  '--name=$(POD_NAME)',
                  `--data-dir=${DATA_MOUNT}/data`,
                  `--listen-client-urls=http://0.0.0.0:${ETCD_CLIENT_PORT}`,
                  `--advertise-client-urls=http://$(POD_NAME).${this.serviceName}.${namespace}.svc:${ETCD_CLIENT_PORT}`,
                  `--listen-peer-urls=http://0.0.0.0:${ETCD_PEER_PORT}`,
                  `--initial-advertise-peer-urls=http://$(POD_NAME).${this.serviceName}.${namespace}.svc:${ETCD_PEER_PORT}`,
                  `--listen-metrics-urls=http://0.0.0.0:${ETCD_METRICS_PORT}`,
                  `--initial-cluster=${initialCluster}`,
                  '--initial-cluster-state=new',
                  `--initial-cluster-token=${namespace}-${this.name}`,
                  `--max-txn-ops=${MAX_TXN_OPS}`,
                ],
                env: [
                  { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                  { name: 'ETCDCTL_API', value: '3' },
                ],
                ports: [
                  { name: 'client', containerPort: ETCD_CLIENT_PORT },
                  { name: 'peer', containerPort: ETCD_PEER_PORT },
                  { name: 'metrics', containerPort: ETCD_METRICS_PORT },
                ],
                // Probed every second: the deploy waits for etcd Ready, and a probe every 5 s cost it up
                // to 5 s after etcd served. The thresholds keep the patience as before: 120 s for a
                // restarting member replaying its WAL, 15 s of failures before a member is unready.
                startupProbe: health('/health', 1, 120),
                readinessProbe: health('/health', 1, 15),
                // Serializable: a member that lost quorum is not dead; restarting it would not help.
                livenessProbe: health('/health?serializable=true', 10, 6),
                resources: toResourceRequirements(this.resources, EPHEMERAL_STORAGE.logging),
                securityContext: restrictedContainerSecurityContext(),
                volumeMounts: [{ name: 'data', mountPath: DATA_MOUNT }],
              },
            ],
          },
        },
        volumeClaimTemplates: [
          {
            metadata: { name: 'data', labels },
            spec: volumeClaimSpec(this.storageSize, props.storage?.storageClassName),
          },
        ],
      },
    });
    declareFindings(statefulSet, Declared.etcdClientPlainHttp, Declared.etcdPeerPlainHttp, Declared.imageByTag);

    if (this.replicas > 1)
      quorumDisruptionBudget(this, { name: this.name, labels, members: this.replicas, podSelector: this.podSelector });
  }
}
