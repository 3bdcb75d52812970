/**
 * The process baseline's settings, read from the profile's own manifests (dist/<profile>/): the
 * same programs with the same flags and environment as the pods, changed only where a process on
 * this machine must differ from a pod: addresses (127.0.0.1 and a port of its own instead of a
 * pod's IP, DNS names and container ports), data directories (a local folder instead of a claim),
 * and what the pod's downward API would have filled in (the pod's name as the node id, the node's
 * IP). Each change is listed (Difference), with the value on Kubernetes and here, and why.
 *
 * Pure: the ports and folders come in as a Layout, so the settings can be checked (and a profile
 * this cannot mirror refused) before anything starts, and tested without processes.
 */
import { posix } from 'node:path';
import { MEMBERSHIP_TXN_ANNOTATION, membershipOfTxn } from '../constructs/membership-bootstrap/membership-txn.js';
import { RefusedError } from '../errors.js';
import { Component, LabelKeys, SandstoreContainers } from '../labels.js';
import type { Manifest } from '../synth.js';
import { isManifestOf, type ManifestOf } from '../k8s-types.js';

/** One process as the baseline starts it. */
export interface ProcessSettings {
  /** The pod's name: the node id of a Sand Store node, the member name of etcd. */
  readonly name: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly dataDir: string;
  /** host:port where it serves clients (Sand Store's gRPC, etcd's client URL). */
  readonly address: string;
}

/** A setting that differs from the StatefulSet's, and why. */
export interface Difference {
  readonly setting: string;
  readonly kubernetes: string;
  readonly processes: string;
  readonly why: string;
}

/** Where each process listens and keeps its data: chosen when the processes start. */
export interface Layout {
  readonly dataRoot: string;
  /** Per etcd member, its container ports (2379, 2380, 2381 …) to ports on 127.0.0.1. */
  readonly etcdPorts: readonly ReadonlyMap<number, number>[];
  /** Per Sand Store node, in ordinal order: its gRPC port (consecutive: base + ordinal). */
  readonly nodePorts: readonly number[];
}

export interface BaselineSettings {
  readonly sandstore: { readonly image: string; readonly command?: readonly string[] };
  readonly etcdImage: { readonly image: string; readonly command?: readonly string[] };
  readonly etcd: readonly ProcessSettings[];
  readonly nodes: readonly ProcessSettings[];
  readonly members: readonly { readonly key: string; readonly value: string }[];
  readonly differences: readonly Difference[];
}

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string }; configMapKeyRef?: { name: string; key: string } };
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  envFrom?: { configMapRef?: { name: string } }[];
  ports?: { containerPort: number; name?: string }[];
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  securityContext?: { runAsUser?: number };
}
interface StatefulSet extends Manifest {
  spec: { replicas: number; serviceName: string; template: { spec: PodSpec } };
}

const refuse = (what: string) =>
  new RefusedError(`the process baseline cannot mirror this profile: ${what}. Nothing was started.`);

function byComponent<T extends Manifest>(manifests: readonly Manifest[], kind: string, component: string): T {
  const found = manifests.find((m) => m.kind === kind && m.metadata.labels?.[LabelKeys.component] === component);
  if (!found) throw refuse(`dist/ holds no ${kind} of the ${component}`);
  return found as T;
}

function containerOf(set: StatefulSet, name: string): Container {
  const c =
    set.spec.template.spec.containers.find((x) => x.name === name) ??
    (name === '*' ? set.spec.template.spec.containers[0] : undefined);
  if (!c) throw refuse(`StatefulSet ${set.metadata.name} has no container ${name}`);
  return c;
}

/** The container's environment as the kubelet would build it: config maps first, then its own entries. */
function containerEnv(
  c: Container,
  manifests: readonly Manifest[],
  field: (path: string, name: string) => string,
): Record<string, string> {
  const configMap = (name: string) => {
    const cm = manifests.find(
      (m): m is ManifestOf<'ConfigMap'> => isManifestOf(m, 'ConfigMap') && m.metadata.name === name,
    );
    if (!cm) throw refuse(`container ${c.name} reads ConfigMap ${name}, which dist/ does not hold`);
    return cm.data ?? {};
  };
  const env: Record<string, string> = {};
  for (const from of c.envFrom ?? []) {
    if (!from.configMapRef)
      throw refuse(
        `container ${c.name} takes its environment from something other than a ConfigMap ` +
          `(${JSON.stringify(from)})`,
      );
    Object.assign(env, configMap(from.configMapRef.name));
  }
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef) env[e.name] = field(e.valueFrom.fieldRef.fieldPath, e.name);
    else if (e.valueFrom?.configMapKeyRef)
      env[e.name] = configMap(e.valueFrom.configMapKeyRef.name)[e.valueFrom.configMapKeyRef.key] ?? '';
    else throw refuse(`container ${c.name}'s ${e.name} comes from ${JSON.stringify(e.valueFrom)}`);
  }
  return env;
}

