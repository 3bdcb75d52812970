import { ApiObject, Chart, JsonPatch } from 'cdk8s';
import type { IConstruct } from 'constructs';

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
