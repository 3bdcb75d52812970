/**
 * Where the profile's pods can go, decided as the scheduler decides it for what dist/ asks (a node
 * selector, tolerations, requests; no required affinity): pure functions over API objects, so that
 * the check and its unit tests share them.
 */
import { isManifestOf } from '../../k8s-types.js';
import type { Manifest } from '../../synth.js';
import { quantityValue } from '../../validation.js';
import type { Node, Pod } from '../kube.js';

export interface Taint {
  readonly key: string;
  readonly value?: string;
  readonly effect: string;
}
// operator: 'Exists' or 'Equal' (the default); the API types it as a string.
export interface Toleration {
  readonly key?: string;
  readonly operator?: string;
  readonly value?: string;
  readonly effect?: string;
}

/** Effects that keep a pod off a node; PreferNoSchedule only steers the scheduler. */
const BLOCKING_EFFECTS = new Set(['NoSchedule', 'NoExecute']);

/** Kubernetes' rule (k8s.io/api core/v1 toleration.go ToleratesTaint). */
export function tolerates(toleration: Toleration, taint: Taint): boolean {
  if (toleration.effect && toleration.effect !== taint.effect) return false;
  if (toleration.key && toleration.key !== taint.key) return false;
  if (toleration.operator === 'Exists') return true;
  // An empty key with Equal matches nothing the API server accepts; Equal is the default operator.
  return Boolean(toleration.key) && (toleration.value ?? '') === (taint.value ?? '');
}

/** The node's NoSchedule and NoExecute taints that none of `tolerations` tolerates. */
export function untoleratedTaints(node: Node, tolerations: readonly Toleration[]): Taint[] {
  const taints = (node.spec?.taints ?? []) as Taint[];
  return taints.filter((t) => BLOCKING_EFFECTS.has(t.effect) && !tolerations.some((tol) => tolerates(tol, t)));
}

