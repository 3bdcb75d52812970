import { Construct } from 'constructs';
import { IntOrString, KubeService } from '../../../imports/k8s.js';
import { Component, DeployPhase, phaseAnnotation, POD_NAME_LABEL } from '../../labels.js';
import { Declared, declareFindings } from '../checker-declarations.js';
import { componentLabels } from '../scope.js';
import { check, rules } from '../../validation.js';
import type { ClientNodePortProps } from './client-node-port-props.js';

/** One pod's node port, and the Service that opens it. */
export interface PodNodePort {
  readonly pod: string;
  readonly nodePort: number;
  readonly service: string;
}

/**
 * Lets a client outside the cluster reach the Raft leader, whichever pod it is. One NodePort in front
 * of all pods would land on a random pod; instead each pod gets its own node port at base + ordinal
 * (the cluster's `externalAccess`, which also makes the leader advertise `<host>:<base + ordinal>`),
 * so a NOT_LEADER redirect points at a port that reaches exactly that pod.
 */
export class ClientNodePort extends Construct {
  /** Every pod's node port, in ordinal order. */
  public readonly nodePorts: readonly PodNodePort[];
  /** The leader's node port and its Service; undefined without `leaderNodePort`. */
  public readonly leader?: { readonly nodePort: number; readonly service: string };

  public constructor(scope: Construct, id: string, props: ClientNodePortProps) {
    super(scope, id);
    const { cluster } = props;
    if (cluster.externalAccess === undefined) {
      throw new Error(
        `ClientNodePort ${this.node.path}: the cluster ${cluster.node.path} has no ` +
          `externalAccess; give it one (its node ports and advertised host) to expose it`,
      );
    }
    const { basePort } = cluster.externalAccess;

    const labels = componentLabels(this, cluster.name, Component.clientAccess);
    this.nodePorts = cluster.podNames.map((pod, ordinal) => ({
      pod,
      nodePort: basePort + ordinal,
      service: `${pod}-external`,
    }));
    for (const { pod, nodePort, service } of this.nodePorts) {
      declareFindings(
        new KubeService(this, pod, {
          metadata: { name: service, labels, annotations: phaseAnnotation(DeployPhase.clientAccess) },
          spec: {
            type: 'NodePort',
            selector: { ...cluster.podSelector, [POD_NAME_LABEL]: pod },
            ports: [{ name: 'grpc', port: cluster.port, targetPort: IntOrString.fromString('grpc'), nodePort }],
          },
        }),
        Declared.perPodServiceSelector,
        Declared.perPodNodePort,
      );
    }
    if (props.leaderNodePort !== undefined) this.leader = this.leaderNodePort(props, labels);
  }

  /** The leader's node port: what pod it reaches follows the role label (see LeaderRouting). */
  private leaderNodePort(props: ClientNodePortProps, labels: Record<string, string>): ClientNodePort['leader'] {
    const { cluster, leaderNodePort: nodePort = 0 } = props;
    const who = `ClientNodePort ${this.node.path}`;
    check(who, 'leaderNodePort', nodePort, rules.nodePort);
    if (cluster.leaderRouting === undefined)
      throw new Error(`${who}: leaderNodePort needs the cluster ${cluster.node.path}'s leaderRouting (its role label)`);
    if (this.nodePorts.some((p) => p.nodePort === nodePort))
      throw new Error(`${who}: leaderNodePort ${nodePort} is one of the pods' node ports; expected another port`);
    const service = `${cluster.leaderRouting.serviceName}-external`;
    declareFindings(
      new KubeService(this, 'Leader', {
        metadata: { name: service, labels, annotations: phaseAnnotation(DeployPhase.clientAccess) },
        spec: {
          type: 'NodePort',
          selector: { ...cluster.leaderRouting.leaderSelector },
          ports: [{ name: 'grpc', port: cluster.port, targetPort: IntOrString.fromString('grpc'), nodePort }],
        },
      }),
      Declared.leaderSelector,
      Declared.leaderNodePort,
    );
    return { nodePort, service };
  }
}
