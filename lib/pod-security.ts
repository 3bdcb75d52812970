import type { V1PodSpec, V1PodTemplateSpec } from '@kubernetes/client-node';
import { isManifestOf, type Json } from './k8s-types.js';
import type { Manifest } from './synth.js';

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
    const allowed = [
      'configMap',
      'emptyDir',
      'persistentVolumeClaim',
      'projected',
      'secret',
      'downwardAPI',
      'ephemeral',
      'csi',
    ];
    if (
      !Object.keys(v)
        .filter((k) => k !== 'name')
        .every((k) => allowed.includes(k))
    )
      problems.push(`volume ${v.name} has a disallowed type`);
  }
  for (const c of containers) {
    const sc = c.securityContext ?? {};
    if (sc.allowPrivilegeEscalation !== false) problems.push(`${c.name}: allowPrivilegeEscalation is not false`);
    if (!(sc.runAsNonRoot === true || (sc.runAsNonRoot === undefined && pod?.runAsNonRoot === true)))
      problems.push(`${c.name}: not runAsNonRoot`);
    if ((sc.runAsUser ?? pod?.runAsUser) === 0) problems.push(`${c.name}: runs as uid 0`);
    if (!(sc.capabilities?.drop ?? []).includes('ALL')) problems.push(`${c.name}: does not drop ALL capabilities`);
    if ((sc.capabilities?.add ?? []).some((cap) => cap !== 'NET_BIND_SERVICE'))
      problems.push(`${c.name}: adds capabilities`);
    if (sc.privileged) problems.push(`${c.name}: privileged`);
    if (sc.seccompProfile && sc.seccompProfile.type !== 'RuntimeDefault')
      problems.push(`${c.name}: seccomp not RuntimeDefault`);
    if ((c.ports ?? []).some((p) => p.hostPort)) problems.push(`${c.name}: uses a host port`);
  }
  return problems;
}
