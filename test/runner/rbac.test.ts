import { LabelKeys } from '../../lib/labels.js';
import { listProfiles, loadProfile } from '../../lib/profiles.js';
import { subjectOf } from '../../lib/runner/commands/rbac.js';
import { RESOURCES } from '../../lib/runner/kube.js';
import { isProfiles } from '../../lib/runner/ownership.js';
import { KEEP_NAMESPACE_ANNOTATION, rbacObjects, type PolicyRule } from '../../lib/runner/rbac.js';
import { synthesizeObjects, type Manifest } from '../../lib/synth.js';
import { RefusedError } from '../../lib/errors.js';
import { testRbac } from '../../lib/conformance/objects.js';
import type { Profile } from '../../lib/profile.js';

/**
 * The roles `npm run rbac` prints, for every profile: the shape that makes them least privilege
 * (writes only in the profile's namespace or by the profile's own names), and what lets them work
 * across destroys (the namespace is the profile's and kept, the grants are not swept). Whether
 * they are enough for every command is the e2e test's (test/e2e/rbac.test.ts), on a real API server.
 */

const READS = new Set(['get', 'list', 'watch']);
const rulesOf = (objects: Manifest[], kind: string, namespace?: string) =>
  objects.find((o) => o.kind === kind && o.metadata.namespace === namespace)!.rules as PolicyRule[];
/** Pairs of "group/resource verb" a rule set grants, with "[names]" when limited to names. */
const grants = (rules: PolicyRule[]) =>
  rules.flatMap((r) =>
    r.apiGroups.flatMap((g) =>
      r.resources.flatMap((res) =>
        r.verbs.map((v) => `${g}/${res} ${v}${r.resourceNames ? ` [${r.resourceNames.join(',')}]` : ''}`),
      ),
    ),
  );

describe.each(listProfiles())('profile %s', (name) => {
  let objects: Manifest[];
  let manifests: Manifest[];
  let namespace: string;
  const loaded = new Map<string, Profile>();
  const profileOf = (n: string) => loaded.get(n)!;
  beforeAll(async () => {
    const profile = await loadProfile(name);
    loaded.set(name, profile);
    namespace = profile.namespace;
    manifests = synthesizeObjects(profile);
    objects = rbacObjects(profile, manifests, { kind: 'User', name: 'alice' });
  });

  test("cluster-wide: reads of the kind table, no Secrets; the only writes are by the profile's names, or create of a StorageClass", () => {
    const cluster = grants(rulesOf(objects, 'ClusterRole'));
    const writes = cluster.filter((g) => !READS.has(g.split(' ')[1]));
    for (const w of writes) expect(w).toMatch(/ \[[^\]]+\]$|^storage\.k8s\.io\/storageclasses create$/);
    expect(writes.filter((w) => w.startsWith('/namespaces '))).toEqual([`/namespaces patch [${namespace}]`]);
    expect(cluster.some((g) => g.includes('secrets'))).toBe(false);
    expect(cluster.filter((g) => g.endsWith(' list')).length).toBe(Object.keys(RESOURCES).length);
  });

  test("in the namespace: logs, exec and proxy of pods, writes of what dist/ applies, conformance writes and destroy deletes; nothing on secrets, no escalate, bind or impersonate; RBAC objects only dist/'s and conformance's", () => {
    const ns = grants(rulesOf(objects, 'Role', namespace));
    expect(ns).toEqual(
      expect.arrayContaining(['/pods/log get', '/pods/exec create', '/pods/proxy get', '/pods delete']),
    );
    expect(ns.filter((g) => /secrets|escalate|bind |impersonate/.test(g))).toEqual([]);
    // The role sidecar's Role and binding (clientAccess.leader) are applied like the rest of dist/,
    // and conformance writes its tests' own for every profile: each kind granted once.
    const rbacGrants = ns.filter((g) => g.startsWith('rbac.authorization.k8s.io/'));
    expect(rbacGrants.sort()).toEqual(
      ['Role', 'RoleBinding']
        .flatMap((k) => ['create', 'patch', 'delete'].map((v) => `rbac.authorization.k8s.io/${k.toLowerCase()}s ${v}`))
        .sort(),
    );
    expect(ns).toEqual(expect.arrayContaining(['/serviceaccounts create', 'batch/jobs create', 'batch/jobs delete']));
  });

  test("conformance: the runner may grant the tests' Role (the API server lets it bind only what it holds), in the namespace only", () => {
    const ns = grants(rulesOf(objects, 'Role', namespace));
    const testRole = testRbac(profileOf(name)).find((o) => o.kind === 'Role') as Manifest & { rules: PolicyRule[] };
    expect(ns).toEqual(expect.arrayContaining(grants(testRole.rules)));
    expect(grants(rulesOf(objects, 'ClusterRole')).filter((g) => g.includes('statefulsets/scale'))).toEqual([]);
  });

  test("the lock: create, and update and delete of the profile's Lease alone, in default", () => {
    expect(grants(rulesOf(objects, 'Role', 'default')).sort()).toEqual([
      'coordination.k8s.io/leases create',
      `coordination.k8s.io/leases delete [sandstore-deploy-${name}]`,
      `coordination.k8s.io/leases update [sandstore-deploy-${name}]`,
    ]);
  });

  test("the namespace is the profile's (deploy takes it as its own) and marked to be kept; the grants carry no profile label (destroy never sweeps them)", () => {
    const ns = objects.find((o) => o.kind === 'Namespace')!;
    expect(isProfiles({ ...ns, metadata: { ...ns.metadata } }, name)).toBe(true);
    expect(ns.metadata.annotations?.[KEEP_NAMESPACE_ANNOTATION]).toBeDefined();
    for (const o of objects.filter((x) => x.kind !== 'Namespace')) {
      expect(o.metadata.labels?.[LabelKeys.profile]).toBeUndefined();
      expect(o.metadata.labels?.[LabelKeys.managedBy]).toBeUndefined();
    }
  });
});

test('the subject: exactly one of --user, --group, --service-account=<namespace>/<name>', () => {
  expect(subjectOf({ user: 'alice' })).toEqual({ kind: 'User', name: 'alice' });
  expect(subjectOf({ group: 'devs' })).toEqual({ kind: 'Group', name: 'devs' });
  expect(subjectOf({ serviceAccount: 'team/alice' })).toEqual({
    kind: 'ServiceAccount',
    namespace: 'team',
    name: 'alice',
  });
  for (const bad of [
    {},
    { user: 'a', group: 'b' },
    { serviceAccount: 'alice' },
    { serviceAccount: 'a/b/c' },
    { serviceAccount: 'A B/x' },
  ])
    expect(() => subjectOf(bad)).toThrow(RefusedError);
});