/** Kubernetes' $(VAR) expansion in command and args, from the container's environment. */
const expand = (text: string, env: Readonly<Record<string, string>>) =>
  text.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (all, name: string) => env[name] ?? all);

/**
 * Rewrites every `<pod>[.anything]:<container port>` and `0.0.0.0:<port>`/`:<port>` (the pod's
 * own) to 127.0.0.1 and the process's port: a pod's address becomes where its process listens.
 */
function localizer(addresses: ReadonlyMap<string, ReadonlyMap<number, number>>, self?: string) {
  return (text: string): string =>
    text.replace(/(^|[/=,@"\s])([a-z0-9.-]*):(\d+)\b/g, (all, lead: string, host: string, port: string) => {
      const pod = host === '' || host === '0.0.0.0' ? self : host.split('.')[0];
      const ports = pod !== undefined ? addresses.get(pod) : undefined;
      if (!ports) return all;
      const local = ports.get(Number(port));
      if (local === undefined)
        throw refuse(`${host}:${port} names a port of ${pod} that its container does not declare`);
      return `${lead}127.0.0.1:${local}`;
    });
}

/** A path under the container's data volume, moved under the process's own folder. */
function relocate(path: string, mountPath: string, dataDir: string): string {
  return path === mountPath || path.startsWith(`${mountPath}/`)
    ? posix.join(dataDir, posix.relative(mountPath, path))
    : path;
}

const dataMount = (c: Container) => {
  const m = (c.volumeMounts ?? []).find((v) => v.name === 'data');
  if (!m) throw refuse(`container ${c.name} mounts no volume named data`);
  return m.mountPath;
};

/** What a Layout must provide: etcd's members with their container ports, and the number of Sand Store nodes. */
export function layoutNeeds(manifests: readonly Manifest[]): {
  readonly etcdMembers: number;
  readonly etcdContainerPorts: readonly number[];
  readonly nodes: number;
} {
  const etcdSet = byComponent<StatefulSet>(manifests, 'StatefulSet', Component.controlPlane);
  const nodeSet = byComponent<StatefulSet>(manifests, 'StatefulSet', Component.dataPlane);
  const ports = (containerOf(etcdSet, '*').ports ?? []).map((p) => p.containerPort);
  return { etcdMembers: etcdSet.spec.replicas, etcdContainerPorts: ports, nodes: nodeSet.spec.replicas };
}

/**
 * A layout of numbered ports (etcd member m's i-th port at etcdBase + 10m + i, node n's at nodeBase
 * + n): for checks and tests.
 */
export function numberedLayout(
  manifests: readonly Manifest[],
  at: { dataRoot: string; etcdBase: number; nodeBase: number },
): Layout {
  const needs = layoutNeeds(manifests);
  return {
    dataRoot: at.dataRoot,
    etcdPorts: Array.from(
      { length: needs.etcdMembers },
      (_, m) => new Map(needs.etcdContainerPorts.map((p, i) => [p, at.etcdBase + m * 10 + i])),
    ),
    nodePorts: Array.from({ length: needs.nodes }, (_, i) => at.nodeBase + i),
  };
}

/** The settings of every process, and how they differ from the pods'. */
export function baselineSettings(manifests: readonly Manifest[], layout: Layout): BaselineSettings {
  const etcdSet = byComponent<StatefulSet>(manifests, 'StatefulSet', Component.controlPlane);
  const nodeSet = byComponent<StatefulSet>(manifests, 'StatefulSet', Component.dataPlane);
  const etcdC = containerOf(etcdSet, '*');
  const nodeC = containerOf(nodeSet, SandstoreContainers.node);
  const podNames = (set: StatefulSet) =>
    Array.from({ length: set.spec.replicas }, (_, i) => `${set.metadata.name}-${i}`);
  const etcdPods = podNames(etcdSet);
  const nodePods = podNames(nodeSet);
  if (layout.etcdPorts.length !== etcdPods.length || layout.nodePorts.length !== nodePods.length)
    throw new Error('layout does not match the replicas');
  const grpcPort = nodeC.ports?.find((p) => p.name === 'grpc')?.containerPort ?? 8080;
  const addresses = new Map<string, ReadonlyMap<number, number>>([
    ...etcdPods.map((p, i) => [p, layout.etcdPorts[i]] as const),
    ...nodePods.map((p, i) => [p, new Map([[grpcPort, layout.nodePorts[i]]])] as const),
  ]);
  const etcd = etcdPods.map((pod, i) =>
    etcdMember(etcdC, manifests, pod, posix.join(layout.dataRoot, pod), localizer(addresses, pod), layout.etcdPorts[i]),
  );
  const nodes = nodePods.map((pod) =>
    sandstoreNode(nodeC, manifests, pod, posix.join(layout.dataRoot, pod), localizer(addresses, pod), layout.nodePorts),
  );
  const members = membership(manifests, localizer(addresses));
  const differences = describeDifferences({ etcdC, nodeC, manifests, nodeSet, etcd, nodes, members, nodePods });
  return {
    sandstore: { image: nodeC.image, command: nodeC.command },
    etcdImage: { image: etcdC.image, command: etcdC.command },
    etcd,
    nodes,
    members,
    differences,
  };
}

function etcdMember(
  c: Container,
  manifests: readonly Manifest[],
  pod: string,
  dataDir: string,
  local: (s: string) => string,
  ports: ReadonlyMap<number, number>,
): ProcessSettings {
  const env = containerEnv(c, manifests, (path, name) => fieldValue(path, name, pod));
  const mount = dataMount(c);
  const args = [...(c.command ?? []).slice(1), ...(c.args ?? [])]
    .map((a) => local(expand(a, env)))
    .map((a) =>
      a.replace(/^(--[a-z-]+=)(\/.*)$/, (_all, flag: string, path: string) => flag + relocate(path, mount, dataDir)),
    );
  const client = c.ports?.find((p) => p.name === 'client')?.containerPort ?? 2379;
  return { name: pod, args, env, dataDir, address: `127.0.0.1:${ports.get(client)}` };
}

/**
 * What the downward API gives a pod, as a process here has it: the pod's name, and this machine's
 * loopback for its node's IP.
 */
function fieldValue(path: string, variable: string, pod: string): string {
  if (path === 'metadata.name') return pod;
  if (path === 'status.hostIP' || path === 'status.podIP') return '127.0.0.1';
  throw refuse(`${variable} comes from the pod's ${path}, which a process here has no value for`);
}

function sandstoreNode(
  c: Container,
  manifests: readonly Manifest[],
  pod: string,
  dataDir: string,
  local: (s: string) => string,
  ports: readonly number[],
): ProcessSettings {
  const env = containerEnv(c, manifests, (path, name) => fieldValue(path, name, pod));
  const mount = dataMount(c);
  const ordinal = Number(/(\d+)$/.exec(pod)?.[1]);
  const rewritten: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) rewritten[name] = local(relocate(value, mount, dataDir));
  rewritten.DATA_DIR = relocate(env.DATA_DIR ?? mount, mount, dataDir);
  // Sand Store listens on every interface of its pod; here on loopback, at the node's own port.
  rewritten.LISTEN_ADDR = `127.0.0.1:${ports[ordinal]}`;
  // The leader is advertised at host:(base + ordinal): here every node is at 127.0.0.1, base + ordinal.
  if (env.EXTERNAL_BASE_PORT !== undefined) rewritten.EXTERNAL_BASE_PORT = String(ports[0]);
  if (env.ADVERTISE_HOST !== undefined) rewritten.ADVERTISE_HOST = '127.0.0.1';
  const args = [...(c.command ?? []).slice(1), ...(c.args ?? [])].map((a) => local(expand(a, rewritten)));
  return { name: pod, args, env: rewritten, dataDir, address: rewritten.LISTEN_ADDR };
}

