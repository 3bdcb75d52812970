/**
 * Where a deploy's time goes, on the cluster (the numbers of docs/performance.md's deploy timeline):
 * runs `deploy` `--runs` times and, while each runs, watches the profile's pods, claims and Job and
 * local-path's helper pods, noting when each change is first seen. Prints, per run and as medians,
 * the moment of each mark (seconds since the command was started) and each phase's length.
 * Not a test and not a benchmark row: a measuring tool, run by hand against a running local cluster.
 *
 *   node scripts/run-ts.mjs bench/deploy-timeline.ts --context=sandstore-local [--profile=local-node] [--runs=5]
 *   ... --from-empty   destroy (untimed) before each deploy, so the deploy finds nothing to clear
 *   ... --before=<dir>  also time the project in <dir> (another checkout, say the commit before a
 *                       change), alternating with this one run by run: the before and after of one run
 */
import { Command, Option } from 'commander';
import { KubeConfig } from '@kubernetes/client-node';
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { median } from 'simple-statistics';
import { isKind, Kube, type KubeObject, type Pod } from '../lib/runner/kube.js';
import { isPodReady } from '../lib/runner/pods.js';
import { waitFor } from '../lib/runner/watch.js';
import { LabelKeys, profileSelector } from '../lib/labels.js';
import { loadProfile } from '../lib/profiles.js';
import { projectRoot } from '../lib/paths.js';

const program = new Command('deploy-timeline')
  .addOption(new Option('--context <name>', 'the local cluster').default('sandstore-local'))
  .addOption(new Option('--profile <name>', 'profile to deploy').default('local-node'))
  .addOption(new Option('--runs <n>', 'deploys to time').default(5).argParser(Number))
  .addOption(new Option('--from-empty', 'destroy (untimed) before each deploy'))
  .addOption(new Option('--before <dir>', "another checkout's deploy to alternate with this one"));
program.parse();
const opts = program.opts<{ context: string; profile: string; runs: number; fromEmpty?: boolean; before?: string }>();

/** Mark name → seconds since the command was spawned (the first time the change was seen). */
type Marks = Map<string, number>;

/** The runner's own progress lines that end a phase, and the marks they stand for. */
const RUNNER_LINES: readonly [RegExp, string][] = [
  [/pre-flight: /, 'runner: pre-flight done'],
  [/destroy: (nothing of profile|profile .* is gone)/, 'runner: clean slate'],
  [/control-plane: applied/, 'runner: etcd applied'],
  [/etcd Ready/, 'runner: etcd Ready'],
  [/bootstrap: applied/, 'runner: Job applied'],
  [/membership written/, 'runner: Job Complete'],
  [/data-plane: applied/, 'runner: data plane applied'],
  [/Sand Store pods Ready/, 'runner: data plane Ready'],
  [/volumes are wiped/, "runner: last run's volumes wiped"],
  [/^done: /, 'runner: done'],
];

const componentOf = (p: KubeObject) => p.metadata.labels?.[LabelKeys.component] ?? 'other';

/** The marks one observed object adds (the first time each is seen). */
function marksOf(obj: KubeObject, type: string): [string, boolean][] {
  const name = obj.metadata.name;
  if (isKind(obj, 'Pod')) {
    if (obj.metadata.namespace === 'local-path-storage')
      return [
        [`local-path helper ${name} created`, type !== 'DELETED'],
        [`local-path helper ${name} gone`, type === 'DELETED'],
      ];
    if (type === 'DELETED' || obj.metadata.deletionTimestamp) return [[`pod ${name} deleting`, true]];
    return podMarks(obj);
  }
  if (isKind(obj, 'PersistentVolumeClaim'))
    return [
      [`claim ${name} created`, type !== 'DELETED' && !obj.metadata.deletionTimestamp],
      [`claim ${name} Bound`, obj.status?.phase === 'Bound' && !obj.metadata.deletionTimestamp],
    ];
  if (isKind(obj, 'Job'))
    return [
      [`Job created`, type !== 'DELETED' && !obj.metadata.deletionTimestamp],
      ['Job Complete', (obj.status?.conditions ?? []).some((c) => c.type === 'Complete' && c.status === 'True')],
    ];
  return [];
}

function podMarks(pod: Pod): [string, boolean][] {
  const p = `${componentOf(pod)} ${pod.metadata.name}`;
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  return [
    [`${p} created`, true],
    [`${p} scheduled`, Boolean(pod.spec?.nodeName)],
    ...statuses.flatMap((c): [string, boolean][] => [
      [`${p} ${c.name} running`, Boolean(c.state?.running) || Boolean(c.state?.terminated)],
      [`${p} ${c.name} exited`, Boolean(c.state?.terminated)],
    ]),
    [`${p} Ready`, isPodReady(pod)],
  ];
}

