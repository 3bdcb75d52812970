import { Construct } from 'constructs';
import type { Container } from '../../../imports/k8s.js';
import { Component, DeployPhase } from '../../labels.js';
import { check, rules } from '../../validation.js';
import { Declared, declareFindings } from '../checker-declarations.js';
import { runToCompletionJob } from '../job.js';
import { EPHEMERAL_STORAGE, toResourceRequirements } from '../resources.js';
import { componentLabels, selectorLabels } from '../scope.js';
import { restrictedContainerSecurityContext } from '../security.js';
import type { MembershipBootstrapProps } from './membership-bootstrap-props.js';

/** Where Sand Store looks up its members in etcd: one key per node, `<prefix><node id>`. */
export const MEMBERSHIP_PREFIX = '/sandstore/config/nodes/';

/** One entry of the static membership, as Sand Store reads it from etcd. */
export interface MembershipEntry {
  readonly key: string;
  readonly value: string;
}

/**
 * The Job that writes Sand Store's static membership to etcd before the data plane starts: clear
 * the prefix, then one key per node. etcd's image has no shell, so each etcdctl call is its own
 * init container, generated for any replica count.
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
    for (const [i, member] of props.members.entries()) check(who, `members[${i}].id`, member.id, rules.dnsLabel);

    this.membership = props.members.map(({ id: nodeId, address }) => ({
      key: `${MEMBERSHIP_PREFIX}${nodeId}`,
      value: JSON.stringify({ id: nodeId, address, role: 'voter' }),
    }));
    this.podSelector = selectorLabels(this, props.dataPlaneName, Component.membershipBootstrap);

    const env = [
      { name: 'ETCDCTL_API', value: '3' },
      { name: 'ETCDCTL_ENDPOINTS', value: props.etcd.clientEndpoints.join(',') },
      { name: 'ETCDCTL_DIAL_TIMEOUT', value: '5s' },
    ];
    const etcdctl = (name: string, args: string[]): Container => ({
      name,
      image: props.etcd.image,
      imagePullPolicy: props.etcd.imagePullPolicy,
      command: ['etcdctl', ...args],
      env,
      resources: toResourceRequirements(
        { requests: { cpu: '10m', memory: '32Mi' }, limits: { cpu: '100m', memory: '64Mi' } },
        EPHEMERAL_STORAGE.quiet,
      ),
      securityContext: restrictedContainerSecurityContext(),
    });
    const job = runToCompletionJob(this, 'Job', {
      name: `${props.dataPlaneName}-membership-bootstrap`,
      labels: componentLabels(this, props.dataPlaneName, Component.membershipBootstrap),
      phase: DeployPhase.bootstrap,
      backoffLimit: 2,
      placement: props.placement,
      pod: {
        initContainers: [
          etcdctl('clear-membership', ['del', '--prefix', MEMBERSHIP_PREFIX]),
          ...this.membership.map((entry, i) => etcdctl(`register-member-${i}`, ['put', entry.key, entry.value])),
        ],
        containers: [etcdctl('show-membership', ['get', '--prefix', MEMBERSHIP_PREFIX])],
      },
    });
    declareFindings(job, Declared.imageByTag);
  }
}
