import type { ApiObject } from 'cdk8s';

/*
 * Findings of the third-party manifest checkers (kube-score and checkov, run over dist/ by
 * scripts/lint-manifests.sh) that an object keeps on purpose. Each is declared here once, with its
 * reason, and put on the objects it concerns as the checkers' own annotations; docs/profiles.md's
 * "Manifest checkers" lists them with the objects. Whatever can be fixed is fixed in the constructs
 * instead. The lint fails on a declaration that no longer silences a finding, so none outlives its
 * cause.
 */

/** A finding an object keeps, with why. */
export interface Declaration {
  /** kube-score check ids (`kube-score list`), written to `kube-score/ignore`. */
  readonly kubeScore?: readonly string[];
  /** checkov check ids, each written as `checkov.io/skip<n>: <id>=<reason>`. */
  readonly checkov?: readonly string[];
  /** Why the object keeps it, in a sentence or two: checkov's annotation carries this text. */
  readonly reason: string;
}

const KUBE_SCORE_IGNORE_ANNOTATION = 'kube-score/ignore';
const CHECKOV_SKIP_ANNOTATION_PREFIX = 'checkov.io/skip';

export const Declared = {
  /** On the per-pod Services: SandstoreCluster's `sandstore-<i>` and ClientNodePort's `sandstore-<i>-external`. */
  perPodServiceSelector: {
    kubeScore: ['service-targets-pod'],
    reason:
      'Selects one pod by statefulset.kubernetes.io/pod-name, the label the StatefulSet controller ' +
      'adds to each pod it creates; no pod template can carry it, so a checker reading the manifests ' +
      'finds no pod to match.',
  },
  /** On ClientNodePort's Services. */
  leaderSelector: {
    kubeScore: ['service-targets-pod'],
    reason:
      'Selects the pod labelled sandstore.io/raft-role=leader, a label the role sidecar sets on its ' +
      'own pod at run time; no pod template carries it, so a checker reading the manifests finds no pod.',
  },
  leaderNodePort: {
    kubeScore: ['service-type'],
    reason:
      'A NodePort by design: a client outside the cluster reaches the Raft leader at one node port, ' +
      'whichever pod leads (the role label its sidecar keeps).',
  },
  perPodNodePort: {
    kubeScore: ['service-type'],
    reason:
      'A NodePort by design: a client outside the cluster reaches pod i at node port base + i, ' +
      "the address that pod advertises as the leader's.",
  },
  /** On the etcd StatefulSet. */
  etcdClientPlainHttp: {
    checkov: ['CKV_K8S_116', 'CKV_K8S_117'],
    reason:
      "etcd serves clients over plain HTTP because Sand Store's etcd client has no TLS or " +
      'authentication option (clientv3 given only endpoints and a dial timeout; ETCD_ENDPOINTS is ' +
      "host:port). The NetworkPolicy etcd-ingress admits the client port only from Sand Store's " +
      'pods, the membership Job and etcd members, where the network plugin enforces NetworkPolicy.',
  },
  /** On the etcd StatefulSet. */
  etcdPeerPlainHttp: {
    checkov: ['CKV_K8S_119'],
    reason:
      'Members talk over plain HTTP: peer TLS needs a CA and a certificate per member, issued and ' +
      'rotated by something this project does not deploy (dist/ is committed and holds no keys). ' +
      'The NetworkPolicy etcd-ingress admits the peer port only from etcd members, where the ' +
      'network plugin enforces NetworkPolicy.',
  },
  /** On every workload: both StatefulSets and both Jobs. */
  imageByTag: {
    checkov: ['CKV_K8S_43'],
    reason:
      "Images are named by tag: npm run image pushes the profile's tag and npm run update rolls " +
      'it, the pull policy Always resolving the tag at each pod start; a digest exists only once ' +
      "that build is pushed, after dist/ is synthesized and reviewed. The profile names etcd's " +
      'image by tag too.',
  },
  /** On the Sand Store StatefulSet. */
  eventsSidecarProbes: {
    checkov: ['CKV_K8S_8', 'CKV_K8S_9'],
    reason:
      'The sandstore container has startup, readiness and liveness probes; the events sidecar, ' +
      'which streams its log file, has none: its shell exits when tail stops, so the kubelet ' +
      'restarts it without a liveness probe, and a readiness probe would take a serving node out ' +
      'of its Services for the sake of a log stream.',
  },
} as const satisfies Record<string, Declaration>;

/**
 * Annotates `obj` with the declarations, after any it already carries: kube-score's ids joined in
 * one `kube-score/ignore`, checkov's numbered `checkov.io/skip<n>`. It changes nothing but `obj`'s
 * annotations.
 */
export function declareFindings(obj: ApiObject, ...declarations: readonly Declaration[]): void {
  const existing = (obj.metadata.toJson() as { annotations?: Record<string, string> }).annotations ?? {};
  const ignored = existing[KUBE_SCORE_IGNORE_ANNOTATION]?.split(',') ?? [];
  let skips = Object.keys(existing).filter((key) => key.startsWith(CHECKOV_SKIP_ANNOTATION_PREFIX)).length;
  for (const declaration of declarations) {
    ignored.push(...(declaration.kubeScore ?? []));
    for (const id of declaration.checkov ?? []) {
      obj.metadata.addAnnotation(`${CHECKOV_SKIP_ANNOTATION_PREFIX}${++skips}`, `${id}=${declaration.reason}`);
    }
  }
  if (ignored.length > 0) obj.metadata.addAnnotation(KUBE_SCORE_IGNORE_ANNOTATION, ignored.join(','));
}