/** The keys and values the membership Job's transaction puts, their addresses made local. */
function membership(manifests: readonly Manifest[], local: (s: string) => string): { key: string; value: string }[] {
  const job = byComponent<Manifest & { spec: { template: { metadata?: { annotations?: Record<string, string> } } } }>(
    manifests,
    'Job',
    Component.membershipBootstrap,
  );
  const txn = job.spec.template.metadata?.annotations?.[MEMBERSHIP_TXN_ANNOTATION];
  const puts = txn ? membershipOfTxn(txn) : [];
  if (puts.length === 0)
    throw refuse(`the membership Job ${job.metadata.name} writes no key (no ${MEMBERSHIP_TXN_ANNOTATION} annotation)`);
  return puts.map((m) => ({ key: m.key, value: local(m.value) }));
}

const distinct = (values: readonly (string | undefined)[]) => [...new Set(values)].join(', ');

interface DifferenceInput {
  readonly etcdC: Container;
  readonly nodeC: Container;
  readonly manifests: readonly Manifest[];
  readonly nodeSet: StatefulSet;
  readonly etcd: readonly ProcessSettings[];
  readonly nodes: readonly ProcessSettings[];
  readonly members: readonly { key: string; value: string }[];
  readonly nodePods: readonly string[];
}

/**
 * Every setting whose value differs from the pods', named with both values; then what is not a
 * setting but differs all the same.
 */
