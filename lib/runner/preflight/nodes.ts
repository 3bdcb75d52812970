/** The nodes and resources checks: which nodes can take the pods, and whether the pods fit there. */
import { podTemplates } from '../../pod-security.js';
import type { Manifest } from '../../synth.js';
import type { Node } from '../kube.js';
import type { CheckInput, Finding } from './checks.js';
import { labelNodeFix, uncordonFix, untaintFix } from './fixes.js';
import {
  formatAmount,
  freeOn,
  holdsRequests,
  isCordoned,
  matchesSelector,
  nodeObstacles,
  placePods,
  plannedPods,
  untoleratedTaints,
  type Amounts,
  type Toleration,
} from './scheduling.js';

/** What one pod template asks of a node. */
export interface PodTemplateNeeds {
  readonly workload: string;
  readonly nodeSelector: Readonly<Record<string, string>>;
  readonly tolerations: readonly Toleration[];
}

/** The pod templates of dist/ (as pod-security.ts finds them) with what they ask of a node. */
export function templateNeeds(manifests: readonly Manifest[]): PodTemplateNeeds[] {
  return podTemplates(manifests).map(({ owner, template }) => ({
    workload: owner.replace('/', ' '),
    nodeSelector: template.spec?.nodeSelector ?? {},
    tolerations: template.spec?.tolerations ?? [],
  }));
}

/** The nodes that can take the template's pods, and what keeps each other node out. */
export function schedulableNodes(
  nodes: readonly Node[],
  t: PodTemplateNeeds,
): { fit: Node[]; obstacles: [string, string[]][] } {
  const obstacles = nodes.map(
    (n) => [n.metadata.name, nodeObstacles(n, t.nodeSelector, t.tolerations)] as [string, string[]],
  );
  return {
    fit: nodes.filter((_, i) => obstacles[i][1].length === 0),
    obstacles: obstacles.filter(([, o]) => o.length > 0),
  };
}

/**
 * The one command that gets the pods a node, when one change would: uncordon the labelled node,
 * remove the one taint it has that the pods do not tolerate, or label a Ready node. Undefined when
 * no single command does (the caller then shows the labelling with a placeholder).
 */
export function nodeOrTaintFix(context: string, nodes: readonly Node[], t: PodTemplateNeeds): string | undefined {
  const labelled = nodes.filter((n) => matchesSelector(n, t.nodeSelector));
  for (const n of labelled) {
    const obstacles = nodeObstacles(n, t.nodeSelector, t.tolerations);
    if (obstacles.length === 1 && isCordoned(n)) return uncordonFix(context, n.metadata.name);
    const taints = untoleratedTaints(n, t.tolerations).filter((x) => !x.key.startsWith('node.kubernetes.io/'));
    if (obstacles.length === 1 && taints.length === 1) return untaintFix(context, n.metadata.name, taints[0]);
  }
  // A node whose only obstacle is the missing labels.
  const unlabelled = nodes.find((n) => {
    const o = nodeObstacles(n, t.nodeSelector, t.tolerations);
    return o.length === 1 && o[0].startsWith('lacks label');
  });
  return unlabelled ? labelNodeFix(context, unlabelled.metadata.name, t.nodeSelector) : undefined;
}

/**
 * Whether every pod dist/ makes (all replicas of both StatefulSets and the membership Job) fits the
 * room left on the nodes it may go to: allocatable minus the requests of the pods already there,
 * this profile's own left out (a deploy destroys them first).
 */
export async function resourcesFinding(input: CheckInput): Promise<Finding> {
  const [nodes, pods] = await Promise.all([input.list('Node'), input.list('Pod')]);
  const planned = plannedPods(input.manifests);
  const others = pods.filter(
    (p) => holdsRequests(p) && p.metadata.labels?.['sandstore.io/profile'] !== input.profile.name,
  );
  const templates = templateNeeds(input.manifests);
  const eligible = nodes.filter((n) =>
    templates.every((t) => nodeObstacles(n, t.nodeSelector, t.tolerations).length === 0),
  );
  if (eligible.length === 0)
    return { check: 'resources', verdict: 'notRun', text: 'could not run: no node the pods may go to (see nodes)' };
  const free = new Map<string, Amounts>(
    eligible.map((n) => [
      n.metadata.name,
      freeOn(
        n,
        others.filter((p) => p.spec?.nodeName === n.metadata.name),
      ),
    ]),
  );
  const unplaced = placePods(planned, free);
  const count = planned.reduce((a, p) => a + p.count, 0);
  if (unplaced.length === 0)
    return {
      check: 'resources',
      verdict: 'ok',
      text: `the ${count} pods' requests fit on ${eligible.map((n) => n.metadata.name).join(', ')} beside what is already there`,
    };
  const u = unplaced[0];
  const field = u.workload.includes('etcd') ? 'resources.etcd.requests' : 'resources.sandstore.requests';
  return {
    check: 'resources',
    verdict: 'problem',
    text: `${unplaced.length} of ${count} pods do not fit: a pod of ${u.workload} requests ${formatAmount(u.resource, u.wants)} ${u.resource}, the most left on any node it may go to is ${formatAmount(u.resource, u.mostFree)}${u.node ? ` (${u.node})` : ''}`,
    fix:
      u.resource === 'pods'
        ? labelNodeFix(input.context, '<another node>', templates[0]?.nodeSelector ?? {})
        : `lower ${u.resource === 'cpu' || u.resource === 'memory' ? `${field}.${u.resource}` : field} in profiles/${input.profile.name}.ts and run \`npm run synth -- --profile=${input.profile.name}\`, or free room on the node, or ${labelNodeFix(input.context, '<another node>', templates[0]?.nodeSelector ?? {})}`,
  };
}
