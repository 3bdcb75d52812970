/**
 * The pre-flight checks of a profile against its cluster, read-only: `check` prints them, and
 * deploy runs them before its first change (blocking problems refuse it). Each check reads what it
 * needs (shared reads are made once), and a read the API server refuses (a context without list
 * permission) makes that check "not run", saying why, while the others go on.
 */
import { DeployPhase, LabelKeys } from '../../labels.js';
import type { Profile } from '../../profile.js';
import { isManifestOf } from '../../k8s-types.js';
import type { Manifest } from '../../synth.js';
import { ApiError, ApiUnreachableError, type Kube, type KubeObject, type ObjectOf } from '../kube.js';
import { phaseOf } from '../manifests.js';
import { isProfiles } from '../ownership.js';
import { clusterStartFix, distributionOf, kubectl, labelNodeFix, type Distribution } from './fixes.js';
import { nodeOrTaintFix, resourcesFinding, schedulableNodes, templateNeeds } from './nodes.js';
import { provisionerFinding, storageClassFinding } from './storage.js';
import { registryFinding } from './registry.js';
import { versionFinding } from './version.js';

/**
 * ok ✓; problem ✗ (the deploy would fail: `check` exits 1 and deploy refuses); warning ! (worth
 * knowing, the deploy can succeed); notRun: the check could not be made (`check` exits 1, deploy
 * goes on: it will find out itself).
 */
export type Verdict = 'ok' | 'problem' | 'warning' | 'notRun';

export interface Finding {
  readonly check: string;
  readonly verdict: Verdict;
  /** What was found, and on what evidence. */
  readonly text: string;
  /** The command (or profile change) that fixes a problem or warning. */
  readonly fix?: string;
}

/** What every check may read: the profile, its dist/, and the cluster's objects, each listed at most once. */
export interface CheckInput {
  readonly kube: Kube;
  readonly profile: Profile;
  readonly context: string;
  readonly manifests: readonly Manifest[];
  readonly list: <K extends string>(kind: K) => Promise<ObjectOf<K>[]>;
  readonly distribution: () => Promise<Distribution>;
}

export function checkInput(kube: Kube, profile: Profile, context: string, manifests: readonly Manifest[]): CheckInput {
  const lists = new Map<string, Promise<KubeObject[]>>();
  const list = <K extends string>(kind: K): Promise<ObjectOf<K>[]> => {
    if (!lists.has(kind))
      lists.set(
        kind,
        kube.list(kind).then((l) => l.items),
      );
    return lists.get(kind)! as Promise<ObjectOf<K>[]>;
  };
  // The nodes tell which distribution this is; without permission to list them, every one's fix is shown.
  const distribution = () => list('Node').then(distributionOf, () => 'unknown' as const);
  // What a deploy applies: the on-demand smoke Job is not part of it.
  return {
    kube,
    profile,
    context,
    manifests: manifests.filter((m) => phaseOf(m) !== DeployPhase.onDemand),
    list,
    distribution,
  };
}

/** The checks after the connection's, in the order printed. */
const CHECKS: readonly [name: string, run: (input: CheckInput) => Promise<Finding | Finding[]>][] = [
  ['version', versionFinding],
  ['nodes', nodesFinding],
  ['storage class', storageClassFinding],
  ['provisioner', provisionerFinding],
  ['resources', resourcesFinding],
  ['node ports', nodePortsFinding],
  ['image', registryFinding],
];

/**
 * Every check but those named in `skip`, in order. The connection comes first: when the API server
 * cannot be reached (or refuses the credentials) nothing else can be checked, and that one finding
 * is all there is.
 */
export async function runChecks(input: CheckInput, skip: readonly string[] = []): Promise<Finding[]> {
  const connection = await connectionFinding(input);
  if (connection.verdict !== 'ok') return [connection];
  const checks = CHECKS.filter(([name]) => !skip.includes(name));
  const results = await Promise.all(checks.map(([name, run]) => run(input).catch((err: unknown) => notRun(name, err))));
  return [connection, ...results.flat()];
}

/** A check whose read the API server refused (403, say): not run, saying why; anything else is a bug and goes on up. */
export function notRun(check: string, err: unknown): Finding {
  if (err instanceof ApiError)
    return {
      check,
      verdict: 'notRun',
      text: `could not run: ${err.message.replace(/^the API server refused /, 'the API server refused ')}`,
    };
  throw err;
}