export function matchesSelector(node: Node, selector: Readonly<Record<string, string>>): boolean {
  const labels = node.metadata.labels ?? {};
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

export const isNodeReady = (node: Node) =>
  (node.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
export const isCordoned = (node: Node) => Boolean(node.spec?.unschedulable);

/** Why a node cannot take the pods, or [] when it can. */
export function nodeObstacles(
  node: Node,
  selector: Readonly<Record<string, string>>,
  tolerations: readonly Toleration[],
): string[] {
  const out: string[] = [];
  const labels = node.metadata.labels ?? {};
  const missing = Object.entries(selector)
    .filter(([k, v]) => labels[k] !== v)
    .map(([k, v]) => `${k}=${v}`);
  if (missing.length > 0) out.push(`lacks label ${missing.join(', ')}`);
  if (isCordoned(node)) out.push('is cordoned');
  if (!isNodeReady(node)) out.push('is not Ready');
  // The taints the node controller adds for the two states above are already said.
  const own = untoleratedTaints(node, tolerations).filter((t) => !t.key.startsWith('node.kubernetes.io/'));
  if (own.length > 0)
    out.push(`has taint${own.length === 1 ? '' : 's'} the pods do not tolerate: ${own.map(taintText).join(', ')}`);
  return out;
}

export const taintText = (t: Taint) => `${t.key}${t.value ? `=${t.value}` : ''}:${t.effect}`;

/**
 * Resources in thousandths of their unit (millicores, millibytes), exact: CPU and memory both fit a
 * bigint that way, and "1" and "1000m" are equal.
 */
export type Amounts = Map<string, bigint>;

/** A quantity in thousandths, rounded up (what is asked for may not shrink); 0 for no quantity. */
export function milli(quantity: string | undefined): bigint {
  if (quantity === undefined) return 0n;
  const q = quantityValue(String(quantity));
  if (q === undefined) throw new Error(`not a Kubernetes quantity: ${JSON.stringify(quantity)}`);
  return (q.numerator * 1000n + q.denominator - 1n) / q.denominator;
}

export function amountsOf(list: Readonly<Record<string, string>> | undefined): Amounts {
  return new Map(Object.entries(list ?? {}).map(([k, v]) => [k, milli(v)]));
}

export function addAmounts(a: Amounts, b: Amounts, times = 1n): Amounts {
  const out = new Map(a);
  for (const [k, v] of b) out.set(k, (out.get(k) ?? 0n) + v * times);
  return out;
}

const maxAmounts = (a: Amounts, b: Amounts): Amounts => {
  const out = new Map(a);
  for (const [k, v] of b) out.set(k, (out.get(k) ?? 0n) > v ? out.get(k)! : v);
  return out;
};

interface ContainerSpec {
  resources?: { requests?: Record<string, string> };
}

/**
 * A pod's effective request, as the scheduler computes it: the sum over its containers, or the
 * largest init container's if larger (init containers run one at a time, before the others), plus
 * the pod's overhead.
 */
/** What of a pod spec its requests come from. */
export interface PodSpecRequests {
  containers?: ContainerSpec[];
  initContainers?: ContainerSpec[];
  overhead?: Record<string, string>;
}

export function podRequests(podSpec: PodSpecRequests): Amounts {
  const sum = (podSpec.containers ?? []).reduce(
    (acc, c) => addAmounts(acc, amountsOf(c.resources?.requests)),
    new Map() as Amounts,
  );
  const init = (podSpec.initContainers ?? []).reduce(
    (acc, c) => maxAmounts(acc, amountsOf(c.resources?.requests)),
    new Map() as Amounts,
  );
  return addAmounts(maxAmounts(sum, init), amountsOf(podSpec.overhead));
}

/** A pod dist/ makes: which workload, its pod template's spec, and how many of it. */
export interface PlannedPods {
  readonly workload: string;
  readonly podSpec: PodSpecRequests;
  readonly count: number;
}

/** The pods a deploy makes: every replica of each StatefulSet and the Job's pods (its parallelism). */
export function plannedPods(manifests: readonly Manifest[]): PlannedPods[] {
  return manifests.flatMap((m) => {
    const podSpec = isManifestOf(m, 'StatefulSet') || isManifestOf(m, 'Job') ? m.spec?.template?.spec : undefined;
    if (!podSpec) return [];
    if (isManifestOf(m, 'StatefulSet'))
      return [{ workload: `StatefulSet ${m.metadata.name}`, podSpec, count: m.spec?.replicas ?? 1 }];
    if (isManifestOf(m, 'Job'))
      return [{ workload: `Job ${m.metadata.name}`, podSpec, count: m.spec?.parallelism ?? 1 }];
    return [];
  });
}

/** A node's room: allocatable minus what its pods request (the pod count too, as the scheduler counts it). */
export function freeOn(node: Node, podsOnNode: readonly Pod[]): Amounts {
  let used: Amounts = new Map([['pods', BigInt(podsOnNode.length) * 1000n]]);
  for (const p of podsOnNode) used = addAmounts(used, podRequests(p.spec ?? {}));
  return addAmounts(amountsOf(node.status?.allocatable), used, -1n);
}

/** Pods that hold their requests on a node: scheduled there and neither Succeeded nor Failed. */
export const holdsRequests = (p: Pod) =>
  Boolean(p.spec?.nodeName) && p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed';

/** One pod that did not fit: what it asks for, and the room left on the node with the most of what it lacked. */
export interface Unplaced {
  readonly workload: string;
  readonly resource: string;
  readonly wants: bigint;
  readonly mostFree: bigint;
  readonly node: string;
}

/**
 * Places every pod (each with its request, pod count included) on the nodes' free room, largest
 * first, on the node with the most room left (the scheduler's LeastAllocated spreading); returns
 * the pods that fit nowhere. First fit is not the scheduler's exact choice, but a set of pods it
 * cannot place this way needs more than the nodes have, or nearly.
 */
export function placePods(pods: readonly PlannedPods[], free: ReadonlyMap<string, Amounts>): Unplaced[] {
  const room = new Map([...free].map(([n, a]) => [n, new Map(a)]));
  const wanted = pods.flatMap((p) =>
    Array.from({ length: p.count }, () => ({
      workload: p.workload,
      ask: addAmounts(podRequests(p.podSpec), new Map([['pods', 1000n]])),
    })),
  );
  wanted.sort((a, b) => Number((b.ask.get('cpu') ?? 0n) - (a.ask.get('cpu') ?? 0n)));
  const unplaced: Unplaced[] = [];
  for (const pod of wanted) {
    const fits = [...room].filter(([, r]) => [...pod.ask].every(([k, v]) => v === 0n || (r.get(k) ?? 0n) >= v));
    if (fits.length === 0) {
      unplaced.push(shortfall(pod.workload, pod.ask, room));
      continue;
    }
    fits.sort(([, a], [, b]) => Number((b.get('cpu') ?? 0n) - (a.get('cpu') ?? 0n)));
    const [name, r] = fits[0];
    room.set(name, addAmounts(r, pod.ask, -1n));
  }
  return unplaced;
}

function shortfall(workload: string, ask: Amounts, room: ReadonlyMap<string, Amounts>): Unplaced {
  for (const [resource, wants] of ask) {
    if (wants === 0n) continue;
    const best = [...room].reduce<[string, bigint]>(
      (acc, [n, r]) => ((r.get(resource) ?? 0n) > acc[1] ? [n, r.get(resource) ?? 0n] : acc),
      ['', -1n],
    );
    if (best[1] < wants) return { workload, resource, wants, mostFree: best[1] < 0n ? 0n : best[1], node: best[0] };
  }
  return { workload, resource: 'cpu', wants: ask.get('cpu') ?? 0n, mostFree: 0n, node: '' };
}

/** An amount in thousandths as a person reads it: "150m" CPU, "192Mi" memory, "3" pods. */
export function formatAmount(resource: string, value: bigint): string {
  if (resource === 'cpu') return value % 1000n === 0n ? `${value / 1000n}` : `${value}m`;
  if (resource === 'pods') return `${value / 1000n}`;
  const bytes = value / 1000n;
  for (const [suffix, size] of [
    ['Gi', 1n << 30n],
    ['Mi', 1n << 20n],
    ['Ki', 1n << 10n],
  ] as const) {
    if (bytes >= size) return `${(Number(bytes) / Number(size)).toFixed(bytes % size === 0n ? 0 : 1)}${suffix}`;
  }
  return `${bytes}`;
}
