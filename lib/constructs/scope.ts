import { ApiObject, Chart, JsonPatch } from 'cdk8s';
import type { IConstruct } from 'constructs';
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
