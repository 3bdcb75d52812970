import { ApiObject, Chart, JsonPatch } from 'cdk8s';
import type { IConstruct } from 'constructs';
import type { Affinity } from '../../imports/k8s.js';
import { LabelKeys, type Component } from '../labels.js';

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
      preferredDuringSchedulingIgnoredDuringExecution: [{
        weight: 100,
        podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { ...selector } } },
      }],
    },
  };
}
