import { Construct } from 'constructs';
import { IntOrString, KubeNetworkPolicy, type NetworkPolicyIngressRule } from '../../../imports/k8s.js';
import { Component, DeployPhase, phaseAnnotation } from '../../labels.js';
import { componentLabels } from '../scope.js';
import type { SandstoreNetworkPoliciesProps } from './network-policies-props.js';

/**
 * Ingress rules for the namespace: deny by default; etcd's client port only from Sand Store pods
 * and the bootstrap Job, its peer port only from etcd members; Sand Store's gRPC port from peers
 * and clients (anyone when the cluster has external access, else in-namespace pods); metrics from
 * anywhere. Egress is left open: pods need DNS and each other.
 */
export class SandstoreNetworkPolicies extends Construct {
  public constructor(scope: Construct, id: string, props: SandstoreNetworkPoliciesProps) {
    super(scope, id);
    const { etcd, cluster } = props;
    const labels = componentLabels(this, cluster.name, Component.networkPolicy);
    const policy = (name: string, podSelector: Record<string, string>, ingress: NetworkPolicyIngressRule[]) =>
      new KubeNetworkPolicy(this, name, {
        metadata: { name, labels, annotations: phaseAnnotation(DeployPhase.base) },
        spec: { podSelector: { matchLabels: podSelector }, policyTypes: ['Ingress'], ingress },
      });
    const tcp = (port: number) => ({ protocol: 'TCP', port: IntOrString.fromNumber(port) });
    const pods = (matchLabels: Readonly<Record<string, string>>) => ({
      podSelector: { matchLabels: { ...matchLabels } },
    });

    policy(`${cluster.name}-default-deny-ingress`, {}, []);
    policy(`${etcd.name}-ingress`, { ...etcd.podSelector }, [
      {
        from: [pods(cluster.podSelector), pods(cluster.membershipBootstrap.podSelector)],
        ports: [tcp(etcd.clientPort)],
      },
      { from: [pods(etcd.podSelector)], ports: [tcp(etcd.clientPort), tcp(etcd.peerPort)] },
    ]);
    const external = cluster.externalAccess !== undefined;
    policy(`${cluster.name}-ingress`, { ...cluster.podSelector }, [
      external
        ? // Node-port clients arrive from outside the cluster, with any source address.
          { ports: [tcp(cluster.port)] }
        : { from: [{ podSelector: {} }], ports: [tcp(cluster.port)] },
      // From anywhere, not only from pods: the benchmark reads them through the API server's pod
      // proxy, whose connections come from the API server's host, which no selector matches where
      // the API server is not on the node (managed clusters, the local cluster's real node).
      { ports: [tcp(cluster.metricsPort)] },
    ]);
  }
}
