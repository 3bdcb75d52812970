/**
 * `npm run bench`: our commands against what a user would otherwise run, side by side, in one run,
 * interleaved, as ratios of medians. Prints a Markdown table and writes bench/results.json.
 * Not a test: nothing here passes or fails; a missed target stays in the table, marked.
 *
 *   npm run bench                 everything (synth, then the cluster flows; starts the local cluster)
 *   npm run bench -- --only=synth synth rows only (no cluster needed)
 *   npm run bench -- --only=real-node  deploy, update and destroy on the real node (profile local-node)
 *   npm run bench -- --only=real-node-deploy  the real node's deploy row alone
 *   npm run bench -- --only=roll-under-load  the quorum-aware update against the ordinal roll under
 *                                             client load, 3 and 5 pods on the real node
 *   npm run bench -- --only=driver  the load driver's rows: its ceiling against a three-node Sand Store on
 *                                 loopback (started and stopped here), the local-node profile's rates
 *                                 when it is deployed, its memory, upstream's clients/bench beside it
 *   npm run bench -- --only=image  `npm run image` against the seed's docker build + docker push on a real
 *                                 dockerd and an htpasswd registry (scripts/docker-engine.sh; no cluster)
 *   npm run bench -- --runs=7     runs per side (default 5)
 *   npm run bench -- --edit-runs=1  runs per side of the image's after-a-change row (default 3; 0 skips it)
 */
