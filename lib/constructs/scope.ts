import { ApiObject, Chart, JsonPatch } from 'cdk8s';
import type { Construct, IConstruct } from 'constructs';
import { IntOrString, KubePodDisruptionBudget, type Affinity } from '../../imports/k8s.js';
import { DeployPhase, LabelKeys, phaseAnnotation, type Component } from '../labels.js';
import { quorum } from '../validation.js';

/** The namespace the constructs' objects go to: the chart's, else "default" as kubectl would. */
export function namespaceOf(scope: IConstruct): string {
  return Chart.of(scope).namespace ?? 'default';
}

/**
 * cdk8s stamps the chart namespace on every object; a cluster-scoped object (StorageClass,
 * Namespace) must not carry one, or clients build a namespaced URL for it.
 */
export function markClusterScoped(obj: ApiObject): ApiObject {
  if (Chart.of(obj).namespace !== undefined) obj.addJsonPatch(JsonPatch.remove('/metadata/namespace'));
  return obj;
}

/** Chart-wide labels plus what identifies one component: for metadata and templates. */
export function componentLabels(scope: IConstruct, name: string, component: Component): Record<string, string> {
  return { ...Chart.of(scope).labels, [LabelKeys.name]: name, [LabelKeys.component]: component };
}

/**
 * The subset used in selectors. Kept small and stable: a StatefulSet's selector is immutable, so it
 * must not include anything a profile edit could change.
 */
export function selectorLabels(scope: IConstruct, name: string, component: Component): Record<string, string> {
  const instance = Chart.of(scope).labels[LabelKeys.instance];
  return {
    [LabelKeys.name]: name,
    [LabelKeys.component]: component,
    ...(instance ? { [LabelKeys.instance]: instance } : {}),
  };
}

/**
 * Members of one replicated set (the pods `selector` matches) spread over hosts where the cluster
 * has several: preferred, not required, so that a one-node benchmark laptop still runs every member.
 */
export function preferSeparateHosts(selector: Readonly<Record<string, string>>): Affinity {
  return {
    podAntiAffinity: {
      preferredDuringSchedulingIgnoredDuringExecution: [
        {
          weight: 100,
          podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { ...selector } } },
        },
      ],
    },
  };
}

/**
 * The disruption budget of a Raft or etcd cluster of `members` pods (those `podSelector` matches):
 * a voluntary disruption (a node drain) may take a member only while a majority stays available.
 */
export function quorumDisruptionBudget(
  scope: Construct,
  budget: {
    readonly name: string;
    readonly labels: Readonly<Record<string, string>>;
    readonly members: number;
    readonly podSelector: Readonly<Record<string, string>>;
  },
): KubePodDisruptionBudget {
  return new KubePodDisruptionBudget(scope, 'DisruptionBudget', {
    metadata: { name: budget.name, labels: { ...budget.labels }, annotations: phaseAnnotation(DeployPhase.base) },
    spec: {
      minAvailable: IntOrString.fromNumber(quorum(budget.members)),
      selector: { matchLabels: { ...budget.podSelector } },
    },
  });
}
