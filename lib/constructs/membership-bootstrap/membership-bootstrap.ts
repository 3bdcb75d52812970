import { Construct } from 'constructs';
import { Component, DeployPhase } from '../../labels.js';
import { check, rules } from '../../validation.js';
import { Declared, declareFindings } from '../checker-declarations.js';
import { runToCompletionJob } from '../job.js';
import { EPHEMERAL_STORAGE, toResourceRequirements } from '../resources.js';
import { componentLabels, selectorLabels } from '../scope.js';
import { restrictedContainerSecurityContext } from '../security.js';
import type { MembershipBootstrapProps } from './membership-bootstrap-props.js';
import {
  MEMBERSHIP_ANNOTATION,
  MEMBERSHIP_PREFIX,
  MEMBERSHIP_TXN_ANNOTATION,
  membershipTxn,
  membershipTxnOps,
  type MembershipEntry,
} from './membership-txn.js';

export { MEMBERSHIP_PREFIX, type MembershipEntry } from './membership-txn.js';

/** Where the Job's container finds the transaction (its pod's annotation, through the downward API). */
const TXN_DIR = '/etc/membership';
const TXN_FILE = 'txn.json';

/**
 * Seconds between attempts to reach etcd, here and in the data plane's wait-for-membership: etcd
 * may still be starting, and under an enforcing NetworkPolicy plugin a new pod's first connection
 * is refused until the plugin has learnt its address (kube-router: a fraction of a second), so a
 * long pause would be paid on every pod start.
 */
export const ETCD_RETRY_SECONDS = '0.2';

/**
 * The Job that writes Sand Store's static membership to etcd: one container, one transaction
 * (membership-txn.ts) that leaves exactly one key per node under the prefix, sent to etcd's JSON
 * gateway with the shell and wget of the data plane's image (the tools its wait-for-membership uses).
 * It retries until etcd answers, so the runner may apply it before etcd is Ready: one container
 * start instead of one per etcdctl call (etcd's image has no shell), the first write the moment
 * etcd serves. Each attempt is bounded by busybox's `timeout`, as wait-for-membership's are.
 */
export class MembershipBootstrap extends Construct {
  /** The keys and values the Job writes, in ordinal order. */
  public readonly membership: readonly MembershipEntry[];
  /** Labels selecting the Job's pod (for network policies). */
  public readonly podSelector: Readonly<Record<string, string>>;

  public constructor(scope: Construct, id: string, props: MembershipBootstrapProps) {
    super(scope, id);
    const who = `MembershipBootstrap ${this.node.path}`;
    check(who, 'dataPlaneName', props.dataPlaneName, rules.dnsLabel);
    check(who, 'image', props.image, rules.imageReference);
    for (const [i, member] of props.members.entries()) check(who, `members[${i}].id`, member.id, rules.dnsLabel);
    const ops = membershipTxnOps(props.members.length);
    if (ops > props.etcd.maxTxnOps)
      throw new Error(
        `${who}: invalid members (${props.members.length} of them); expected at most ` +
          `${Math.floor((props.etcd.maxTxnOps - 1) / 2)}: their transaction of ${ops} operations must fit ` +
          `etcd's --max-txn-ops (${props.etcd.maxTxnOps})`,
      );

    this.membership = props.members.map(({ id: nodeId, address }) => ({
      key: `${MEMBERSHIP_PREFIX}${nodeId}`,
      value: JSON.stringify({ id: nodeId, address, role: 'voter' }),
    }));
    this.podSelector = selectorLabels(this, props.dataPlaneName, Component.membershipBootstrap);

    const script = [
      // The shell is PID 1 of its container, which ignores SIGTERM unless trapped.
      'trap "exit 143" TERM INT',
      'while :; do',
      '  for endpoint in $(echo "$ETCD_ENDPOINTS" | tr "," " "); do',
      `    if timeout 3 wget -q -O - --post-file "${TXN_DIR}/${TXN_FILE}" "http://$endpoint/v3/kv/txn" 2>/dev/null ` +
        '| grep -q "\\"succeeded\\":true"; then',
      '      echo "membership of $MEMBERS written to etcd at $endpoint"; exit 0',
      '    fi',
      '  done',
      `  sleep ${ETCD_RETRY_SECONDS}`,
      'done',
    ].join('\n');
    const job = runToCompletionJob(this, 'Job', {
      name: `${props.dataPlaneName}-membership-bootstrap`,
      labels: componentLabels(this, props.dataPlaneName, Component.membershipBootstrap),
      phase: DeployPhase.bootstrap,
      backoffLimit: 2,
      placement: props.placement,
      podAnnotations: {
        // For a reviewer of dist/: the entries in plain text (the transaction carries them in base64).
        [MEMBERSHIP_ANNOTATION]: JSON.stringify(this.membership),
        [MEMBERSHIP_TXN_ANNOTATION]: membershipTxn(this.membership),
      },
      pod: {
        ...(props.imagePullSecret !== undefined && { imagePullSecrets: [{ name: props.imagePullSecret }] }),
        containers: [
          {
            name: 'write-membership',
            image: props.image,
            imagePullPolicy: props.imagePullPolicy,
            command: ['sh', '-c', script],
            env: [
              { name: 'ETCD_ENDPOINTS', value: props.etcd.clientServiceEndpoint },
              { name: 'MEMBERS', value: props.members.map((m) => m.id).join(' ') },
            ],
            resources: toResourceRequirements(
              { requests: { cpu: '10m', memory: '16Mi' }, limits: { cpu: '100m', memory: '32Mi' } },
              EPHEMERAL_STORAGE.quiet,
            ),
            securityContext: restrictedContainerSecurityContext(),
            volumeMounts: [{ name: 'membership', mountPath: TXN_DIR, readOnly: true }],
          },
        ],
        volumes: [
          {
            name: 'membership',
            downwardApi: {
              items: [
                {
                  path: TXN_FILE,
                  fieldRef: { fieldPath: `metadata.annotations['${MEMBERSHIP_TXN_ANNOTATION}']` },
                },
              ],
            },
          },
        ],
      },
    });
    declareFindings(job, Declared.imageByTag);
  }
}
