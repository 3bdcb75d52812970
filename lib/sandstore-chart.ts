import { Chart } from 'cdk8s';
import type { Construct } from 'constructs';
import { KubeNamespace } from '../imports/k8s.js';
import {
  ClientNodePort,
  EtcdControlPlane,
  LocalSsdStorage,
  SandstoreCluster,
  SandstoreNetworkPolicies,
} from './constructs/index.js';
import { componentLabels, markClusterScoped } from './constructs/scope.js';
import { Component, DeployPhase, phaseAnnotation, profileLabels } from './labels.js';
import { imageRef, type Profile } from './profile.js';
import { check, rules } from './validation.js';

/**
 * One profile's whole deployment: its parts, each given what the profile says of it and the parts
 * it depends on. What a profile leaves out is left to the construct's own default.
 */
export class SandstoreChart extends Chart {
  public readonly storage: LocalSsdStorage;
  public readonly etcd: EtcdControlPlane;
  public readonly cluster: SandstoreCluster;
  public readonly clientAccess: ClientNodePort;

  public constructor(
    scope: Construct,
    public readonly profile: Profile,
  ) {
    super(scope, profile.name, {
      namespace: profile.namespace,
      labels: profileLabels(profile.name),
      disableResourceNameHashes: true,
    });
    // The chart owns its namespace (Pod Security labels, deleted by destroy), which therefore must
    // not be one of Kubernetes' own; the other values are checked by the constructs they go to.
    check(`SandstoreChart ${this.node.path}`, 'namespace', profile.namespace, rules.namespace);

    const namespace = new KubeNamespace(this, 'Namespace', {
      metadata: {
        name: profile.namespace,
        labels: {
          ...componentLabels(this, 'sandstore', Component.namespace),
          // The API server refuses any pod that is not "restricted", so a regression cannot deploy.
          'pod-security.kubernetes.io/enforce': 'restricted',
          'pod-security.kubernetes.io/enforce-version': 'v1.28',
          'pod-security.kubernetes.io/warn': 'restricted',
          'pod-security.kubernetes.io/audit': 'restricted',
        },
        annotations: phaseAnnotation(DeployPhase.base),
      },
    });
    markClusterScoped(namespace);

    this.storage = new LocalSsdStorage(this, 'Storage', {
      storageClassName: profile.storage.className,
      provisioner: profile.storage.provisioner,
      reclaimPolicy: profile.storage.reclaimPolicy,
      nodePath: profile.storage.nodePath,
      nodeSelector: profile.nodeSelection.nodeSelector,
      taint: profile.nodeSelection.ssdTaint,
    });
    this.etcd = new EtcdControlPlane(this, 'Etcd', {
      replicas: profile.etcd.replicas,
      image: profile.etcd.image,
      storage: this.storage,
      storageSize: profile.etcd.storageSize,
      resources: profile.resources.etcd,
    });
    this.cluster = new SandstoreCluster(this, 'Sandstore', {
      etcd: this.etcd,
      image: imageRef(profile),
      imagePullPolicy: profile.image.pullPolicy,
      imagePullSecret: profile.image.pullSecret,
      replicas: profile.raft.replicas,
      storage: this.storage,
      storageSize: profile.storage.sizePerPod,
      resources: profile.resources.sandstore,
      raft: profile.raft,
      smokeTest: profile.smokeTest,
      externalAccess: {
        basePort: profile.clientAccess.nodePortBase,
        advertiseHost: profile.clientAccess.advertiseHost,
      },
      leaderRouting: profile.clientAccess.leader && { roleLabelImage: profile.clientAccess.leader.roleLabelImage },
    });
    this.clientAccess = new ClientNodePort(this, 'ClientAccess', {
      cluster: this.cluster,
      leaderNodePort: profile.clientAccess.leader?.nodePort,
    });
    new SandstoreNetworkPolicies(this, 'NetworkPolicies', { etcd: this.etcd, cluster: this.cluster });
  }
}