function describeDifferences(d: DifferenceInput): Difference[] {
  const podEnv = containerEnv(d.nodeC, d.manifests, (path) => `(${path})`);
  const first = d.nodes[0];
  const changed = Object.keys(first?.env ?? {}).filter((k) => podEnv[k] !== first?.env[k]);
  const why: Record<string, string> = {
    NODE_ID: "the pod's name (downward API), the same names",
    DATA_DIR: "a folder of this machine instead of the pod's claim",
    LISTEN_ADDR: 'every process shares loopback: each listens on a port of its own',
    ETCD_ENDPOINTS: "etcd's member listens on 127.0.0.1 at a port of its own",
    HOST_IP: "the node's IP (downward API): here, this machine's loopback",
    EXTERNAL_BASE_PORT:
      "the leader is advertised at host:(base + ordinal): here the nodes' own consecutive " +
      'ports instead of node ports',
    ADVERTISE_HOST: 'clients reach the nodes at 127.0.0.1',
  };
  const envDiffs = changed.map((k) => ({
    setting: `Sand Store env ${k}`,
    kubernetes: podEnv[k] ?? '(unset)',
    processes: distinct(d.nodes.map((n) => n.env[k])),
    why: why[k] ?? 'an address or path of the pod',
  }));
  const etcdArgs = [...(d.etcdC.command ?? []).slice(1), ...(d.etcdC.args ?? [])];
  const argDiffs = etcdArgs.flatMap((a, i) =>
    d.etcd[0] && d.etcd[0].args[i] !== a
      ? [
          {
            setting: `etcd ${a.split('=')[0]}`,
            kubernetes: a.slice(a.indexOf('=') + 1),
            processes: distinct(d.etcd.map((e) => e.args[i]?.slice(a.indexOf('=') + 1))),
            why:
              a.includes('$(') && !/:\d/.test(a)
                ? "the pod's name, expanded as the kubelet would"
                : "etcd's URLs on 127.0.0.1 at ports of its own; its data in a folder of this machine",
          },
        ]
      : [],
  );
  const runAs = d.nodeSet.spec.template.spec.securityContext?.runAsUser;
  const measured = 'what the baseline measures the cost of';
  const row = (setting: string, kubernetes: string, processes: string, why: string): Difference => ({
    setting,
    kubernetes,
    processes,
    why,
  });
  return [
    ...envDiffs,
    row(
      'membership addresses (etcd keys)',
      "the pods' DNS names at the gRPC port",
      d.members.map((m) => m.value).join(' '),
      'the nodes listen on 127.0.0.1',
    ),
    ...argDiffs,
    row(
      'network',
      "a network namespace per pod (veth, bridge); clients through node ports (kube-proxy's NAT)",
      'loopback, no NAT',
      measured,
    ),
    row(
      'metrics :2112',
      'each pod serves its own',
      'only the first node to bind it serves metrics (Sand Store ignores the error)',
      "fixed in Sand Store's code; the nodes share one network namespace",
    ),
    row(
      'resources',
      'cgroup requests and limits of the StatefulSet',
      'none: the processes share the machine freely',
      measured,
    ),
    row(
      'user and confinement',
      `uid ${runAs ?? '(image default)'}, no capabilities, read-only root file system, ` + `seccomp RuntimeDefault`,
      `uid ${process.getuid?.() ?? 'unknown'}, as the runner`,
      'a plain process of whoever runs the baseline',
    ),
    row(
      'sidecars, init containers and probes',
      'events sidecar (tail -F of the log), wait-for-membership, startup/readiness/liveness probes, ' +
        "the leader handover (a container before Sand Store's holds a peer's first connection while Sand Store starts)",
      'none: membership written before the nodes start; the logs read from their files',
      'they serve Kubernetes, not the measurement',
    ),
  ];
}
