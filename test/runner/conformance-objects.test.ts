import {
  CONFORMANCE_KINDS,
  CONFORMANCE_NAME,
  conformanceJob,
  TEST_RUNNER_RULES,
  testRbac,
  type ConformanceJobSpec,
} from '../../lib/conformance/objects.js';
import { isProfiles } from '../../lib/runner/ownership.js';
import { LabelKeys } from '../../lib/labels.js';
import { restrictedViolations } from '../../lib/pod-security.js';
import { listProfiles, loadProfile } from '../../lib/profiles.js';
import type { Profile } from '../../lib/profile.js';

/**
 * What `conformance` writes, for every profile: under Pod Security `restricted` (the profiles'
 * namespaces enforce it), with the profile's labels (destroy sweeps them, the runner deletes only
 * them), on the profile's nodes, with the env upstream's tests read.
 */
const SPEC: ConformanceJobSpec = {
  image: 'localhost:5000/sandstore-cluster-tests@sha256:' + '0'.repeat(64),
  statefulSet: 'sandstore',
  seeds: ['sandstore-leader:8080', 'sandstore-leader:8080'],
  nodeAddrs: ['sandstore-0.sandstore-headless:8080'],
  testTimeoutSeconds: 1200,
  run: '^TestOpenSmoke$',
};

describe.each(listProfiles())('profile %s', (name) => {
  let profile: Profile;
  beforeAll(async () => {
    profile = await loadProfile(name);
  });

  test('the Job meets Pod Security restricted, runs once and outlives its tests by a bounded grace', () => {
    const job = conformanceJob(profile, SPEC);
    expect(restrictedViolations(job.spec?.template.spec)).toEqual([]);
    expect(job.spec?.backoffLimit).toBe(0);
    expect(job.spec?.template.spec?.restartPolicy).toBe('Never');
    expect(job.spec?.activeDeadlineSeconds).toBe(1200 + 120);
  });

  test("every object carries the profile's labels and conformance's component, in the profile's namespace", () => {
    const job = conformanceJob(profile, SPEC);
    const objects = [...testRbac(profile), job];
    expect(objects.map((o) => o.kind).sort()).toEqual([...CONFORMANCE_KINDS].sort());
    for (const o of objects) {
      expect(o.metadata).toMatchObject({ name: CONFORMANCE_NAME, namespace: profile.namespace });
      expect(isProfiles({ metadata: { ...o.metadata } }, name)).toBe(true);
      expect(o.metadata.labels?.[LabelKeys.component]).toBe('conformance');
    }
    // The pod too: destroy finds a leftover pod by the same labels.
    expect(job.spec?.template.metadata?.labels).toEqual(job.metadata.labels);
  });

  test("the pod lands where the profile's pods do: its node selector, and its taint tolerated", () => {
    const pod = conformanceJob(profile, SPEC).spec?.template.spec;
    expect(pod?.nodeSelector).toEqual(profile.nodeSelection.nodeSelector);
    const taint = profile.nodeSelection.ssdTaint;
    expect(pod?.tolerations ?? []).toEqual(
      taint ? [expect.objectContaining({ key: taint.key, ...(taint.value ? { value: taint.value } : {}) })] : [],
    );
  });

  test("the env upstream's tests read, the arguments of go test -v, and the tests' own identity", () => {
    const pod = conformanceJob(profile, SPEC).spec?.template.spec;
    const container = pod?.containers[0];
    const env = Object.fromEntries(
      (container?.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom?.fieldRef?.fieldPath]),
    );
    expect(env).toEqual({
      POD_NAMESPACE: 'metadata.namespace',
      SANDSTORE_SEEDS: 'sandstore-leader:8080,sandstore-leader:8080',
      SANDSTORE_NODE_ADDRS: 'sandstore-0.sandstore-headless:8080',
      SANDSTORE_STATEFULSET: 'sandstore',
      DURABILITY_SNAPSHOT_FILE_COUNT: '260',
    });
    expect(container?.args).toEqual(['-test.v', '-test.timeout=1200s', '-test.run', '^TestOpenSmoke$']);
    expect(pod?.serviceAccountName).toBe(CONFORMANCE_NAME);
    expect(pod?.automountServiceAccountToken).toBe(true);
  });

  test("the Role is upstream's (rbac-cluster-tests.yaml) and bound to the tests' ServiceAccount alone", () => {
    const [sa, role, binding] = testRbac(profile);
    expect([sa.kind, role.kind, binding.kind]).toEqual(['ServiceAccount', 'Role', 'RoleBinding']);
    expect(role.rules).toEqual(TEST_RUNNER_RULES);
    expect(binding.subjects).toEqual([
      { kind: 'ServiceAccount', name: CONFORMANCE_NAME, namespace: profile.namespace },
    ]);
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: CONFORMANCE_NAME });
  });
});