async function connectionFinding(input: CheckInput): Promise<Finding> {
  const server = input.kube.config.getCurrentCluster()?.server ?? '(unknown)';
  try {
    const gitVersion = await input.kube.version();
    return {
      check: 'connection',
      verdict: 'ok',
      text: `context ${input.context} reaches the API server at ${server} (Kubernetes ${gitVersion})`,
    };
  } catch (err) {
    if (err instanceof ApiUnreachableError)
      return { check: 'connection', verdict: 'problem', text: err.message, fix: clusterStartFix(input.context) };
    if (err instanceof ApiError && err.status === 401)
      return {
        check: 'connection',
        verdict: 'problem',
        text: `the API server at ${server} does not accept the credentials of context ${input.context} (401 Unauthorized)`,
        fix: `refresh the credentials of context ${input.context} in the kubeconfig`,
      };
    throw err;
  }
}

async function nodesFinding(input: CheckInput): Promise<Finding> {
  const nodes = await input.list('Node');
  const templates = templateNeeds(input.manifests);
  for (const t of templates) {
    const { fit, obstacles } = schedulableNodes(nodes, t);
    if (fit.length > 0) continue;
    const selector =
      Object.entries(t.nodeSelector)
        .map(([k, v]) => `${k}=${v}`)
        .join(',') || '(none)';
    const why =
      obstacles.length > 0
        ? `: ${obstacles
            .slice(0, 4)
            .map(([n, o]) => `${n} ${o.join(' and ')}`)
            .join('; ')}${obstacles.length > 4 ? `; and ${obstacles.length - 4} more` : ''}`
        : '';
    return {
      check: 'nodes',
      verdict: 'problem',
      text: `no schedulable node for ${t.workload} (node selector ${selector})${why}`,
      fix: nodeOrTaintFix(input.context, nodes, t) ?? labelNodeFix(input.context, '<node>', t.nodeSelector),
    };
  }
  const names = [...new Set(templates.flatMap((t) => schedulableNodes(nodes, t).fit.map((n) => n.metadata.name)))];
  return {
    check: 'nodes',
    verdict: 'ok',
    text: `${names.length} schedulable node${names.length === 1 ? ' matches' : 's match'} the node selector and taints: ${names.join(', ')}`,
  };
}

/**
 * Node ports of dist/'s Services held by a Service that is not this profile's (the API server would
 * refuse to allocate them).
 */
async function nodePortsFinding(input: CheckInput): Promise<Finding> {
  const services = input.manifests.filter((m) => isManifestOf(m, 'Service'));
  const ports = services.flatMap((m) =>
    (m.spec?.ports ?? []).flatMap((p) => (p.nodePort ? [[p.nodePort, m.metadata.name] as const] : [])),
  );
  const wanted = new Map<number, string>(ports);
  if (wanted.size === 0) return { check: 'node ports', verdict: 'ok', text: 'the profile opens no node port' };
  const live = await input.list('Service');
  const held = live
    .filter((s) => !isProfiles(s, input.profile.name))
    .flatMap((s) =>
      ((s.spec?.ports ?? []) as { nodePort?: number }[])
        .filter((p) => p.nodePort !== undefined && wanted.has(p.nodePort))
        .map((p) => ({ port: p.nodePort!, service: s })),
    );
  if (held.length === 0)
    return { check: 'node ports', verdict: 'ok', text: `node ports ${describePorts([...wanted.keys()])} are free` };
  const taken = new Set(
    live.flatMap((s) =>
      ((s.spec?.ports ?? []) as { nodePort?: number }[])
        .map((p) => p.nodePort)
        .filter((p): p is number => p !== undefined),
    ),
  );
  const base = freeBase(taken, wanted.size);
  const first = held[0];
  const holders = held
    .map((h) => `${h.port} by Service ${h.service.metadata.namespace}/${h.service.metadata.name}`)
    .join(', ');
  return {
    check: 'node ports',
    verdict: 'problem',
    text: `node port${held.length === 1 ? '' : 's'} held by another Service: ${holders}`,
    fix: `${kubectl(input.context)} delete service -n ${first.service.metadata.namespace} ${first.service.metadata.name}${base ? `, or set clientAccess.nodePortBase to ${base} in profiles/${input.profile.name}.ts (${base}-${base + wanted.size - 1} are free)` : ''}`,
  };
}

const describePorts = (ports: number[]) =>
  ports.length > 2 ? `${Math.min(...ports)}-${Math.max(...ports)}` : ports.join(', ');

/** The default node-port range (the API server's --service-node-port-range). */
const NODE_PORT_RANGE = [30000, 32767] as const;

/** The lowest base from which `count` consecutive node ports are all free. */
export function freeBase(taken: ReadonlySet<number>, count: number): number | undefined {
  for (let base = NODE_PORT_RANGE[0]; base + count - 1 <= NODE_PORT_RANGE[1]; base++) {
    if (Array.from({ length: count }, (_, i) => base + i).every((p) => !taken.has(p))) return base;
  }
  return undefined;
}

/** The profile's own label, for checks that leave its objects out (a deploy destroys them first). */
export const profileOf = (o: KubeObject) => o.metadata.labels?.[LabelKeys.profile];
