/**
 * The commands that fix what a check finds, in the words of the distribution the cluster runs
 * where they differ (minikube, k3s, kind), and in every one's words when the cluster's kind is not
 * known. Pure text, so that the unit tests read exactly what an operator is told.
 */
import type { Node } from '../kube.js';

export type Distribution = 'minikube' | 'k3s' | 'kind' | 'unknown';

/** What the nodes say they are: kind's provider ID, k3s's kubelet version and label, minikube's labels. */
export function distributionOf(nodes: readonly Node[]): Distribution {
  for (const n of nodes) {
    const labels = n.metadata.labels ?? {};
    if (String(n.spec?.providerID ?? '').startsWith('kind://')) return 'kind';
    if (
      String(n.status?.nodeInfo?.kubeletVersion ?? '').includes('+k3s') ||
      labels['node.kubernetes.io/instance-type'] === 'k3s'
    )
      return 'k3s';
    if (Object.keys(labels).some((k) => k.startsWith('minikube.k8s.io/'))) return 'minikube';
  }
  return 'unknown';
}

/** One command per distribution; the one for this cluster when known, else all, each named. */
export function perDistribution(
  distribution: Distribution,
  fixes: Readonly<Record<Exclude<Distribution, 'unknown'>, string>>,
): string {
  if (distribution !== 'unknown') return fixes[distribution];
  return Object.entries(fixes)
    .map(([d, fix]) => `${d}: ${fix}`)
    .join('; ');
}

/** `kubectl --context=<c>`: every command names the context, as the runner acts on no other. */
export const kubectl = (context: string) => `kubectl --context=${context}`;

const LOCAL_PATH_VERSION = 'v0.0.30';

/** How to get a provisioner serving `provisioner` on the cluster. */
export function provisionerFix(provisioner: string, distribution: Distribution, context: string): string {
  if (provisioner === 'rancher.io/local-path') {
    const upstream = `${kubectl(context)} apply -f https://raw.githubusercontent.com/rancher/local-path-provisioner/${LOCAL_PATH_VERSION}/deploy/local-path-storage.yaml`;
    return perDistribution(distribution, {
      minikube: 'minikube addons enable storage-provisioner-rancher',
      // k3s runs local-path in kube-system unless started with --disable=local-storage.
      k3s: 'start k3s without `--disable=local-storage` (k3s ships local-path), or ' + upstream,
      // kind ships rancher's local-path (class `standard`) in local-path-storage; put it back if removed.
      kind: upstream,
    });
  }
  if (provisioner === 'k8s.io/minikube-hostpath')
    return perDistribution(distribution, {
      minikube: 'minikube addons enable storage-provisioner',
      k3s: 'set storage.provisioner to rancher.io/local-path (k3s ships it)',
      kind: 'set storage.provisioner to rancher.io/local-path (kind ships it)',
    });
  return `install the provisioner (or CSI driver) that serves ${provisioner}, or set storage.provisioner to one the cluster runs`;
}

/** How to bring the API server back, by distribution. */
export function clusterStartFix(context: string): string {
  if (context.startsWith('sandstore-')) return `npm run cluster:up -- --name ${context}`;
  return perDistribution('unknown', {
    minikube: 'minikube start',
    k3s: 'sudo systemctl start k3s',
    kind: `docker start ${context.replace(/^kind-/, '')}-control-plane`,
  });
}

/** A Kubernetes release the manifests are tested on, per distribution's way of running it. */
export function upgradeFix(distribution: Distribution, version: string): string {
  return perDistribution(distribution, {
    minikube: `minikube start --kubernetes-version=${version}`,
    k3s: `curl -sfL https://get.k3s.io | INSTALL_K3S_VERSION=${version}+k3s1 sh -`,
    kind: `kind create cluster --image kindest/node:${version}`,
  });
}

export const labelNodeFix = (context: string, node: string, labels: Readonly<Record<string, string>>) =>
  `${kubectl(context)} label node ${node} ${Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')}`;

export const uncordonFix = (context: string, node: string) => `${kubectl(context)} uncordon ${node}`;

export const untaintFix = (context: string, node: string, taint: { key: string; value?: string; effect: string }) =>
  `${kubectl(context)} taint node ${node} ${taint.key}${taint.value ? `=${taint.value}` : ''}:${taint.effect}-`;