import { Command, Option } from 'commander';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { cpus, homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { buildDriver } from '../lib/benchmark/driver-build.js';
import { DriverSummary, OPERATIONS, type Operation, type Phase } from '../lib/benchmark/record.js';
import { driverArgs } from '../lib/benchmark/run-driver.js';
import { profileSelector } from '../lib/labels.js';
import { defaultSandstoreSource, projectRoot } from '../lib/paths.js';
import { loadProfile } from '../lib/profiles.js';
import { expectExit, projectWithVariant, runCli } from '../test/e2e/harness.js';
import { describeRoll, kubectlRestart, outage, rollUnderLoad, type RollTarget } from '../test/e2e/roll-under-load.js';
import { startLoopbackSandstore } from './loopback-sandstore.js';

interface Entry {
  name: string;
  ours_s: number;
  baseline_s: number;
  ratio: number;
  target: number | null;
  notes: string;
}

const program = new Command('bench')
  .addOption(new Option('--runs <n>', 'runs per side').default(5).argParser(Number))
  .addOption(
    new Option('--only <group>', 'run one group').choices([
      'synth',
      'driver',
      'flows',
      'requests',
      'scale',
      'real-node',
      'real-node-deploy',
      'roll-under-load',
      'image',
    ]),
  )
  .addOption(new Option('--context <name>', 'local cluster context').default('sandstore-local'))
  .addOption(
    new Option('--edit-runs <n>', "runs per side of the image's after-a-change row (minutes each; 0 skips it)")
      .default(3)
      .argParser(Number),
  );
program.parse();
const opts = program.opts<{ runs: number; only?: string; context: string; editRuns: number }>();
const root = projectRoot();
const entries: Entry[] = [];
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Runs a command, returns seconds; throws with its output if it fails. */
function timed(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = {}, cwd = root): number {
  const t = performance.now();
  const r = spawnSync(cmd, args, {
    cwd,
    env: { ...process.env, NO_COLOR: '1', ...env },
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  const s = (performance.now() - t) / 1000;
  if (r.status !== 0)
    throw new Error(
      `${cmd} ${args.join(' ')} exited ${r.status}:\n${(r.stdout ?? '').slice(-2000)}\n${(r.stderr ?? '').slice(-2000)}`,
    );
  return s;
}

/**
 * Interleaves ours and the baseline `runs` times each and records the ratio of medians. With
 * `overheadIn` (the namespace the commands act on), also records each side's own overhead (see
 * overheadOf) as a row of its own.
 */
function compare(
  name: string,
  target: number | null,
  ours: () => number,
  baseline: () => number,
  notes: string,
  overheadIn?: string,
): Entry {
  const o: number[] = [];
  const b: number[] = [];
  const oo: number[] = [];
  const bo: number[] = [];
  for (let i = 0; i < opts.runs; i++) {
    o.push(ours());
    if (overheadIn) oo.push(overheadOf(o[i], lastWindow, OUR_AGENT, overheadIn));
    b.push(baseline());
    if (overheadIn) bo.push(overheadOf(b[i], lastWindow, 'kubectl', overheadIn));
    process.stderr.write(
      `  ${name}: run ${i + 1}/${opts.runs}: ours ${o[i].toFixed(2)}s${overheadIn ? ` (overhead ${oo[i].toFixed(2)}s)` : ''}, baseline ${b[i].toFixed(2)}s${overheadIn ? ` (overhead ${bo[i].toFixed(2)}s)` : ''}\n`,
    );
  }
  const e = {
    name,
    ours_s: round(median(o)),
    baseline_s: round(median(b)),
    ratio: round(median(o) / median(b)),
    target,
    notes,
  };
  entries.push(e);
  if (overheadIn) {
    const m = median(oo);
    entries.push({
      name: `overhead: ${name}`,
      ours_s: round(m),
      baseline_s: round(median(bo)),
      ratio: round(m / median(bo)),
      target: null,
      notes: `wall time minus the cluster's convergence (audit log: from the command's first request to the last write by the cluster's own components to the namespace or to volumes); absolute goal: ours < 0.5 s; ours ${m < 0.5 ? 'meets' : 'MISSES'} it`,
    });
  }
  return e;
}

/** The wall-clock window of the last command the bench ran (ours or kubectl's), for the audit log. */
let lastWindow: { from: number; to?: number } = { from: 0 };
const OUR_AGENT = 'sandstore-deploy';

interface AuditEntry {
  auditID: string;
  stage: string;
  verb: string;
  userAgent?: string;
  requestReceivedTimestamp: string;
  stageTimestamp: string;
  objectRef?: { resource?: string; namespace?: string };
}

/**
 * Audit entries received in [from, to]. The audit backend writes in batches: read once the log
 * holds an entry from after the window (the controllers make requests all the time), with a deadline.
 */
function auditEntries(from: number, to: number): AuditEntry[] {
  const file = auditLog();
  if (!existsSync(file))
    throw new Error(
      `no audit log at ${file}: restart the cluster with the current scripts (npm run cluster:down && npm run cluster:up)`,
    );
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && lastAuditTime() <= to) spawnSync('sleep', ['0.2']);
  const out: AuditEntry[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    const e = JSON.parse(line) as AuditEntry;
    const at = Date.parse(e.requestReceivedTimestamp);
    if (at >= from && at <= to) out.push(e);
  }
  return out;
}

const WRITES = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);

/**
 * A command's own overhead: its wall time minus the time the cluster took to converge, both read
 * from the API server's audit log, not from the command: convergence runs from the command's first
 * request to the last write, before the command's last request ended, by anyone other than the
 * command (controllers, scheduler, kwok or the kubelet, the provisioner, the namespace controller)
 * to an object in `namespace`, a volume or a namespace. What remains is start-up, preparation,
 * the reaction to the last change, and exit.
 */
function overheadOf(seconds: number, window: { from: number; to?: number }, agent: string, namespace: string): number {
  const entries = auditEntries(window.from, window.to ?? Date.now());
  const mine = entries.filter((e) => (e.userAgent ?? '').startsWith(agent));
  if (mine.length === 0) return seconds;
  const first = Math.min(...mine.map((e) => Date.parse(e.requestReceivedTimestamp)));
  const last = Math.max(...mine.map((e) => Date.parse(e.stageTimestamp)));
  const cluster = entries
    .filter((e) => !(e.userAgent ?? '').startsWith(agent) && WRITES.has(e.verb))
    .filter(
      (e) =>
        e.objectRef?.namespace === namespace ||
        e.objectRef?.resource === 'persistentvolumes' ||
        e.objectRef?.resource === 'namespaces',
    )
    .map((e) => Date.parse(e.stageTimestamp))
    .filter((t) => t >= first && t <= last);
  const converged = cluster.length > 0 ? Math.max(...cluster) : first;
  return Math.max(0, seconds - (converged - first) / 1000);
}
const round = (x: number) => Math.round(x * 1000) / 1000;

// ---------------------------------------------------------------------------------------------
function benchSynth(): void {
  const out = mkdtempSync(join(tmpdir(), 'bench-synth-'));
  const env = { CDK8S_OUTDIR: out };
  // Warm both: our bundle cache, and the OS file cache for ts-node's type-check.
  timed('node', ['scripts/run-ts.mjs', 'main.ts', '--profile=ssd-raft'], env);
  timed('node', ['--loader', 'ts-node/esm', 'main.ts', '--profile=ssd-raft'], env);
  const one = compare(
    'synth one profile (ssd-raft)',
    0.33,
    () => timed('node', ['scripts/run-ts.mjs', 'main.ts', '--profile=ssd-raft'], env),
    () => timed('node', ['--loader', 'ts-node/esm', 'main.ts', '--profile=ssd-raft'], env),
    "baseline: the same main.ts through type-checking ts-node (node --loader ts-node/esm, the cdk8s template's runner in ESM form); absolute goal: ours < 0.5 s",
  );
  one.notes += `; ours ${one.ours_s < 0.5 ? 'meets' : 'MISSES'} the 0.5 s goal`;
  compare(
    'synth all profiles',
    0.33,
    () => timed('node', ['scripts/run-ts.mjs', 'main.ts'], env),
    () => timed('node', ['--loader', 'ts-node/esm', 'main.ts'], env),
    'one process for every profile, both sides',
  );
  rmSync(out, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
/** kubectl: KUBECTL, else PATH, else the one the local cluster built. */
function kubectl(): string {
  if (process.env.KUBECTL) return process.env.KUBECTL;
  const onPath = spawnSync('sh', ['-c', 'command -v kubectl'], { encoding: 'utf8' }).stdout.trim();
  if (onPath) return onPath;
  const cache = process.env.SANDSTORE_CACHE_DIR ?? join(homedir(), '.cache', 'sandstore-deploy');
  const found: string[] = [];
  const walk = (d: string, depth: number) => {
    if (depth > 4 || !existsSync(d)) return;
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (e === 'kubectl' && statSync(p).isFile()) found.push(p);
      else if (statSync(p).isDirectory()) walk(p, depth + 1);
    }
  };
  walk(cache, 0);
  if (found.length === 0)
    throw new Error('no kubectl: set KUBECTL, put one on PATH, or run `npm run cluster:up` (it builds one)');
  return found.sort().at(-1)!;
}

/** The seed's Flows 2–4 with kubectl on the same cluster and the same dist/, as a user scripts them. */
function kubectlFlows(profileName: string, namespace: string, dist: string, context: string) {
  const k = kubectl();
  const kc = (...args: string[]) => [k, ['--context', context, ...args]] as const;
  const f = (name: string) => join(dist, name);
  const files = readdirSync(dist);
  const pick = (prefix: string) => files.filter((x) => x.startsWith(prefix)).flatMap((x) => ['-f', f(x)]);
  const selector = profileSelector(profileName);
  // Flow 2 as the seed writes it: every delete waits (the namespace's finalization included), so
  // that the deploy after it can re-create the namespace.
  const destroyAll = [
    kc('delete', '-f', dist, '--ignore-not-found=true'),
    kc('delete', 'pvc', '-n', namespace, '-l', selector, '--ignore-not-found=true'),
    kc('wait', '--for=delete', 'pod', '-n', namespace, '-l', selector, '--timeout=120s'),
  ];
  // The same end state as our destroy: every pod and claim gone, the namespace's deletion requested
  // (ours also waits for the volumes, which kubectl cannot name without listing them first).
  const destroy = [
    kc('delete', '-f', dist, '--ignore-not-found=true', '--wait=false'),
    kc('delete', 'pvc', '-n', namespace, '-l', selector, '--ignore-not-found=true', '--wait=false'),
    kc('wait', '--for=delete', 'pod,pvc', '-n', namespace, '-l', selector, '--timeout=120s'),
  ];
  const deploy = [
    ...destroyAll,
    kc('apply', '-f', f(files.find((x) => x.startsWith('namespace-'))!)),
    kc(
      'apply',
      ...pick('storageclass-'),
      ...pick('configmap-'),
      // The role-label sidecar's ServiceAccount and its Role: without them the StatefulSet cannot
      // create a pod (missed when the sidecar came; rollout status then timed out).
      ...pick('serviceaccount-'),
      ...pick('role-'),
      ...pick('rolebinding-'),
      ...files.filter((x) => x.startsWith('service-') && !x.endsWith('-external.yaml')).flatMap((x) => ['-f', f(x)]),
      ...pick('networkpolicy-'),
      ...pick('poddisruptionbudget-'),
    ),
    kc('apply', '-f', f('statefulset-etcd.yaml')),
    kc('rollout', 'status', 'statefulset/etcd', '-n', namespace, '--timeout=120s'),
    kc('apply', '-f', f('job-sandstore-membership-bootstrap.yaml')),
    kc('wait', '--for=condition=complete', 'job/sandstore-membership-bootstrap', '-n', namespace, '--timeout=120s'),
    kc('apply', '-f', f('statefulset-sandstore.yaml')),
    kc('rollout', 'status', 'statefulset/sandstore', '-n', namespace, '--timeout=300s'),
    kc('apply', ...files.filter((x) => x.endsWith('-external.yaml')).flatMap((x) => ['-f', f(x)])),
  ];
  const update = [
    kc('rollout', 'restart', 'statefulset/sandstore', '-n', namespace),
    kc('rollout', 'status', 'statefulset/sandstore', '-n', namespace, '--timeout=300s'),
  ];
  const run = (steps: readonly (readonly [string, readonly string[]])[]) => {
    const t = performance.now();
    lastWindow = { from: Date.now() };
    for (const [cmd, args] of steps) {
      const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
      // `wait --for=delete` on nothing left is not an error for our purposes.
      if (r.status !== 0 && !(args.includes('--for=delete') && /no matching resources/i.test(r.stderr))) {
        throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr.slice(-1500)}`);
      }
    }
    lastWindow.to = Date.now();
    return { seconds: (performance.now() - t) / 1000 };
  };
  return { destroy, destroyAll, deploy, update, run };
}

/** Our CLI, with the request count it prints when SANDSTORE_REQUEST_COUNT=1. */
function ours(
  command: string,
  profileName: string,
  cwd = root,
  extra: string[] = [],
): { seconds: number; requests: number } {
  const t = performance.now();
  lastWindow = { from: Date.now() };
  const r = spawnSync(
    'node',
    [
      'scripts/run-ts.mjs',
      'lib/runner/cli.ts',
      command,
      `--profile=${profileName}`,
      `--context=${opts.context}`,
      ...extra,
    ],
    {
      cwd,
      encoding: 'utf8',
      env: { ...process.env, NO_COLOR: '1', SANDSTORE_REQUEST_COUNT: '1' },
      maxBuffer: 64 << 20,
    },
  );
  const seconds = (performance.now() - t) / 1000;
  lastWindow.to = Date.now();
  if (r.status !== 0)
    throw new Error(`${command} exited ${r.status}:\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
  const m = /api requests: (\d+)/.exec(r.stderr);
  return { seconds, requests: m ? Number(m[1]) : NaN };
}

/** The clean-slate deploy row, ours against the seed's kubectl sequence; leaves the profile deployed. */
function benchDeploy(profileName: string, namespace: string, label: string): ReturnType<typeof kubectlFlows> {
  const k = kubectlFlows(profileName, namespace, join(root, 'dist', profileName), opts.context);
  ours('deploy', profileName); // warm: bundle cache, cluster
  compare(
    `deploy (${label}, clean slate)`,
    0.5,
    () => ours('deploy', profileName).seconds,
    () => k.run(k.deploy).seconds,
    "baseline: the seed's Flow 2 + Flow 3 as kubectl commands (delete -f, delete pvc -l, wait --for=delete, apply per group, rollout status, wait job)",
    namespace,
  );
  return k;
}

function benchFlows(profileName = 'local', namespace = 'sandstore-local', label = 'local profile'): void {
  const k = benchDeploy(profileName, namespace, label);
  compare(
    `update (${label}, rolling restart of 3 pods)`,
    1.0,
    () => ours('update', profileName).seconds,
    () => k.run(k.update).seconds,
    'baseline: kubectl rollout restart + rollout status; both wait for the same controller; ours also re-applies the config, checks dist/ is fresh and guards against crash loops',
    namespace,
  );
  updateBreakdown(profileName, label);
  // Each destroy is followed by a deploy (not timed), so that every destroy starts from the same state.
  const thenRedeploy = (measure: () => number) => () => {
    const s = measure();
    const window = lastWindow;
    ours('deploy', profileName);
    lastWindow = window;
    return s;
  };
  compare(
    `destroy (${label}, same end state)`,
    0.5,
    thenRedeploy(() => ours('destroy', profileName).seconds),
    thenRedeploy(() => k.run(k.destroy).seconds),
    "both sides end when every pod and claim of the profile is gone and the namespace's deletion is requested (kubectl: delete -f --wait=false, delete pvc -l --wait=false, wait --for=delete pod,pvc); ours also waits until the volumes are gone, and stops the data plane before etcd",
    namespace,
  );
  // Against the seed's sequence as written too, on kwok only (on the real node that sequence also
  // waits out Sand Store's 30 s shutdown hang, which the row above already shows).
  if (profileName === 'local')
    compare(
      `destroy (${label}) against the seed's Flow 2 as written`,
      null,
      thenRedeploy(() => ours('destroy', profileName).seconds),
      thenRedeploy(() => k.run(k.destroyAll).seconds),
      "baseline: delete -f dist/ (which waits for every object, the namespace's finalization included), delete pvc -l, wait --for=delete pod; ours leaves the namespace's finalization (~5 s) to the next deploy of the profile, which waits for it",
    );
  ours('destroy', profileName);
}

/**
 * Where an update's time goes, from the runner's own trace (SANDSTORE_TRACE=1: moments since the
 * process started), medians of `runs` updates.
 */
function updateBreakdown(profileName: string, label: string): void {
  const traces: Map<string, number>[] = [];
  for (let i = 0; i < opts.runs; i++) {
    const r = spawnSync(
      'node',
      ['scripts/run-ts.mjs', 'lib/runner/cli.ts', 'update', `--profile=${profileName}`, `--context=${opts.context}`],
      {
        cwd: root,
        encoding: 'utf8',
        env: { ...process.env, NO_COLOR: '1', SANDSTORE_TRACE: '1' },
        maxBuffer: 64 << 20,
      },
    );
    const line = /^trace: (.*)$/m.exec(r.stderr ?? '');
    if (r.status !== 0 || !line) throw new Error(`update exited ${r.status}: ${(r.stderr ?? '').slice(-1500)}`);
    traces.push(
      new Map(
        line[1].split(', ').map((m) => {
          const at = m.lastIndexOf(' ');
          return [m.slice(0, at), Number(m.slice(at + 1, -2))] as const;
        }),
      ),
    );
  }
  const at = (what: string) => median(traces.map((t) => t.get(what) ?? NaN)) / 1000;
  const steps: [string, number][] = [
    ['process start-up and loading the bundle', at('bundle loaded')],
    ['loading the profile', at('profile loaded') - at('bundle loaded')],
    ['resolving the context', at('target resolved') - at('profile loaded')],
    ['reading dist/ and knowing it fresh', at('dist read') - at('target resolved')],
    ['requests: the guard, the applies, the first lists', at('last response') - at('dist read')],
    ['watching the controller roll the pods, and exit', at('done') - at('last response')],
  ];
  entries.push({
    name: `update breakdown (${label})`,
    ours_s: round(at('done')),
    baseline_s: NaN,
    ratio: NaN,
    target: null,
    notes: `medians of ${opts.runs} traced updates (SANDSTORE_TRACE=1): ${steps.map(([w, t]) => `${w} ${t.toFixed(3)} s`).join('; ')}`,
  });
}

/**
 * The local cluster's audit log: every request's metadata, with its user agent (ours:
 * sandstore-deploy, watches included; the baseline's: kubectl) and its timestamps.
 */
function auditLog(): string {
  const state = process.env.SANDSTORE_STATE_DIR ?? join(homedir(), '.local', 'state', 'sandstore-deploy');
  return join(state, 'clusters', opts.context, 'logs', 'audit.log');
}

function lastAuditTime(): number {
  const lines = readFileSync(auditLog(), 'utf8').trimEnd().split('\n');
  return Date.parse(
    (JSON.parse(lines[lines.length - 1]) as { requestReceivedTimestamp: string }).requestReceivedTimestamp,
  );
}

/** Runs `fn` and counts the requests the audit log saw during it, ours (the runner's user agent) and kubectl's. */
function audited(fn: () => void): { ours: number; kubectl: number } {
  const from = Date.now() - 50;
  fn();
  const entries = auditEntries(from, Date.now() + 50);
  const count = (agent: string) =>
    new Set(entries.filter((e) => (e.userAgent ?? '').startsWith(agent)).map((e) => e.auditID)).size;
  return { ours: count(OUR_AGENT), kubectl: count('kubectl') };
}

function benchRequests(): void {
  const k = kubectlFlows('local', 'sandstore-local', join(root, 'dist', 'local'), opts.context);
  let clientSide = 0;
  // Every measured deploy starts from an empty cluster, so that both sides do the same work.
  ours('destroy', 'local');
  const o = audited(() => {
    clientSide = ours('deploy', 'local').requests;
  }).ours;
  ours('destroy', 'local');
  const b = audited(() => {
    k.run(k.deploy);
  }).kubectl;
  // One profile at a time: the slow profile's deploy below is refused while local is live.
  ours('destroy', 'local');
  entries.push({
    name: 'API requests: deploy (local)',
    ours_s: o,
    baseline_s: b,
    ratio: round(o / b),
    target: null,
    notes: `counts, not seconds, from the API server's audit log (requests received during the run, by user agent; kubectl's include discovery); the runner's own count was ${clientSide}`,
  });
  // The same with pods that take ~10 s to become Ready (kwok stage on the slow-ready image).
  const work = mkdtempSync(join(tmpdir(), 'bench-slow-'));
  copyProject(work);
  writeFileSync(
    join(work, 'profiles', 'slow.ts'),
    `import { defineProfile } from '../lib/profile.js';
import base from './local.js';
export default defineProfile({ ...base, name: 'slow', namespace: 'sandstore-slow', image: { registry: 'sandstore.test', repository: 'sandstore-node', tag: 'slow-ready', pullPolicy: 'IfNotPresent' }, storage: { ...base.storage, className: 'sandstore-local-ssd-slow' }, clientAccess: { nodePortBase: 30480 } });
`,
  );
  timed('node', ['scripts/run-ts.mjs', 'main.ts', '--profile=slow'], {}, work);
  let slow = { seconds: 0, requests: 0 };
  const os = audited(() => {
    slow = ours('deploy', 'slow', work);
  }).ours;
  const ks = kubectlFlows('slow', 'sandstore-slow', join(work, 'dist', 'slow'), opts.context);
  let kubectlSeconds = 0;
  ours('destroy', 'slow', work);
  const bs = audited(() => {
    kubectlSeconds = ks.run(ks.deploy).seconds;
  }).kubectl;
  entries.push({
    name: 'API requests: deploy with pods slow to become Ready (~10 s each)',
    ours_s: os,
    baseline_s: bs,
    ratio: round(os / bs),
    target: null,
    notes: `audit log as above. Ours must not grow with the wait: ${os} here vs ${o} when fast (${os <= o + 4 ? 'flat' : 'GROWS'}); took ${slow.seconds.toFixed(1)}s vs kubectl ${kubectlSeconds.toFixed(1)}s`,
  });
  ours('destroy', 'slow', work);
  rmSync(work, { recursive: true, force: true });
}

/** Whether the local cluster runs a real node (its cluster.env names one). */
function hasRealNode(): boolean {
  const env = join(dirname(auditLog()), '..', 'cluster.env');
  return existsSync(env) && /^NODE_NAME=\S+/m.test(readFileSync(env, 'utf8'));
}

function copyProject(work: string): void {
  execFileSync('cp', ['-r', 'main.ts', 'package.json', 'lib', 'imports', 'profiles', 'dist', work], { cwd: root });
  mkdirSync(join(work, 'scripts'));
  execFileSync('cp', ['scripts/run-ts.mjs', join(work, 'scripts')], { cwd: root });
  execFileSync('ln', ['-s', join(root, 'node_modules'), join(work, 'node_modules')]);
}

async function benchScale(): Promise<void> {
  const base = await loadProfile('local');
  const work = mkdtempSync(join(tmpdir(), 'bench-scale-'));
  copyProject(work);
  const deploys = new Map<number, number>();
  for (const n of [3, 9, 51]) {
    const name = `scale-${n}`;
    writeFileSync(
      join(work, 'profiles', `${name}.ts`),
      `import { defineProfile } from '../lib/profile.js';
import base from './local.js';
export default defineProfile({ ...base, name: '${name}', namespace: 'sandstore-${name}', raft: { ...base.raft, replicas: ${n} }, storage: { ...base.storage, className: 'sandstore-local-ssd-${name}' }, clientAccess: { nodePortBase: ${31000 + n * 10} } });
`,
    );
    const synth = median(
      Array.from({ length: opts.runs }, () =>
        timed('node', ['scripts/run-ts.mjs', 'main.ts', `--profile=${name}`], {}, work),
      ),
    );
    // The median of `runs` deploys (each a clean slate: the first run's objects go in the next's).
    const runs = Array.from({ length: opts.runs }, () => ours('deploy', name, work));
    const deploy = { seconds: median(runs.map((r) => r.seconds)), requests: runs[0].requests };
    deploys.set(n, deploy.seconds);
    entries.push({
      name: `scale: ${n} Raft replicas`,
      ours_s: round(deploy.seconds),
      baseline_s: round(synth),
      ratio: NaN,
      target: null,
      notes: `ours_s = deploy (clean slate to Ready, median of ${opts.runs}, ${deploy.requests} API requests), baseline_s = synth of this profile (median); no baseline here: the row shows how cost grows with replicas (the local profile has ${base.raft.replicas})`,
    });
    ours('destroy', name, work);
  }
  const growth = deploys.get(51)! / deploys.get(3)!;
  entries.push({
    name: 'scale: deploy at 51 Raft replicas / at 3',
    ours_s: round(deploys.get(51)!),
    baseline_s: round(deploys.get(3)!),
    ratio: round(growth),
    target: 2,
    notes:
      'ours_s = deploy at 51, baseline_s = deploy at 3 (medians); the data plane starts its members together (podManagementPolicy Parallel)',
  });
  rmSync(work, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
/**
 * The load driver's rows: its ceiling (its rates against a Sand Store on loopback, the fastest
 * target this machine offers) next to what the local-node profile delivers, so that the
 * profile's numbers are known to measure Sand Store and not the driver; the driver's memory per
 * million samples; and upstream's clients/bench beside it on the same nodes, whose totals stop at
 * its result channel's 1000 × concurrency.
 */
const LOAD = { concurrency: 4, block_size_bytes: 4096, duration_s: 10, warmup_s: 2 } as const;
/**
 * The memory row wants a million samples, in at most MEMORY_MAX_S of one operation; it also runs a
 * short run of the same operation, so that the cost of the samples shows apart from the fixed cost.
 */
const MEMORY_SAMPLES = 1_000_000;
const MEMORY_MAX_S = 60;
const MEMORY_SHORT_S = 10;
const MiB = 1 << 20;
/** Three, not one: a one-node Sand Store 7ab6010 never commits a mutation (see loopback-sandstore.ts). */
const LOOPBACK_NODES = 3;

async function benchDriver(): Promise<void> {
  const source = sandstoreSource();
  const driver = (await buildDriver({ source, log: (line) => process.stderr.write(`  ${line}\n`) })).path;
  const work = mkdtempSync(join(tmpdir(), 'bench-driver-'));
  try {
    const upstream = buildUpstreamBench(source, work);
    const ss = await startLoopbackSandstore({ nodes: LOOPBACK_NODES, source });
    let loopback: { ceiling: DriverSummary; theirs: Map<string, number>; memory: MemoryRuns };
    try {
      loopback = await againstLoopback(driver, upstream, ss.seeds, work);
    } finally {
      await ss.stop();
    }
    const profile = againstLocalProfile(work);
    ceilingRows(loopback.ceiling, profile, loopback.theirs);
    memoryRow(loopback.memory, loopback.ceiling);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Ours, then upstream's, then the memory runs, on the same nodes. */
async function againstLoopback(driver: string, upstream: string, seeds: readonly string[], work: string) {
  process.stderr.write(`  driver: ceiling against loopback ${seeds.join(',')}\n`);
  const ceiling = await runLoad(driver, seeds, OPERATIONS, LOAD.duration_s, LOAD.warmup_s, join(work, 'ceiling'));
  process.stderr.write('  driver: upstream clients/bench against the same nodes\n');
  const theirs = await runUpstreamBench(upstream, seeds, join(work, 'upstream'));
  const memory = await memoryRuns(driver, seeds, ceiling, work);
  return { ceiling, theirs, memory };
}

/**
 * The local-node profile's rates, measured as the operator measures them: `npm run benchmark
 * --fresh` (clean-slate deploy, gate, the same driver and load), then destroyed. Or why there are
 * none: a failure there must not lose the loopback rows.
 */
function againstLocalProfile(work: string): DriverSummary | string {
  execFileSync('bash', ['scripts/local-cluster/up.sh', '--name', opts.context], {
    cwd: root,
    stdio: ['ignore', process.stderr, 'inherit'],
  });
  const results = join(work, 'results');
  process.stderr.write('  driver: the local-node profile, through npm run benchmark --fresh\n');
  const load = [
    `--duration=${LOAD.duration_s}`,
    `--warmup=${LOAD.warmup_s}`,
    `--concurrency=${LOAD.concurrency}`,
    `--block-size=${LOAD.block_size_bytes}`,
  ];
  const r = spawnSync(
    'node',
    [
      'scripts/run-ts.mjs',
      'lib/runner/cli.ts',
      'benchmark',
      '--profile=local-node',
      `--context=${opts.context}`,
      '--fresh',
      ...load,
      `--results-dir=${results}`,
    ],
    {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, NO_COLOR: '1' },
      maxBuffer: 16 << 20,
    },
  );
  spawnSync(
    'node',
    ['scripts/run-ts.mjs', 'lib/runner/cli.ts', 'destroy', '--profile=local-node', `--context=${opts.context}`],
    { cwd: root, stdio: 'ignore' },
  );
  if (r.status !== 0)
    return `local-node profile not measured: npm run benchmark exited ${r.status}: ${lastLine(`${r.stdout}\n${r.stderr}`)}`;
  const dir = join(results, 'local-node');
  return DriverSummary.parse(JSON.parse(readFileSync(join(dir, readdirSync(dir)[0], 'summary.json'), 'utf8')));
}

const lastLine = (text: string) =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .at(-1) ?? '';

/** Sand Store's source: SANDSTORE_SOURCE, else shared/sandstore beside an ancestor (as images.sh finds it). */
function sandstoreSource(): string {
  return process.env.SANDSTORE_SOURCE ?? defaultSandstoreSource(root);
}

/** Runs the driver (asynchronously: the loopback nodes' stderr pipes must keep draining) and reads its summary. */
async function runLoad(
  driver: string,
  seeds: readonly string[],
  operations: readonly Operation[],
  duration: number,
  warmup: number,
  out: string,
): Promise<DriverSummary> {
  mkdirSync(out, { recursive: true });
  const options = {
    seeds: [...seeds],
    concurrency: LOAD.concurrency,
    block_size_bytes: LOAD.block_size_bytes,
    duration_s: duration,
    warmup_s: warmup,
    operations: [...operations],
  };
  await runChild(driver, driverArgs(options, out), out);
  const parsed = DriverSummary.safeParse(JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')));
  if (!parsed.success)
    throw new Error(`the driver's ${join(out, 'summary.json')} does not match its schema: ${parsed.error.message}`);
  return parsed.data;
}

/** Runs a program to its exit; rejects with its exit and last lines of output when it fails. */
function runChild(cmd: string, args: readonly string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    // Both streams: the driver says why it stopped on standard output, next to its progress.
    const keep = (s: string) => {
      tail = (tail + s).slice(-2000);
    };
    child.stdout.setEncoding('utf8').on('data', keep);
    child.stderr.setEncoding('utf8').on('data', keep);
    child.once('error', (err) => reject(new Error(`cannot run ${cmd}: ${err.message}`)));
    child.once('close', (code, signal) =>
      code === 0
        ? resolve()
        : reject(new Error(`${cmd} ${args.join(' ')} ended with ${signal ?? `exit ${code}`}:\n${tail}`)),
    );
  });
}

interface MemoryRuns {
  op: Operation;
  short: DriverSummary;
  long: DriverSummary;
}

/**
 * The operation of the memory runs: the fastest one whose calls carry no data, so that what grows
 * is the samples' memory, not write's 2 MiB buffers or read's whole chunks.
 */
const MEMORY_OP: Operation = 'stat';

/**
 * MEMORY_OP alone (no warm-up): once for MEMORY_SHORT_S, once for as long as a million samples take
 * at its rate, at most MEMORY_MAX_S.
 */
async function memoryRuns(
  driver: string,
  seeds: readonly string[],
  ceiling: DriverSummary,
  work: string,
): Promise<MemoryRuns> {
  const rate = ceiling.phases.find((p) => p.operation === MEMORY_OP)?.ops_per_s ?? 1;
  const long = Math.min(MEMORY_MAX_S, Math.ceil((1.1 * MEMORY_SAMPLES) / Math.max(rate, 1)));
  const short = Math.min(MEMORY_SHORT_S, long / 4);
  process.stderr.write(`  driver: memory, ${MEMORY_OP} alone for ${short} s, then for ${long} s\n`);
  return {
    op: MEMORY_OP,
    short: await runLoad(driver, seeds, [MEMORY_OP], short, 0, join(work, 'memory-short')),
    long: await runLoad(driver, seeds, [MEMORY_OP], long, 0, join(work, 'memory-long')),
  };
}

/**
 * Upstream's clients/bench, built into `work` (Go's build cache makes a rebuild cheap); nothing is
 * written into the source.
 */
function buildUpstreamBench(source: string, work: string): string {
  const out = join(work, 'upstream-bench');
  timed(
    'go',
    ['build', '-trimpath', '-o', out, './clients/bench'],
    { CGO_ENABLED: '0', GOFLAGS: '-mod=readonly -buildvcs=false' },
    source,
  );
  return out;
}

/** Runs upstream's clients/bench in `cwd` (it writes results/ and run/ there); total_ops per operation. */
async function runUpstreamBench(bin: string, seeds: readonly string[], cwd: string): Promise<Map<string, number>> {
  mkdirSync(cwd, { recursive: true });
  await runChild(
    bin,
    [
      `--seeds=${seeds.join(',')}`,
      `--concurrency=${LOAD.concurrency}`,
      `--duration=${LOAD.duration_s}`,
      `--block-size=${LOAD.block_size_bytes}`,
    ],
    cwd,
  );
  const dir = join(cwd, 'results', 'bench');
  const [header, ...rows] = readFileSync(join(dir, readdirSync(dir)[0]), 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(','));
  const col = header.indexOf('total_ops');
  return new Map(rows.map((r) => [r[0], Number(r[col])]));
}

/** What each operation's calls are, where it explains a rate (Sand Store 7ab6010's client library and server). */
const OPERATION_NOTES: Record<Operation, string> = {
  write: "a write call mostly appends to the client library's 2 MiB buffer; about one in 512 sends it",
  read: "each read call receives a whole chunk (up to 8 MiB) whatever length is asked (the server's handleRead ignores it); upstream's count is mostly of empty reads past the end of its files, which it never starts over (the library returns no bytes, not io.EOF)",
  stat: "stat of the worker's own file",
  create: 'open with O_CREATE of a new file, then close: two commits through Raft',
  listdir: 'lists / with every file the earlier phases created in it: its rate falls as they add up',
};

/**
 * Calls per second of the driver's own CPU (one core, fully busy), from the loopback run, where the
 * driver is pushed hardest: its ceiling whatever the target, since a closed loop costs the driver
 * the same CPU per call against any target (less against a slower one: fewer calls per second).
 */
const driverCeiling = (p: Phase) => (p.ok_ops + p.error_count + p.warmup.ops) / Math.max(p.cpu_s ?? NaN, 1e-6);

function ceilingRows(ceiling: DriverSummary, profile: DriverSummary | string, theirs: Map<string, number>): void {
  const cap = 1000 * LOAD.concurrency;
  const setup = `concurrency ${LOAD.concurrency}, ${LOAD.block_size_bytes}-byte blocks, ${LOAD.warmup_s} s warm-up then ${LOAD.duration_s} s measured per operation`;
  for (const p of ceiling.phases) {
    const q = typeof profile === 'string' ? undefined : profile.phases.find((x) => x.operation === p.operation);
    const rate = q ? q.ops_per_s : NaN;
    const local = q
      ? `local-node (npm run benchmark --fresh): p50 ${q.latency_ms.p50.toFixed(3)} ms, ${q.total_ops} calls, ${q.error_count} errors`
      : `${profile as string}`;
    const perCall = ((p.cpu_s ?? NaN) / (p.ok_ops + p.error_count + p.warmup.ops)) * 1e6;
    entries.push({
      name: `load driver ceiling: ${p.operation} (ops/s)`,
      ours_s: round(rate),
      baseline_s: round(driverCeiling(p)),
      ratio: round(rate / driverCeiling(p)),
      target: 0.5,
      notes: `successful ops/s; ours = what the local-node profile delivers, measured by \`npm run benchmark --fresh\`; baseline = the driver's own ceiling: calls per second of its own CPU (${perCall.toFixed(1)} µs of driver CPU per call, user + system), measured against the fastest target here, a ${LOOPBACK_NODES}-node Sand Store on loopback that the bench starts and stops (one node cannot commit writes in Sand Store 7ab6010), where it ran ${round(p.ops_per_s)} ops/s (p50 ${p.latency_ms.p50.toFixed(3)} ms, ${p.total_ops} calls, ${p.error_count} errors) on this machine's ${cpus().length} cores shared with the nodes; ${setup}. ${local}. Upstream clients/bench, same loopback nodes, same phase: total_ops ${theirs.get(p.operation) ?? '–'} (its cap ${cap}) vs ours ${p.total_ops}. ${OPERATION_NOTES[p.operation]}`,
    });
  }
  const ours = ceiling.phases.reduce((s, p) => s + p.total_ops, 0);
  const up = [...theirs.values()].reduce((s, n) => s + n, 0);
  entries.push({
    name: 'load driver vs upstream clients/bench: total_ops, five phases (loopback)',
    ours_s: ours,
    baseline_s: up,
    ratio: round(ours / up),
    target: null,
    notes: `counts, not seconds: calls measured by each, ours then upstream's, against the same ${LOOPBACK_NODES}-node loopback Sand Store, ${setup} (upstream: no warm-up). Upstream sends every sample into a channel of 1000 × concurrency = ${cap} that is read only after the phase, so a phase stops counting (and its workers stop calling) at ${cap}: ${ceiling.phases.map((p) => `${p.operation} ${p.total_ops} vs ${theirs.get(p.operation) ?? '–'}`).join(', ')}`,
  });
}

/**
 * What a further million samples cost the driver: the difference in peak RSS between the long and
 * the short run over the difference in samples, scaled to a million (extrapolated when the long run
 * recorded fewer, which its notes say).
 */
function memoryRow(m: MemoryRuns, ceiling: DriverSummary): void {
  const [a, b] = [m.short.memory, m.long.memory];
  const mib = (bytes: number) => (bytes / MiB).toFixed(1);
  const perMillion = (((b.max_rss_bytes - a.max_rss_bytes) / (b.samples - a.samples)) * 1e6) / MiB;
  const rate = b.samples / m.long.options.duration_s;
  // RSS moves by a MiB or so with the garbage collector alone: what that is per million samples here.
  const noise = (1e6 / (b.samples - a.samples)).toFixed(1);
  const reach =
    b.samples >= MEMORY_SAMPLES
      ? `the long run recorded ${b.samples} samples, a million measured`
      : `EXTRAPOLATED: a million samples of ${m.op} take ${Math.round(MEMORY_SAMPLES / rate)} s here (${Math.round(rate)}/s), more than the ${MEMORY_MAX_S} s allowed, so the figure is scaled from ${b.samples - a.samples}`;
  entries.push({
    name: 'load driver memory per million samples (MiB)',
    ours_s: round(perMillion),
    baseline_s: NaN,
    ratio: NaN,
    target: null,
    notes: `the driver's peak RSS (summary.json memory; samples = calls recorded) running ${m.op} alone against the loopback nodes: ${mib(a.max_rss_bytes)} MiB after ${a.samples} samples in ${m.short.options.duration_s} s, ${mib(b.max_rss_bytes)} MiB after ${b.samples} in ${m.long.options.duration_s} s; ours = the difference per million samples (latencies go into histograms, not lists), where 1 MiB of RSS noise is ±${noise} MiB. ${reach}. Peak RSS per million samples of the long run, fixed cost included: ${mib((b.max_rss_bytes / b.samples) * 1e6)} MiB. The ceiling run (all five operations, read receiving whole chunks) peaked at ${mib(ceiling.memory.max_rss_bytes)} MiB with ${ceiling.memory.samples} samples`,
  });
}

/**
 * Issue 22's rows: the runner's quorum-aware update against the StatefulSet's ordinal roll
 * (`kubectl rollout restart`), one after the other on the same deployment, each under the same two
 * churn clients (test/e2e/roll-under-load.ts): roll time, each client's total outage, and in the
 * notes the elections (Sand Store's event logs) and the longest outages. Then the same on 5 pods (a
 * variant of local-node with `raft.replicas: 5`). One roll per side: a roll under load is minutes,
 * and its spread is in docs/performance.md.
 */
async function benchRollUnderLoad(): Promise<void> {
  const three: RollTarget = { context: opts.context, profile: 'local-node', namespace: 'sandstore-node', replicas: 3 };
  ours('deploy', three.profile);
  await rollRows(three, 'local-node, 3 pods');
  ours('destroy', three.profile);
  // A namespace of its own: local-node's may still be terminating after its destroy.
  const work = projectWithVariant('local-node', 'local-node-5', "raft: { replicas: 5 }, namespace: 'sandstore-node-5'");
  const five: RollTarget = { ...three, profile: 'local-node-5', namespace: 'sandstore-node-5', replicas: 5, cwd: work };
  ours('deploy', five.profile, work);
  await rollRows(five, 'local-node-5, 5 pods');
  ours('destroy', five.profile, work);
  rmSync(work, { recursive: true, force: true });
}

async function rollRows(t: RollTarget, label: string): Promise<void> {
  // Asynchronous, as the clients and the roll's watch run in this process.
  const quorum = await rollUnderLoad(t, async () =>
    expectExit(await runCli(['update', `--profile=${t.profile}`], { cwd: t.cwd, env: { KUBE_CONTEXT: t.context } }), 0),
  );
  const ordinal = await rollUnderLoad(t, () => kubectlRestart(t, kubectl()));
  const notes = `${describeRoll('quorum order (ours)', quorum)}. ${describeRoll('ordinal order (baseline)', ordinal)}`;
  const row = (what: string, o: number, b: number, target: number | null) =>
    entries.push({
      name: `update under load (${label}): ${what}`,
      ours_s: round(o),
      baseline_s: round(b),
      ratio: round(o / b),
      target,
      notes,
    });
  row('roll time, quorum order against ordinal', quorum.seconds, ordinal.seconds, null);
  row("following client's total outage", outage(quorum.follow).total, outage(ordinal.follow).total, 0.5);
  row("naive client's total outage", outage(quorum.naive).total, outage(ordinal.naive).total, null);
  process.stderr.write(`${notes}\n`);
}

// ---------------------------------------------------------------------------------------------
const only = opts.only;
if (!only || only === 'synth') benchSynth();
// Before the cluster is started: the loopback nodes need none, and the local-node half measures
// the profile only when it is already deployed.
if (!only || only === 'driver') await benchDriver();
if (!only || only === 'image') benchImage();
if (!only || (only !== 'synth' && only !== 'driver' && only !== 'image')) {
  // up.sh prints its cluster.env on stdout; keep stdout for the table.
  execFileSync('bash', ['scripts/local-cluster/up.sh', '--name', opts.context], {
    cwd: root,
    stdio: ['ignore', process.stderr, 'inherit'],
  });
  if (!only || only === 'flows') benchFlows();
  if (!only || only === 'requests') benchRequests();
  if (!only || only === 'scale') await benchScale();
  // The same flows on the real node (profile local-node: real containers running Sand Store), when
  // the cluster has one (`npm run cluster:up` without --no-node).
  if (!only || only === 'real-node' || only === 'real-node-deploy') {
    const realNode = ['local-node', 'sandstore-node', 'real node, local-node profile'] as const;
    if (hasRealNode() && only === 'real-node-deploy') {
      benchDeploy(...realNode);
      ours('destroy', realNode[0]);
    } else if (hasRealNode()) benchFlows(...realNode);
    else
      process.stderr.write('bench: no real node in this cluster (started with --no-node?): real-node rows skipped\n');
  }
  if (!only || only === 'roll-under-load') {
    if (hasRealNode()) await benchRollUnderLoad();
    else process.stderr.write('bench: no real node in this cluster: roll-under-load rows skipped\n');
  }
}

/**
 * Flow 1 on a real engine (scripts/docker-engine.sh: dockerd and an htpasswd registry on
 * 127.0.0.1:5001, logged in with a docker config of the bench's own): `npm run image` against the
 * seed's Flow 1 as written (docker build --platform linux/amd64 with GO_FLAGS, GOOS, GOARCH and the
 * tag, then docker push), on the same daemon, registry and checkout, interleaved. Warm: nothing
 * changed since the last build, so both are the daemon's cache and a push of known layers. After a
 * one-line change: each build gets a checkout copy whose cmd/sandstore/main.go has one more comment
 * line, so upstream's `COPY . .` and every step after it run again (minutes each, so fewer runs).
 */
function benchImage(): void {
  const source = sandstoreSource();
  const env = Object.fromEntries(
    execFileSync('bash', ['scripts/docker-engine.sh', 'up'], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    })
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  const work = mkdtempSync(join(tmpdir(), 'sandstore-bench-image-'));
  copyProject(work);
  const registry = env.SANDSTORE_AUTH_REGISTRY;
  writeFileSync(
    join(work, 'profiles', 'bench-image.ts'),
    `import { defineProfile } from '../lib/profile.js';\nimport base from './local-node.js';\n` +
      `export default defineProfile({ ...base, name: 'bench-image', image: { registry: '${registry}', tag: 'bench-image-latest' } });\n`,
  );
  const dockerEnv = {
    PATH: `/usr/bin:${process.env.PATH ?? ''}`,
    DOCKER_HOST: env.DOCKER_HOST,
    DOCKER_CONFIG: join(work, 'docker'),
  };
  execFileSync('/usr/bin/docker', ['login', '-u', env.SANDSTORE_AUTH_REGISTRY_USER, '--password-stdin', registry], {
    input: env.SANDSTORE_AUTH_REGISTRY_PASSWORD,
    env: { ...process.env, ...dockerEnv },
    stdio: ['pipe', 'ignore', 'inherit'],
  });
  const tag = `${registry}/sandstore-node:bench-image-latest`;
  const image = (src: string) =>
    timed(
      'node',
      ['scripts/run-ts.mjs', 'lib/runner/cli.ts', 'image', '--profile=bench-image', `--source=${src}`],
      dockerEnv,
      work,
    );
  const seed = (src: string) =>
    timed(
      'docker',
      [
        'build',
        '--platform',
        'linux/amd64',
        '--build-arg',
        'TAGS=grpc etcd',
        '--build-arg',
        'GO_FLAGS=-tags=grpc,etcd',
        '--build-arg',
        'GOOS=linux',
        '--build-arg',
        'GOARCH=amd64',
        '--target',
        'runner',
        '-t',
        tag,
        '-f',
        join(src, 'deploy', 'docker', 'Dockerfile'),
        src,
      ],
      dockerEnv,
    ) + timed('docker', ['push', tag], dockerEnv);
  image(source); // warm the daemon's cache and the registry
  compare(
    'image: npm run image against docker build + push (warm cache)',
    1.0,
    () => image(source),
    () => seed(source),
    "same dockerd, registry, checkout and build args (upstream's Dockerfile from the offline base images); nothing changed, so both are the build cache and a push of known layers",
  );
  let edits = 0;
  const edited = () => {
    const copy = join(work, `checkout-${++edits}`);
    execFileSync('cp', ['-a', source, copy]);
    const main = join(copy, 'cmd', 'sandstore', 'main.go');
    writeFileSync(main, `${readFileSync(main, 'utf8')}// bench edit ${edits}\n`);
    return copy;
  };
  const saved = opts.runs;
  opts.runs = opts.editRuns;
  if (opts.runs > 0)
    compare(
      'image: npm run image against docker build + push (after a one-line change)',
      1.0,
      () => image(edited()),
      () => seed(edited()),
      `a comment line added to cmd/sandstore/main.go before each build: COPY . . and the four go build steps run again, with upstream's empty Go cache in the builder (${opts.runs} runs per side)`,
    );
  opts.runs = saved;
  rmSync(work, { recursive: true, force: true });
}

const fmt = (x: number) => (Number.isFinite(x) ? String(x) : '–');
const lines = [
  `| benchmark | ours | baseline | ratio | target | notes |`,
  `|---|---|---|---|---|---|`,
  ...entries.map((e) => {
    const missed = e.target !== null && !(e.ratio <= e.target);
    return `| ${e.name} | ${fmt(e.ours_s)} | ${fmt(e.baseline_s)} | ${fmt(e.ratio)}${missed ? ' **MISSED**' : ''} | ${e.target ?? '–'} | ${e.notes} |`;
  }),
];
console.log(lines.join('\n'));
mkdirSync(join(root, 'bench'), { recursive: true });
// With --only, the other groups' rows of the last full run are kept: one group re-run never
// erases the rest of the record.
const resultsFile = join(root, 'bench', 'results.json');
const kept =
  only && existsSync(resultsFile)
    ? ((JSON.parse(readFileSync(resultsFile, 'utf8')) as { entries?: Entry[] }).entries ?? []).filter(
        (e) => !entries.some((n) => n.name === e.name),
      )
    : [];
writeFileSync(
  resultsFile,
  `${JSON.stringify({ machine: `${process.platform} ${process.arch}, node ${process.version}`, runs: opts.runs, entries: [...kept, ...entries] }, null, 2)}\n`,
);
