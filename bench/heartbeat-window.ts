/**
 * Why a roll costs elections (issue 22 part 2; the numbers of docs/performance.md's "The roll's
 * election window"): rolls the profile's data plane on the real node `--runs` times per variant,
 * the variants interleaved (ABAB, so a loaded machine weighs on all alike), and prints per variant:
 *
 * - the window of each replaced pod: its Sand Store process's start (`process_start_time_seconds`
 *   in its metrics, 10 ms resolution, where the pod status' `startedAt` has whole seconds) to the
 *   first AppendEntries it handled (its metrics, read every 50 ms), or, when it never heard the old
 *   leader, to the moment it leads itself (it called an election and won);
 * - elections per roll: the Raft terms the roll went through (newest term in the events after the
 *   roll minus before: every candidacy takes a term) and the leader changes ("Became Leader" lines).
 *
 * A roll is a change of the StatefulSet's pod template (an annotation, as `kubectl rollout restart`
 * does, plus the variant's own change), rolled by the StatefulSet controller in ordinal order.
 * Not a test and not a benchmark row: a measuring tool, run by hand against a running local cluster
 * with the profile deployed.
 *
 *   node scripts/run-ts.mjs bench/heartbeat-window.ts --context=sandstore-local [--runs=4]
 *       [--variants=ordinal,own-service] [--profile=local-node]
 */
import { Command, Option } from 'commander';
import { KubeConfig } from '@kubernetes/client-node';
import { performance } from 'node:perf_hooks';
import { max, median } from 'simple-statistics';
import { isKind, Kube, type StatefulSet } from '../lib/runner/kube.js';
import { isPodReady } from '../lib/runner/pods.js';
import { roleChanges, type RoleChange } from '../lib/runner/leader.js';
import { objectsOf, waitFor } from '../lib/runner/watch.js';
import { restrictedContainerSecurityContext } from '../lib/constructs/security.js';
import { profileSelector, SandstoreContainers } from '../lib/labels.js';
import { loadProfile } from '../lib/profiles.js';

type Container = NonNullable<NonNullable<StatefulSet['spec']>['template']['spec']>['initContainers'] extends
  (infer C)[] | undefined
  ? C
  : never;

/** A variant: what it adds to the pod template (init containers after the profile's own). */
interface Variant {
  readonly what: string;
  readonly initContainers: (namespace: string) => Container[];
  /** What it changes in Sand Store's own container; unchanged when absent. */
  readonly sandstore?: (container: Container) => Container;
  /** What it changes in the events sidecar; unchanged when absent. */
  readonly events?: (container: Container) => Container;
  /** Containers it leaves out, by name. */
  readonly without?: readonly string[];
}

const ROLL_ANNOTATION = 'bench.sandstore.io/roll';
const BENCH_INIT_PREFIX = 'bench-';

/**
 * Holds Sand Store back until its own per-member Service (the address its peers use) leads to this
 * pod: listens on the gRPC port with busybox's nc and dials the Service until a connection is
 * accepted, so the endpoints controller and kube-proxy have moved the Service to the pod.
 */
