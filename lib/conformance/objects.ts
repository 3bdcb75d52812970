import { restrictedContainerSecurityContext } from '../constructs/security.js';
import { Component, LabelKeys, profileLabels } from '../labels.js';
import type { ManifestOf } from '../k8s-types.js';
import type { Profile } from '../profile.js';
import type { Manifest } from '../synth.js';
import { NONROOT } from './test-image.js';

/**
 * What `conformance` writes in the profile's namespace, and removes after: upstream's test RBAC
 * (deploy/k8s/rbac-cluster-tests.yaml: a ServiceAccount, a Role, its binding), under our names and
 * with the profile's labels (so destroy sweeps any leftover, and the runner touches only what it
 * wrote), and the Job that runs the tests as upstream's scripts/topologies/hyperconverged/test.sh
 * does, with the env its tests read (integration/cluster/helpers.go loadConfig), under Pod Security
 * `restricted`.
 */

export const CONFORMANCE_NAME = 'sandstore-conformance';
const CONTAINER = 'cluster-tests';
export const CONFORMANCE_CONTAINER = CONTAINER;

/** The kinds conformance writes (and deletes), in the order it deletes them. */
export const CONFORMANCE_KINDS = ['Job', 'RoleBinding', 'Role', 'ServiceAccount'] as const;

/**
 * What the tests do through kubectl (upstream's Role, verbatim): scale the StatefulSet and wait for
 * its rollout, list and delete its pods.
 */
export const TEST_RUNNER_RULES = [
  { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'delete'] },
  { apiGroups: ['apps'], resources: ['statefulsets'], verbs: ['get', 'list', 'watch', 'patch', 'update'] },
  { apiGroups: ['apps'], resources: ['statefulsets/scale'], verbs: ['get', 'patch', 'update'] },
];

/** Upstream's snapshot pressure (test.sh's DURABILITY_SNAPSHOT_FILE_COUNT). */
const SNAPSHOT_FILE_COUNT = '260';

export interface ConformanceJobSpec {
  readonly image: string;
  /** The data plane's StatefulSet, which the tests scale. */
  readonly statefulSet: string;
  /** SANDSTORE_SEEDS: where the tests' clients and leader vote ask. */
  readonly seeds: readonly string[];
  /** SANDSTORE_NODE_ADDRS: each node's own address. */
  readonly nodeAddrs: readonly string[];
  /** -test.timeout, in seconds; the Job's deadline is a little longer. */
  readonly testTimeoutSeconds: number;
  /** -test.run, when only some tests are to run. */
  readonly run?: string;
}

const labelsOf = (profile: Profile) => ({
  ...profileLabels(profile.name),
  [LabelKeys.name]: 'sandstore',
  [LabelKeys.component]: Component.conformance,
});

const metadataOf = (profile: Profile) => ({
  name: CONFORMANCE_NAME,
  namespace: profile.namespace,
  labels: labelsOf(profile),
});

/** The ServiceAccount, Role and RoleBinding the tests' kubectl runs as. */
export function testRbac(profile: Profile): Manifest[] {
  const rbac = 'rbac.authorization.k8s.io';
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: metadataOf(profile) },
    {
      apiVersion: `${rbac}/v1`,
      kind: 'Role',
      metadata: metadataOf(profile),
      rules: structuredClone(TEST_RUNNER_RULES),
    },
    {
      apiVersion: `${rbac}/v1`,
      kind: 'RoleBinding',
      metadata: metadataOf(profile),
      roleRef: { apiGroup: rbac, kind: 'Role', name: CONFORMANCE_NAME },
      subjects: [{ kind: 'ServiceAccount', name: CONFORMANCE_NAME, namespace: profile.namespace }],
    },
  ];
}

/** The profile's own placement: its node selector, and the toleration of its taint. */
function placement(profile: Profile) {
  const taint = profile.nodeSelection.ssdTaint;
  return {
    nodeSelector: { ...profile.nodeSelection.nodeSelector },
    ...(taint
      ? {
          tolerations: [
            {
              key: taint.key,
              ...(taint.value === undefined ? { operator: 'Exists' } : { operator: 'Equal', value: taint.value }),
              ...(taint.effect ? { effect: taint.effect } : {}),
            },
          ],
        }
      : {}),
  };
}

/** How long the Job may run past the tests' own timeout before Kubernetes ends it (the runner may be gone). */
const JOB_GRACE_SECONDS = 120;

export function testArgs(spec: ConformanceJobSpec): string[] {
  return ['-test.v', `-test.timeout=${spec.testTimeoutSeconds}s`, ...(spec.run ? ['-test.run', spec.run] : [])];
}

/** The Job: one pod, never restarted, that runs the tests once. */
export function conformanceJob(profile: Profile, spec: ConformanceJobSpec): ManifestOf<'Job'> {
  const env = [
    { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
    { name: 'SANDSTORE_SEEDS', value: spec.seeds.join(',') },
    { name: 'SANDSTORE_NODE_ADDRS', value: spec.nodeAddrs.join(',') },
    { name: 'SANDSTORE_STATEFULSET', value: spec.statefulSet },
    { name: 'DURABILITY_SNAPSHOT_FILE_COUNT', value: SNAPSHOT_FILE_COUNT },
  ];
  const pullSecret = profile.image.pullSecret;
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: metadataOf(profile),
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: spec.testTimeoutSeconds + JOB_GRACE_SECONDS,
      template: {
        metadata: { labels: labelsOf(profile) },
        spec: {
          serviceAccountName: CONFORMANCE_NAME,
          // The tests' kubectl reads the token (helpers.go newKubectlClient).
          automountServiceAccountToken: true,
          restartPolicy: 'Never',
          ...placement(profile),
          ...(pullSecret ? { imagePullSecrets: [{ name: pullSecret }] } : {}),
          securityContext: {
            runAsNonRoot: true,
            runAsUser: NONROOT,
            runAsGroup: NONROOT,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          containers: [
            {
              name: CONTAINER,
              image: spec.image,
              imagePullPolicy: 'IfNotPresent',
              args: testArgs(spec),
              env,
              resources: {
                requests: { cpu: '50m', memory: '64Mi', 'ephemeral-storage': '64Mi' },
                limits: { cpu: '1', memory: '512Mi', 'ephemeral-storage': '1Gi' },
              },
              securityContext: restrictedContainerSecurityContext(),
              volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
            },
          ],
          volumes: [{ name: 'tmp', emptyDir: {} }],
        },
      },
    },
  };
}
