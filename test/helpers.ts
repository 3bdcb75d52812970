import { App, Chart } from 'cdk8s';
import type { V1PodSpec, V1PodTemplateSpec } from '@kubernetes/client-node';
import { isManifestOf, type Json, type JsonName, type KindModels, type KindName } from '../lib/k8s-types.js';
import type { Manifest } from '../lib/synth.js';

/** Builds constructs in a fresh chart and returns the synthesized objects. */
export function synthesize(build: (chart: Chart) => void, props: { namespace?: string; labels?: Record<string, string> } = {}): Manifest[] {
  const app = new App();
  const chart = new Chart(app, 'test', { disableResourceNameHashes: true, ...props });
  build(chart);
  return chart.toJson() as Manifest[];
}

/**
 * A synthesized object as a test reads it: client-node's model of its kind, as JSON, with every
 * field required. A test names the fields it expects: a misspelt one fails to compile, an absent one
 * fails the test when read, as a wrong expectation does.
 */
export type Expected<T> = T extends Date
  ? string
  : T extends readonly (infer E)[]
    ? Expected<E>[]
    : T extends object
      ? { [K in keyof T as JsonName<K>]-?: Expected<T[K]> }
      : T;

/** The object of `kind` named `name`, as a test reads it (see Expected), if there is one. */
export function findIn<K extends KindName>(objects: readonly Manifest[], kind: K, name: string): Expected<KindModels[K]> | undefined {
  const found = objects.find((o) => isManifestOf(o, kind) && o.metadata.name === name);
  return found as Expected<KindModels[K]> | undefined;
}

/** The object of `kind` named `name`, as a test reads it (see Expected). */
export function find<K extends KindName>(objects: readonly Manifest[], kind: K, name: string): Expected<KindModels[K]> {
  const found = findIn(objects, kind, name);
  if (!found) throw new Error(`no ${kind} ${name} among: ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found;
}

/** The objects of `kind`, as a test reads them (see Expected). */
export function ofKind<K extends KindName>(objects: readonly Manifest[], kind: K): Expected<KindModels[K]>[] {
  return objects.filter((o) => isManifestOf(o, kind)) as unknown as Expected<KindModels[K]>[];
}

/** Every pod template among the objects (StatefulSets and Jobs), with where it came from. */
export function podTemplates(objects: readonly Manifest[]): { owner: string; template: Json<V1PodTemplateSpec> }[] {
  return objects
    .filter((o) => isManifestOf(o, 'StatefulSet') || isManifestOf(o, 'Job'))
    .flatMap((o) => (o.spec?.template ? [{ owner: `${o.kind}/${o.metadata.name}`, template: o.spec.template }] : []));
}

/**
 * The Pod Security Standard "restricted" rules that our pods could break, checked field by field.
 * The e2e suite proves the same against the API server's own PodSecurity admission.
 */
export function restrictedViolations(podSpec: Json<V1PodSpec> | undefined): string[] {
  const problems: string[] = [];
  if (!podSpec) return ['no pod spec'];
  const pod = podSpec.securityContext;
  const containers = [...(podSpec.initContainers ?? []), ...podSpec.containers];
  if (pod?.seccompProfile?.type !== 'RuntimeDefault') problems.push('pod seccompProfile is not RuntimeDefault');
  if (podSpec.hostNetwork || podSpec.hostPID || podSpec.hostIPC) problems.push('host namespaces used');
  for (const v of podSpec.volumes ?? []) {
    const allowed = ['configMap', 'emptyDir', 'persistentVolumeClaim', 'projected', 'secret', 'downwardAPI', 'ephemeral', 'csi'];
    if (!Object.keys(v).filter((k) => k !== 'name').every((k) => allowed.includes(k))) problems.push(`volume ${v.name} has a disallowed type`);
  }
  for (const c of containers) {
    const sc = c.securityContext ?? {};
    if (sc.allowPrivilegeEscalation !== false) problems.push(`${c.name}: allowPrivilegeEscalation is not false`);
    if (!(sc.runAsNonRoot === true || (sc.runAsNonRoot === undefined && pod?.runAsNonRoot === true))) problems.push(`${c.name}: not runAsNonRoot`);
    if ((sc.runAsUser ?? pod?.runAsUser) === 0) problems.push(`${c.name}: runs as uid 0`);
    if (!(sc.capabilities?.drop ?? []).includes('ALL')) problems.push(`${c.name}: does not drop ALL capabilities`);
    if ((sc.capabilities?.add ?? []).some((cap) => cap !== 'NET_BIND_SERVICE')) problems.push(`${c.name}: adds capabilities`);
    if (sc.privileged) problems.push(`${c.name}: privileged`);
    if (sc.seccompProfile && sc.seccompProfile.type !== 'RuntimeDefault') problems.push(`${c.name}: seccomp not RuntimeDefault`);
    if ((c.ports ?? []).some((p) => p.hostPort)) problems.push(`${c.name}: uses a host port`);
  }
  return problems;
}
