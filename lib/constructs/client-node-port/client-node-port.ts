import { Construct } from 'constructs';
import { IntOrString, KubeService } from '../../../imports/k8s.js';
import { componentLabels } from '../scope.js';
import { Component, DeployPhase, phaseAnnotation, POD_NAME_LABEL } from '../../labels.js';
import { check, rules } from '../../validation.js';
import type { SandstoreCluster } from '../sandstore-cluster/index.js';

export interface ClientNodePortProps {
  /** The data plane to expose. */
  readonly cluster: SandstoreCluster;
  /**
   * Node port of pod 0; pod `i` gets `basePort + i`. All ports must fall in 30000–32767.
   * @default 30080
   */
  readonly basePort?: number;
  /**
   * The host that clients outside the cluster use (ADVERTISE_HOST), e.g. the laptop's LAN address.
   * @default - each pod advertises its node's IP (HOST_IP, from the downward API)
   */
  readonly advertiseHost?: string;
}

/**
 * Lets a client outside the cluster reach the Raft leader, whichever pod it is. One NodePort in front
 * of all pods would land on a random pod; instead each pod gets its own node port at base + ordinal,
 * and the data plane advertises its leader as `<host>:<base + ordinal>`, so a NOT_LEADER redirect
 * points at a port that reaches exactly that pod.
 */
export class ClientNodePort extends Construct {
  public readonly basePort: number;
  /** `[pod name, node port]` in ordinal order. */
  public readonly nodePorts: readonly { readonly pod: string; readonly nodePort: number; readonly service: string }[];

  public constructor(scope: Construct, id: string, props: ClientNodePortProps) {
    super(scope, id);
    const who = `ClientNodePort ${this.node.path}`;
    const cluster = props.cluster;
    this.basePort = props.basePort ?? 30080;
    check(who, 'basePort', this.basePort, rules.nodePort);
    check(who, 'basePort', this.basePort, rules.nodePortBaseFor(cluster.replicas));
    if (props.advertiseHost !== undefined) check(who, 'advertiseHost', props.advertiseHost, rules.nonEmpty);

    const labels = componentLabels(this, cluster.name, Component.clientAccess);
    this.nodePorts = cluster.podNames.map((pod, ordinal) => ({ pod, nodePort: this.basePort + ordinal, service: `${pod}-external` }));
    for (const { pod, nodePort, service } of this.nodePorts) {
      new KubeService(this, pod, {
        metadata: { name: service, labels, annotations: phaseAnnotation(DeployPhase.clientAccess) },
        spec: {
          type: 'NodePort',
          selector: { ...cluster.podSelector, [POD_NAME_LABEL]: pod },
          ports: [{ name: 'grpc', port: cluster.port, targetPort: IntOrString.fromString('grpc'), nodePort }],
        },
      });
    }
    cluster.advertiseExternally({ basePort: this.basePort, host: props.advertiseHost });
  }
}
