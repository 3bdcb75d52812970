import type { PodSecurityContext, SecurityContext } from '../../imports/k8s.js';

/*
 * The Pod Security Standard "restricted" profile, as pod- and container-level contexts. Every pod
 * this project makes uses these, and the namespace enforces the standard, so a regression is refused
 * by the API server rather than discovered later.
 */

/** The user and group every container runs as: not root, which "restricted" requires. */
const NON_ROOT_UID = 65532;

export function restrictedPodSecurityContext(): PodSecurityContext {
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

export function restrictedContainerSecurityContext(): SecurityContext {
  return {
    runAsNonRoot: true,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}