async function oneRun(kube: Kube, namespace: string, project: string): Promise<Marks> {
  const marks: Marks = new Map();
  const stop = new AbortController();
  let t0 = 0;
  const note = (mark: string) => {
    if (!marks.has(mark)) marks.set(mark, (performance.now() - t0) / 1000);
  };
  const watching = waitFor(
    kube,
    [
      { key: 'pods', kind: 'Pod', namespace, labelSelector: profileSelector(opts.profile) },
      { key: 'claims', kind: 'PersistentVolumeClaim', namespace, labelSelector: profileSelector(opts.profile) },
      { key: 'jobs', kind: 'Job', namespace, labelSelector: profileSelector(opts.profile) },
      { key: 'helpers', kind: 'Pod', namespace: 'local-path-storage' },
    ],
    {
      what: 'the deploy',
      timeoutSeconds: Infinity,
      signal: stop.signal,
      check: () => undefined,
      onChange: (_key, type, obj) => {
        if (t0 === 0) return;
        for (const [mark, seen] of marksOf(obj, type)) if (seen) note(mark);
      },
    },
  ).catch(() => undefined);
  // Let the watches list what is there before the command starts: changes from then on are the deploy's.
  await new Promise((r) => setTimeout(r, 1500));
  t0 = performance.now();
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(
      'node',
      ['scripts/run-ts.mjs', 'lib/runner/cli.ts', 'deploy', `--profile=${opts.profile}`, `--context=${opts.context}`],
      { cwd: project, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const onLine = (line: string) => {
      for (const [re, mark] of RUNNER_LINES) if (re.test(line.replace(/^\[\s*[\d.]+s\]\s*/, ''))) note(mark);
    };
    for (const stream of [child.stdout, child.stderr])
      stream.setEncoding('utf8').on('data', (d: string) => d.split('\n').forEach(onLine));
    child.on('exit', resolve);
  });
  note('command exited');
  await new Promise((r) => setTimeout(r, 300));
  stop.abort();
  await watching;
  if (code !== 0) throw new Error(`deploy exited ${code}`);
  return marks;
}

function destroy(project: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'node',
      ['scripts/run-ts.mjs', 'lib/runner/cli.ts', 'destroy', `--profile=${opts.profile}`, `--context=${opts.context}`],
      { cwd: project, stdio: 'ignore' },
    );
    child.on('exit', (c) => (c === 0 ? resolve() : reject(new Error(`destroy exited ${c}`))));
  });
}

/** Phase name → [start mark, end mark]. */
const PHASES: readonly [string, string, string][] = [
  ['start-up and pre-flight', 'start', 'runner: pre-flight done'],
  ['clean slate (destroy the last run)', 'runner: pre-flight done', 'runner: clean slate'],
  ['base objects, etcd applied', 'runner: clean slate', 'runner: etcd applied'],
  ['etcd: applied to Ready', 'runner: etcd applied', 'runner: etcd Ready'],
  ['membership Job: etcd Ready to Complete', 'runner: etcd Ready', 'runner: Job Complete'],
  ['data plane: Job Complete to Ready', 'runner: Job Complete', 'runner: data plane Ready'],
  ['node ports, exit', 'runner: data plane Ready', 'command exited'],
  ["last run's volumes wiped (alongside the above)", 'runner: clean slate', "runner: last run's volumes wiped"],
  ['total', 'start', 'command exited'],
];

const at = (m: Marks, k: string) => (k === 'start' ? 0 : (m.get(k) ?? NaN));
const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '–');

async function main(): Promise<void> {
  const profile = await loadProfile(opts.profile);
  const kc = new KubeConfig();
  kc.loadFromDefault();
  kc.setCurrentContext(opts.context);
  const kube = new Kube(kc);
  const projects = opts.before
    ? [['before', opts.before] as const, ['after', projectRoot()] as const]
    : [['', projectRoot()] as const];
  const runs = new Map<string, Marks[]>(projects.map(([label]) => [label, []]));
  for (let i = 0; i < opts.runs; i++)
    for (const [label, dir] of projects) {
      if (opts.fromEmpty) await destroy(dir);
      const marks = await oneRun(kube, profile.namespace, dir);
      runs.get(label)!.push(marks);
      process.stderr.write(`run ${i + 1}/${opts.runs} ${label}: ${fmt(at(marks, 'command exited'))} s\n`);
    }
  for (const [label, of] of runs) report(label, of);
}

function report(label: string, runs: readonly Marks[]): void {
  const names = [...new Set(runs.flatMap((m) => [...m.keys()]))];
  const med = (k: string) => median(runs.map((m) => at(m, k)).filter(Number.isFinite));
  console.log(`\n${label} marks (seconds since the command started; median of ${runs.length}; per run)`);
  for (const k of names.sort((a, b) => med(a) - med(b)))
    console.log(`${fmt(med(k)).padStart(7)}  ${k.padEnd(60)} ${runs.map((m) => fmt(at(m, k))).join(' ')}`);
  console.log(`\n${label} phases (seconds; median of ${runs.length}; per run)`);
  for (const [name, from, to] of PHASES) {
    const lengths = runs.map((m) => at(m, to) - at(m, from));
    console.log(`${fmt(median(lengths)).padStart(7)}  ${name.padEnd(60)} ${lengths.map(fmt).join(' ')}`);
  }
}

await main();
