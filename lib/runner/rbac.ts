import { LabelKeys, MANAGED_BY } from '../labels.js';
import type { Profile } from '../profile.js';
import type { Manifest } from '../synth.js';
import { RESOURCES } from './kube.js';
import { LOCK_NAMESPACE, lockName } from './lock.js';
import { PROFILE_KINDS } from './commands/destroy.js';
import { CONFORMANCE_KINDS, TEST_RUNNER_RULES } from '../conformance/objects.js';

/**
 * Least privilege: the Kubernetes permissions every runner command needs for one profile, derived
 * from what the runner requests (kube.ts's kind table, dist/'s kinds, destroy's sweep, the lock),
 * as RBAC objects an admin applies once for a teammate (`npm run rbac`). Deploy never applies them:
 * a deploy that granted itself rights would need the rights it grants.
 *
 * Reads are cluster-wide because the commands look at the whole cluster on purpose: check and
 * deploy's pre-flight weigh the room other pods leave on the nodes, the node ports other Services
 * hold and the provisioners' leases in kube-system; deploy refuses while another profile lives in
 * any namespace; destroy finds the profile's leftovers by label in any namespace. RBAC cannot limit a
 * list to a label selector, so those kinds are readable everywhere (no Secrets: the runner reads
 * none). Everything that changes or enters a pod (apply, delete, logs, exec, proxy) is granted in
 * the profile's namespace only, and the cluster-scoped writes are limited to the profile's own
 * names where RBAC can limit them (it cannot for create).
 */

/**
 * Marks the namespace an admin made for the profile (it holds the RoleBinding): destroy empties it but
 * keeps it, since deleting it would delete the teammate's access with it.
 */
export const KEEP_NAMESPACE_ANNOTATION = 'sandstore.io/keep-on-destroy';

export const RBAC_API = 'rbac.authorization.k8s.io';

export interface PolicyRule {
  readonly apiGroups: string[];
  readonly resources: string[];
  readonly verbs: string[];
  readonly resourceNames?: string[];
}

/** Who the roles are bound to. */
export type Subject =
  | { readonly kind: 'User'; readonly name: string }
  | { readonly kind: 'Group'; readonly name: string }
  | { readonly kind: 'ServiceAccount'; readonly name: string; readonly namespace: string };

const READ = ['get', 'list', 'watch'];

const resourceOf = (kind: string) => {
  const r = RESOURCES[kind];
  if (!r) throw new Error(`the runner's kind table has no ${kind}`);
  return r;
};

/** Rules for `kinds` with `verbs`, one rule per API group, kinds in table order. */
function rulesFor(kinds: Iterable<string>, verbs: string[], resourceNames?: string[]): PolicyRule[] {
  const byGroup = new Map<string, string[]>();
  for (const kind of Object.keys(RESOURCES).filter((k) => new Set(kinds).has(k))) {
    const r = resourceOf(kind);
    byGroup.set(r.group, [...(byGroup.get(r.group) ?? []), r.plural]);
  }
  return [...byGroup].map(([group, resources]) => ({
    apiGroups: [group],
    resources,
    // Copies: shared arrays would print as YAML anchors and aliases.
    verbs: [...verbs],
    ...(resourceNames ? { resourceNames: [...resourceNames] } : {}),
  }));
}