const ownService = (namespace: string): Container[] => [
  {
    name: `${BENCH_INIT_PREFIX}own-service`,
    image: 'localhost:5000/sandstore-node:local-node-latest',
    imagePullPolicy: 'Always',
    command: [
      'sh',
      '-c',
      [
        'nc -ll -p 8080 -e true & listener=$!',
        `until nc -w 1 "$NODE_ID.${namespace}.svc" 8080 </dev/null; do usleep 50000; done`,
        'kill $listener',
      ].join('\n'),
    ],
    env: [{ name: 'NODE_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
    resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { cpu: '100m', memory: '32Mi' } },
    securityContext: restrictedContainerSecurityContext(),
  },
];

/**
 * Resets the leader's reconnect backoff before Sand Store starts: answers the first connection on
 * the gRPC port with an HTTP/2 SETTINGS frame (what a gRPC client waits for to call a connection
 * ready), holds it 0.2 s, closes it and stops listening, then waits `lateSeconds` before it exits
 * (the leader's redial is refused, so its next try comes ~1 s after the close: Sand Store should be
 * listening by then and its election timer not yet run out); 10 s without a connection and it
 * exits anyway (no leader to wait for).
 */
const holdLeader = (lateSeconds: number) => (): Container[] => [
  {
    ...ownService('')[0],
    name: `${BENCH_INIT_PREFIX}hold-leader`,
    command: [
      'sh',
      '-c',
      `timeout 10 nc -l -p 8080 -e sh -c 'printf "\\000\\000\\000\\004\\000\\000\\000\\000\\000"; sleep 0.2' || true
sleep ${lateSeconds}`,
    ],
  },
];

/**
 * The pods without SandstoreCluster's leader handover (leader-handover.ts, on in every profile):
 * no handover container, so Sand Store starts at once, and the events sidecar gone at SIGTERM, so
 * a stopping pod's address goes with its containers.
 */
const eventsWithoutLinger = (c: Container): Container => ({
  ...c,
  command: ['sh', '-c', (c.command ?? [])[2].replace(/trap "sleep \d+; exit 0"/, 'trap "exit 0"')],
});

const VARIANTS: Readonly<Record<string, Variant>> = {
  ordinal: { what: "the profile's pods as synthesized (with the leader handover)", initContainers: () => [] },
  'no-handover': {
    what: 'the pods without the leader handover (neither the hold nor the linger)',
    initContainers: () => [],
    without: [SandstoreContainers.handover],
    events: eventsWithoutLinger,
  },
  'own-service': { what: 'an init step waits until its own Service leads to it', initContainers: ownService },
  'hold-leader': { what: "an init step takes the leader's first connection", initContainers: holdLeader(0) },
  'hold-leader-late': {
    what: 'the same, Sand Store started 0.4 s after the close',
    initContainers: holdLeader(0.4),
  },
};

const program = new Command('heartbeat-window')
  .addOption(new Option('--context <name>', 'the local cluster').default('sandstore-local'))
  .addOption(new Option('--profile <name>', 'a profile deployed on the real node').default('local-node'))
  .addOption(new Option('--runs <n>', 'rolls per variant').default(4).argParser(Number))
  .addOption(
    new Option('--variants <list>', `comma-separated, of: ${Object.keys(VARIANTS).join(', ')}`).default(
      'ordinal,own-service',
    ),
  );
program.parse();
const opts = program.opts<{ context: string; profile: string; runs: number; variants: string }>();

/** How one replaced pod first met a leader. */
interface Window {
  readonly pod: string;
  /** Seconds from its process's start to the first AppendEntries it handled, or to leading itself. */
  readonly seconds: number;
  readonly how: 'heard a leader' | 'won an election' | 'neither within 20 s';
}

interface Roll {
  readonly windows: Window[];
  readonly terms: number;
  readonly leaderChanges: number;
  readonly seconds: number;
}

/** One counter of a Prometheus scrape: the `_count` of the histogram series with this operation. */
function operationCount(scrape: string, metric: string, operation: string): number {
  const re = new RegExp(`^${metric}_count\\{[^}]*operation="${operation}"[^}]*\\} (\\S+)$`, 'm');
  return Number(re.exec(scrape)?.[1] ?? 0);
}

async function scrape(ip: string): Promise<string | undefined> {
  try {
    const res = await fetch(`http://${ip}:2112/metrics`, { signal: AbortSignal.timeout(500) });
    return res.ok ? await res.text() : undefined;
  } catch {
    return undefined;
  }
}

/** Reads a new pod's metrics every 50 ms until it handled an AppendEntries or broadcast its own. */
async function windowOf(pod: string, ip: string): Promise<Window> {
  const deadline = performance.now() + 20_000;
  let started: number | undefined;
  while (performance.now() < deadline) {
    const text = await scrape(ip);
    const now = Date.now() / 1000;
    if (text) {
      started ??= Number(/^process_start_time_seconds (\S+)$/m.exec(text)?.[1]);
      if (operationCount(text, 'sandstore_raft_replicator_latency_seconds', 'handle_append_entries') > 0)
        return { pod, seconds: now - started, how: 'heard a leader' };
      if (operationCount(text, 'sandstore_raft_replicator_latency_seconds', 'broadcast_append_entries') > 0)
        return { pod, seconds: now - started, how: 'won an election' };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { pod, seconds: NaN, how: 'neither within 20 s' };
}

async function roleChangesNow(kube: Kube, namespace: string, pods: readonly string[]): Promise<RoleChange[]> {
  const logs = await Promise.all(
    pods.map((p) =>
      kube.request<string>('GET', `/api/v1/namespaces/${namespace}/pods/${p}/log`, {
        query: { container: 'events' },
        raw: true,
      }),
    ),
  );
  return pods.flatMap((p, i) => roleChanges(p, logs[i]));
}

const newestTerm = (changes: readonly RoleChange[]) => Math.max(0, ...changes.map((c) => c.term));

interface Template {
  readonly initContainers: Container[];
  readonly containers: Container[];
}

const templateOf = (variant: Variant, namespace: string, base: Template): Template => ({
  initContainers: [...base.initContainers, ...variant.initContainers(namespace)],
  containers: base.containers
    .filter((c) => !variant.without?.includes(c.name))
    .map((c) => {
      if (c.name === 'sandstore' && variant.sandstore) return variant.sandstore(c);
      if (c.name === 'events' && variant.events) return variant.events(c);
      return c;
    }),
});

async function oneRoll(kube: Kube, namespace: string, base: Template, variant: Variant, id: string): Promise<Roll> {
  const sts = await kube.get('StatefulSet', 'sandstore', namespace);
  const replicas = sts.spec?.replicas ?? 0;
  const names = Array.from({ length: replicas }, (_, i) => `sandstore-${i}`);
  const before = newestTerm(await roleChangesNow(kube, namespace, names));
  const selector = profileSelector(opts.profile);
  const { items: oldPods } = await kube.list('Pod', { namespace, labelSelector: selector });
  const oldUids = new Set(oldPods.map((p) => p.metadata.uid ?? ''));
  const probes = new Map<string, Promise<Window>>();
  const t0 = performance.now();
  await kube.mergePatch('StatefulSet', 'sandstore', namespace, {
    spec: {
      template: {
        metadata: { annotations: { [ROLL_ANNOTATION]: id } },
        spec: templateOf(variant, namespace, base),
      },
    },
  });
  await waitFor(
    kube,
    [
      { key: 'pods', kind: 'Pod', namespace, labelSelector: selector },
      { key: 'sts', kind: 'StatefulSet', namespace },
    ],
    {
      what: `roll ${id}`,
      timeoutSeconds: 300,
      onChange: (_key, _type, obj) => {
        if (!isKind(obj, 'Pod')) return;
        const pod = obj;
        const ip = pod.status?.podIP;
        if (!ip || oldUids.has(pod.metadata.uid ?? '') || probes.has(pod.metadata.name)) return;
        if (pod.metadata.labels?.['app.kubernetes.io/component'] !== 'data-plane') return;
        probes.set(pod.metadata.name, windowOf(pod.metadata.name, ip));
      },
      check: (s) => {
        const set = objectsOf(s, 'sts', 'StatefulSet').find((o) => o.metadata.name === 'sandstore');
        const st = set?.status;
        const done =
          set && (st?.observedGeneration ?? 0) >= (set.metadata.generation ?? 0) && st?.updatedReplicas === replicas;
        const ready = objectsOf(s, 'pods', 'Pod').filter((p) => !oldUids.has(p.metadata.uid ?? '') && isPodReady(p));
        return done && ready.length === replicas && probes.size === replicas ? true : undefined;
      },
    },
  );
  const windows = await Promise.all(probes.values());
  await printHandovers(kube, namespace, names);
  const seconds = (performance.now() - t0) / 1000;
  const after = await roleChangesNow(kube, namespace, names);
  const leaderChanges = new Set(after.filter((c) => c.role === 'Leader' && c.term > before).map((c) => c.term)).size;
  return { windows, terms: newestTerm(after) - before, leaderChanges, seconds };
}

/** The handover's own lines from the new pods' Sand Store containers, for the record. */
async function printHandovers(kube: Kube, namespace: string, pods: readonly string[]): Promise<void> {
  for (const pod of pods) {
    const log = await kube.request<string>('GET', `/api/v1/namespaces/${namespace}/pods/${pod}/log`, {
      query: { container: 'sandstore' },
      raw: true,
    });
    const lines = log.split('\n').filter((l) => l.startsWith('leader handover:') || l.startsWith('nc:'));
    process.stderr.write(`  ${pod}: ${lines.join(' / ')}\n`);
  }
}

const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '–');

function report(name: string, rolls: readonly Roll[], baseline?: readonly Roll[]): void {
  const heard = rolls.flatMap((r) => r.windows).filter((w) => w.how === 'heard a leader');
  const all = rolls.flatMap((r) => r.windows);
  const terms = rolls.map((r) => r.terms);
  const line = [
    name.padEnd(14),
    `heard a leader first ${heard.length}/${all.length}`,
    `window median ${fmt(heard.length ? median(heard.map((w) => w.seconds)) : NaN)} s max ${fmt(heard.length ? max(heard.map((w) => w.seconds)) : NaN)} s`,
    `terms/roll median ${fmt(median(terms))} max ${max(terms)}`,
    `leader changes/roll median ${fmt(median(rolls.map((r) => r.leaderChanges)))}`,
    `roll median ${fmt(median(rolls.map((r) => r.seconds)))} s`,
  ];
  if (baseline && baseline !== rolls)
    line.push(
      `roll time ratio to ${opts.variants.split(',')[0]} ${fmt(median(rolls.map((r) => r.seconds)) / median(baseline.map((r) => r.seconds)))}`,
    );
  console.log(line.join(' | '));
  for (const r of rolls)
    console.log(
      `  roll ${fmt(r.seconds)} s, ${r.terms} term(s), ${r.leaderChanges} leader change(s): ` +
        r.windows.map((w) => `${w.pod} ${w.how} after ${fmt(w.seconds)} s`).join('; '),
    );
}

function fail(message: string): never {
  console.error(`heartbeat-window: ${message}`);
  process.exit(2);
}

async function main(): Promise<void> {
  const names = opts.variants.split(',');
  const unknown = names.filter((n) => !VARIANTS[n]);
  if (unknown.length > 0) fail(`unknown variant(s) ${unknown.join(', ')}; known: ${Object.keys(VARIANTS).join(', ')}`);
  if (!Number.isInteger(opts.runs) || opts.runs < 1) fail(`--runs must be a positive integer, not ${opts.runs}`);
  const profile = await loadProfile(opts.profile);
  const kc = new KubeConfig();
  kc.loadFromDefault();
  if (!kc.getContextObject(opts.context)) fail(`no context '${opts.context}' in the kubeconfig`);
  kc.setCurrentContext(opts.context);
  const kube = new Kube(kc);
  const sts = await kube.get('StatefulSet', 'sandstore', profile.namespace);
  const base: Template = {
    initContainers: (sts.spec?.template.spec?.initContainers ?? []).filter(
      (c) => !c.name.startsWith(BENCH_INIT_PREFIX),
    ),
    containers: sts.spec?.template.spec?.containers ?? [],
  };
  if (!sts.spec?.template.spec?.containers.some((c) => c.name === SandstoreContainers.handover))
    fail("Sand Store's container is not as synthesized (a variant's?): deploy the profile again first");
  const rolls = new Map<string, Roll[]>(names.map((n) => [n, []]));
  const stamp = Date.now().toString(36);
  for (let i = 0; i < opts.runs; i++)
    for (const name of names) {
      const roll = await oneRoll(kube, profile.namespace, base, VARIANTS[name], `${stamp}-${name}-${i}`);
      rolls.get(name)!.push(roll);
      process.stderr.write(`roll ${i + 1}/${opts.runs} ${name}: ${fmt(roll.seconds)} s, ${roll.terms} term(s)\n`);
    }
  // Leave the template as the profile synthesized it (the annotation only marks the last roll).
  await kube.mergePatch('StatefulSet', 'sandstore', profile.namespace, {
    spec: { template: { spec: base } },
  });
  const first = rolls.get(names[0]);
  for (const [name, of] of rolls) report(name, of, first);
}

main().catch((err: unknown) => {
  console.error(`heartbeat-window: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
