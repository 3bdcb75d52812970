import { Construct } from 'constructs';
import {
  IntOrString,
  KubeRole,
  KubeRoleBinding,
  KubeService,
  KubeServiceAccount,
  type Container,
  type Volume,
} from '../../../imports/k8s.js';
import { DeployPhase, phaseAnnotation, RAFT_ROLE_LABEL, RaftRole } from '../../labels.js';
import { Declared, declareFindings } from '../checker-declarations.js';
import { EPHEMERAL_STORAGE, toResourceRequirements } from '../resources.js';
import { restrictedContainerSecurityContext } from '../security.js';

/** Where the kubelet mounts a ServiceAccount's credentials, and the volume that brings them. */
const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
const TOKEN_VOLUME = 'role-label-api-access';

/** What the leader routing needs to know of the data plane. */
export interface LeaderRoutingTarget {
  readonly name: string;
  readonly podNames: readonly string[];
  readonly podSelector: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
  readonly port: number;
  readonly dataDir: string;
  readonly imagePullPolicy: string;
}

/**
 * The leader's Service and what keeps it true (docs/leader-access.md): a ServiceAccount that may
 * patch only the data plane's own pods, by name, used by one sidecar per pod that sets the pod's
 * `sandstore.io/raft-role` from Sand Store's event log; `<name>-leader` selects the pod labelled
 * leader, so its one address is answered by the leader, whatever pod that is.
 */
export class LeaderRouting extends Construct {
  public readonly serviceAccountName: string;
  public readonly serviceName: string;
  /** The selector of the leader's pod. */
  public readonly leaderSelector: Readonly<Record<string, string>>;

  public constructor(
    scope: Construct,
    id: string,
    private readonly target: LeaderRoutingTarget,
    private readonly roleLabelImage: string,
  ) {
    super(scope, id);
    this.serviceAccountName = `${target.name}-role-label`;
    this.serviceName = `${target.name}-leader`;
    this.leaderSelector = { ...target.podSelector, [RAFT_ROLE_LABEL]: RaftRole.leader };
    const metadata = (name: string) => ({
      name,
      labels: { ...target.labels },
      annotations: phaseAnnotation(DeployPhase.base),
    });
    new KubeServiceAccount(this, 'ServiceAccount', {
      metadata: metadata(this.serviceAccountName),
      // Only the sidecar gets a token (see the pod's projected volume), not every container.
      automountServiceAccountToken: false,
    });
    new KubeRole(this, 'Role', {
      metadata: metadata(this.serviceAccountName),
      // As narrow as RBAC goes: patch, of these pods only. RBAC cannot limit a patch to one label.
      rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['patch'], resourceNames: [...target.podNames] }],
    });
    new KubeRoleBinding(this, 'RoleBinding', {
      metadata: metadata(this.serviceAccountName),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: this.serviceAccountName },
      subjects: [{ kind: 'ServiceAccount', name: this.serviceAccountName }],
    });
    declareFindings(
      new KubeService(this, 'LeaderService', {
        metadata: metadata(this.serviceName),
        spec: {
          selector: { ...this.leaderSelector },
          ports: [{ name: 'grpc', port: target.port, targetPort: IntOrString.fromString('grpc') }],
        },
      }),
      Declared.leaderSelector,
    );
  }

  /** The sidecar that keeps its pod's role label, with the only token in the pod. */
  public sidecar(): Container {
    return {
      name: 'role-label',
      image: this.roleLabelImage,
      imagePullPolicy: this.target.imagePullPolicy,
      args: ['-log', `${this.target.dataDir}/logs/$(POD_NAME).log`, '-label', RAFT_ROLE_LABEL],
      env: [
        { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
        { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      ],
      resources: toResourceRequirements(
        { requests: { cpu: '10m', memory: '16Mi' }, limits: { cpu: '100m', memory: '32Mi' } },
        EPHEMERAL_STORAGE.quiet,
      ),
      securityContext: restrictedContainerSecurityContext(),
      volumeMounts: [
        { name: 'data', mountPath: this.target.dataDir, readOnly: true },
        { name: TOKEN_VOLUME, mountPath: SA_DIR, readOnly: true },
      ],
    };
  }

  /** The ServiceAccount's credentials as the kubelet would automount them, for the sidecar alone. */
  public tokenVolume(): Volume {
    return {
      name: TOKEN_VOLUME,
      projected: {
        sources: [
          { serviceAccountToken: { path: 'token', expirationSeconds: 3607 } },
          { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
          { downwardApi: { items: [{ path: 'namespace', fieldRef: { fieldPath: 'metadata.namespace' } }] } },
        ],
      },
    };
  }
}
