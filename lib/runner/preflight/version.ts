/**
 * The Kubernetes version the manifests need. dist/ is cdk8s-plus-28's 1.28 API, tested on 1.28.15;
 * what it really needs is older:
 *
 *  - 1.21 is the floor: dist/ applies a policy/v1 PodDisruptionBudget, served from 1.21 on (an older
 *    API server answers 404 and the deploy fails half-way). Every other API version it applies is
 *    older (apps/v1, batch/v1, networking.k8s.io/v1, storage.k8s.io/v1 with WaitForFirstConsumer,
 *    coordination.k8s.io/v1 for the runner's lock), as are the fields (startupProbe 1.20, seccompProfile
 *    1.19, immutable ConfigMaps 1.21, fsGroupChangePolicy beta on by default from 1.20).
 *  - Below 1.25 the deploy works, but Pod Security admission, which the namespace's
 *    `pod-security.kubernetes.io/enforce: restricted` label relies on, is beta (1.23-1.24) or absent
 *    (1.21-1.22): nothing enforces "restricted". A warning.
 *  - The StatefulSets' persistentVolumeClaimRetentionPolicy (on by default from 1.27) is dropped by
 *    older API servers; it says Retain, which is what they do anyway.
 */
import type { CheckInput, Finding } from './checks.js';
import { upgradeFix } from './fixes.js';

export const MIN_VERSION = [1, 21] as const;
export const ENFORCED_POD_SECURITY = [1, 25] as const;
/** The release the manifests are tested on (the local cluster's). */
export const TESTED_VERSION = 'v1.28.15';

/** major.minor of a gitVersion such as "v1.28.15" or "v1.27.4+k3s1", or undefined. */
export function parseVersion(gitVersion: string): [number, number] | undefined {
  const m = /^v?(\d+)\.(\d+)/.exec(gitVersion);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

const below = (v: readonly [number, number], min: readonly [number, number]) =>
  v[0] < min[0] || (v[0] === min[0] && v[1] < min[1]);

/** The verdict on a version, pure: what is missing below each threshold. */
export function versionVerdict(gitVersion: string): Pick<Finding, 'verdict' | 'text'> {
  const v = parseVersion(gitVersion);
  if (!v)
    return {
      verdict: 'warning',
      text: `the API server's version ${JSON.stringify(gitVersion)} cannot be read; the manifests need 1.21 or later`,
    };
  if (below(v, MIN_VERSION))
    return {
      verdict: 'problem',
      text: `Kubernetes ${gitVersion} is older than 1.21, the first to serve policy/v1 PodDisruptionBudget, which the profile applies`,
    };
  if (below(v, ENFORCED_POD_SECURITY))
    return {
      verdict: 'warning',
      text: `Kubernetes ${gitVersion} runs the manifests, but before 1.25 Pod Security admission does not enforce the namespace's "restricted" label`,
    };
  return {
    verdict: 'ok',
    text: `Kubernetes ${gitVersion} serves everything the manifests use (they need 1.21+, 1.25+ for Pod Security enforcement; tested on ${TESTED_VERSION})`,
  };
}

export async function versionFinding(input: CheckInput): Promise<Finding> {
  const gitVersion = await input.kube.version();
  const verdict = versionVerdict(gitVersion);
  return {
    check: 'version',
    ...verdict,
    ...(verdict.verdict === 'ok' ? {} : { fix: upgradeFix(await input.distribution(), TESTED_VERSION) }),
  };
}
