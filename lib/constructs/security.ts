import type * as k8s from 'cdk8s-plus-28/lib/imports/k8s.js';

/**
 * The Pod Security Standard "restricted" profile, as pod- and container-level contexts. Every pod
 * this project makes uses these, and the namespace enforces the standard, so a regression is refused
 * by the API server rather than discovered later.
 */
export const NON_ROOT_UID = 65532;

export function restrictedPodSecurityContext(): k8s.PodSecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: NON_ROOT_UID,
    runAsGroup: NON_ROOT_UID,
    // Makes the claimed volume writable by the non-root user.
    fsGroup: NON_ROOT_UID,
    fsGroupChangePolicy: 'OnRootMismatch',
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

export function restrictedContainerSecurityContext(): k8s.SecurityContext {
  return {
    runAsNonRoot: true,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}