/** The permissions, as three sets of rules: cluster-wide, in the profile's namespace, and the lock's in `default`. */
export function profileRules(
  profile: Profile,
  manifests: readonly Manifest[],
): { cluster: PolicyRule[]; namespace: PolicyRule[]; lock: PolicyRule[] } {
  const namespaced = (k: string) => resourceOf(k).namespaced;
  // What deploy, update, smoke and diff apply (server-side apply: create when absent, patch when not).
  const applied = new Set(manifests.map((m) => m.kind).filter((k) => k in RESOURCES));
  // What destroy deletes (and smoke its Job, update and resume patch the StatefulSet: applied kinds).
  const deleted = new Set<string>(PROFILE_KINDS);
  // What conformance writes for any profile (its Job and the tests' RBAC), applied then deleted.
  const written = new Set<string>([...applied, ...CONFORMANCE_KINDS]);
  const namespaceRules = [
    ...rulesFor([...written].filter(namespaced), ['create', 'patch', 'delete']),
    ...rulesFor(
      [...deleted].filter((k) => namespaced(k) && !written.has(k)),
      ['delete'],
    ),
    // logs, smoke, client and update read the pods' logs; the benchmark reads the servers inside
    // their pods: its file system through exec (websocket exec is authorized as get before 1.31's
    // change, create after), its metrics through the API server's proxy.
    { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] },
    { apiGroups: [''], resources: ['pods/exec'], verbs: ['get', 'create'] },
    { apiGroups: [''], resources: ['pods/proxy'], verbs: ['get'] },
    // What dist/'s Roles grant (the role sidecar's patch of its own pods): the API server lets a
    // user create a Role, and bind it, only with the permissions it grants.
    ...grantedByRoles(manifests),
    // What conformance's Role grants the tests (upstream's rbac-cluster-tests.yaml), for the same reason.
    ...structuredClone(TEST_RUNNER_RULES),
  ];
  const storageClass = manifests.find((m) => m.kind === 'StorageClass')?.metadata.name;
  const clusterRules = [
    ...rulesFor(Object.keys(RESOURCES), READ),
    // The namespace exists before the first deploy (this grant lives in it) and destroy keeps it:
    // apply needs patch on it, nothing more.
    ...rulesFor(['Namespace'], ['patch'], [profile.namespace]),
    ...(storageClass
      ? [
          // Destroy deletes the profile's StorageClass and deploy creates it again; RBAC cannot limit
          // create to a name (the object does not exist when it is authorized).
          ...rulesFor(['StorageClass'], ['create']),
          ...rulesFor(['StorageClass'], ['patch', 'delete'], [storageClass]),
        ]
      : []),
  ];
  const lockRules = [
    // Created by the first runner, then renewed or taken over (update) and released (delete) by
    // name; it is read through the cluster-wide reads above (deploy lists every profile's lock).
    ...rulesFor(['Lease'], ['create']),
    ...rulesFor(['Lease'], ['update', 'delete'], [lockName(profile.name)]),
  ];
  return { cluster: clusterRules, namespace: namespaceRules, lock: lockRules };
}

function grantedByRoles(manifests: readonly Manifest[]): PolicyRule[] {
  return manifests
    .filter((m) => m.kind === 'Role')
    .flatMap((m) => ((m as Manifest & { rules?: PolicyRule[] }).rules ?? []).map((r) => structuredClone(r)));
}

/** The objects an admin applies: the namespace, two Roles, a ClusterRole and their bindings. */
export function rbacObjects(profile: Profile, manifests: readonly Manifest[], subject: Subject): Manifest[] {
  const rules = profileRules(profile, manifests);
  const name = `sandstore-deploy-${profile.name}`;
  const labels = { [LabelKeys.managedBy]: MANAGED_BY, [LabelKeys.profile]: profile.name };
  // The binding's own labels: not the profile's, or destroy would sweep what the admin granted.
  const grantLabels = { [LabelKeys.partOf]: 'sandstore', 'sandstore.io/access-for': profile.name };
  const subjects = [
    subject.kind === 'ServiceAccount'
      ? { kind: 'ServiceAccount', name: subject.name, namespace: subject.namespace }
      : { kind: subject.kind, name: subject.name, apiGroup: RBAC_API },
  ];
  const namespaceManifest = manifests.find((m) => m.kind === 'Namespace');
  const role = (kind: 'Role' | 'ClusterRole', namespace: string | undefined, roleRules: PolicyRule[]): Manifest[] => [
    {
      apiVersion: `${RBAC_API}/v1`,
      kind,
      metadata: { name, ...(namespace ? { namespace } : {}), labels: grantLabels },
      rules: roleRules,
    },
    {
      apiVersion: `${RBAC_API}/v1`,
      kind: `${kind}Binding`,
      metadata: { name, ...(namespace ? { namespace } : {}), labels: grantLabels },
      roleRef: { apiGroup: RBAC_API, kind, name },
      subjects,
    },
  ];
  return [
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: profile.namespace,
        // The profile's own labels (deploy's takeover check accepts it, destroy finds it) and the
        // annotation that makes destroy keep it.
        labels: { ...(namespaceManifest?.metadata.labels ?? {}), ...labels },
        annotations: {
          [KEEP_NAMESPACE_ANNOTATION]: `it holds ${name}, the access an admin granted (npm run rbac); destroy empties it and keeps it`,
        },
      },
    },
    ...role('ClusterRole', undefined, rules.cluster),
    ...role('Role', profile.namespace, rules.namespace),
    ...role('Role', LOCK_NAMESPACE, rules.lock),
  ];
}
