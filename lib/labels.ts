/**
 * The one label scheme. Every object a profile makes carries the profile labels, including the pod
 * and claim templates, so that the runner can find (and delete) everything a profile made with one
 * selector, and nothing else.
 */
export const LabelKeys = {
  name: 'app.kubernetes.io/name',
  instance: 'app.kubernetes.io/instance',
  component: 'app.kubernetes.io/component',
  partOf: 'app.kubernetes.io/part-of',
  managedBy: 'app.kubernetes.io/managed-by',
  profile: 'sandstore.io/profile',
} as const;

/**
 * Container names of a Sand Store pod that the runner addresses (logs): the program itself, whose
 * stdout and stderr carry only fatal start-up errors and panics, and the sidecar that streams its
 * event log file.
 */
export const SandstoreContainers = { node: 'sandstore', events: 'events', handover: 'leader-handover' } as const;

/** The smoke-test Job's one container, the smoke client, whose logs `smoke` prints. */
export const SMOKE_TEST_CONTAINER = 'smoke';

/**
 * The parts of a deployment, as their objects' `app.kubernetes.io/component` label says. The runner
 * and people select on these, so each is written here once.
 */
export const Component = {
  namespace: 'namespace',
  storage: 'storage',
  controlPlane: 'control-plane',
  dataPlane: 'data-plane',
  membershipBootstrap: 'membership-bootstrap',
  smokeTest: 'smoke-test',
  clientAccess: 'client-access',
  networkPolicy: 'network-policy',
  /** What `conformance` writes while it runs upstream's cluster tests, and removes after. */
  conformance: 'conformance',
} as const;
export type Component = (typeof Component)[keyof typeof Component];

export const PART_OF = 'sandstore';
export const MANAGED_BY = 'sandstore-deploy';

/**
 * Annotation telling the runner in which deploy phase an object is applied. It lives in the YAML,
 * where reviewers can read it, rather than in a table inside the runner.
 */
export const DEPLOY_PHASE_ANNOTATION = 'sandstore.io/deploy-phase';

/** Deploy phases in the order the runner applies them (Flow 3). */
export const DeployPhase = {
  /** Namespace, config, storage class, services, policies, disruption budgets. */
  base: 'base',
  /** The etcd StatefulSet; the runner waits for it to be Ready. */
  controlPlane: 'control-plane',
  /** The membership bootstrap Job; the runner waits for it to Complete. */
  bootstrap: 'bootstrap',
  /** The Sand Store StatefulSet; the runner waits for the rollout. */
  dataPlane: 'data-plane',
  /** The per-pod node ports. */
  clientAccess: 'client-access',
  /** Applied only on request (the smoke-test Job). */
  onDemand: 'on-demand',
} as const;
export type DeployPhase = (typeof DeployPhase)[keyof typeof DeployPhase];
export const DEPLOY_PHASE_ORDER: readonly DeployPhase[] = [
  DeployPhase.base,
  DeployPhase.controlPlane,
  DeployPhase.bootstrap,
  DeployPhase.dataPlane,
  DeployPhase.clientAccess,
];

/** The labels every object of a profile carries (applied chart-wide by SandstoreChart). */
export function profileLabels(profileName: string): Record<string, string> {
  return {
    [LabelKeys.partOf]: PART_OF,
    [LabelKeys.managedBy]: MANAGED_BY,
    [LabelKeys.instance]: profileName,
    [LabelKeys.profile]: profileName,
  };
}

/** Label selector (API list form) matching every object of one profile. */
export function profileSelector(profileName: string): string {
  return `${LabelKeys.managedBy}=${MANAGED_BY},${LabelKeys.profile}=${profileName}`;
}

/** Label selector matching the objects of one part of a profile; with `'!='`, of every other part. */
export function componentSelector(profileName: string, component: Component, match: '=' | '!=' = '='): string {
  return `${profileSelector(profileName)},${LabelKeys.component}${match}${component}`;
}

/** Label selector matching the objects of every Sand Store profile but `profileName`. */
export function otherProfilesSelector(profileName: string): string {
  return `${LabelKeys.managedBy}=${MANAGED_BY},${LabelKeys.profile},${LabelKeys.profile}!=${profileName}`;
}

export function phaseAnnotation(phase: DeployPhase): Record<string, string> {
  return { [DEPLOY_PHASE_ANNOTATION]: phase };
}

/**
 * Labels that kubectl lines written for Sand Store select its data-plane pods (both) and claims
 * (`app` only) by, carried besides the scheme above so that they work verbatim: seed 004's Flow 2
 * (`kubectl delete pvc -l app=sandstore`, `kubectl wait --for=delete pod -l app=sandstore`) and Flow
 * 5 (`kubectl logs -l app=sandstore`), and upstream's cluster tests (integration/cluster), which
 * wait for `app=sandstore,sandstore-role=node` pods to go when they scale the StatefulSet to zero.
 * Never in a selector of ours: they say nothing of the profile.
 */
export const SEED_POD_LABELS = { app: 'sandstore', 'sandstore-role': 'node' } as const;
export const SEED_CLAIM_LABELS = { app: SEED_POD_LABELS.app } as const;

/**
 * The label each Sand Store pod's role sidecar keeps on its own pod: what its Raft node last became,
 * `leader` or `follower` (docs/leader-access.md). The leader Services select on it.
 */
export const RAFT_ROLE_LABEL = 'sandstore.io/raft-role';
export const RaftRole = { leader: 'leader', follower: 'follower' } as const;

/** The label the StatefulSet controller puts on each pod; selecting on it pins a service to one pod. */
export const POD_NAME_LABEL = 'statefulset.kubernetes.io/pod-name';

/** Label selector matching the pods of Job `jobName`, by the label the Job controller puts on each. */
export function jobPodsSelector(jobName: string): string {
  return `job-name=${jobName}`;
}
