/**
 * What enforcing NetworkPolicies costs the runner's flows on the real node: deploy, update and
 * destroy of a profile, timed with the node's kube-router firewall running and with it stopped and
 * its rules removed, alternating side by side in one run (the order flips every run, so drift in
 * the machine's load falls on both sides alike). Prints per flow the medians, the ratio
 * enforced/not enforced and each side's spread (max − min: the run's own noise).
 * Not a test and not a benchmark row: a measuring tool, run by hand against a running local cluster.
 *
 *   node scripts/run-ts.mjs bench/policy-enforcement.ts --context=sandstore-local [--profile=local-node] [--runs=3]
 *
 * Every block starts from a node restarted by up.sh (so neither side inherits the other's warm
 * caches), then, on the "not enforced" side, stops kube-router and removes its chains and ipsets from the
 * node's network namespace: no process, chain or ipset of the firewall is left, checked before
 * timing. The cluster is left as up.sh leaves it, firewall on, with the profile destroyed.
 */
import { Command, Option } from 'commander';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { max, median, min } from 'simple-statistics';
import { projectRoot } from '../lib/paths.js';

const program = new Command('policy-enforcement')
  .addOption(new Option('--context <name>', 'the local cluster (with a real node)').default('sandstore-local'))
  .addOption(new Option('--profile <name>', 'profile to deploy').default('local-node'))
  .addOption(new Option('--runs <n>', 'blocks per side').default(3).argParser(Number));
program.parse();
const opts = program.opts<{ context: string; profile: string; runs: number }>();
const root = projectRoot();
const FLOWS = ['deploy', 'update', 'destroy'] as const;
type Flow = (typeof FLOWS)[number];
type Side = 'enforced' | 'not enforced';

const clusterDir = join(
  process.env.SANDSTORE_STATE_DIR ?? join(homedir(), '.local', 'state', 'sandstore-deploy'),
  'clusters',
  opts.context,
);
/** The node's network namespace is named after the cluster (scripts/local-cluster/node.sh). */
const inNode = (...args: string[]) => ['nsenter', `--net=/run/netns/${opts.context}`, ...args];

function sh(argv: readonly string[]): string {
  return execFileSync(argv[0], argv.slice(1), { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The firewall's own chains hooked into the node's FORWARD chain: policies are being enforced. */
function firewallHooked(): boolean {
  return sh(inNode('iptables', '-w', '5', '-S', 'FORWARD')).includes('KUBE-ROUTER-FORWARD');
}

/** Stops the node's kube-router (its recorded pid, checked to be kube-router) and removes its rules. */
function stopFirewall(): void {
  const pid = readFileSync(join(clusterDir, 'pids', 'kube-router.pid'), 'utf8').trim();
  if (existsSync(`/proc/${pid}`)) {
    const binary = readlinkSync(`/proc/${pid}/exe`);
    if (!binary.endsWith('/kube-router')) throw new Error(`pid ${pid} is ${binary}, not kube-router`);
    process.kill(Number(pid), 'SIGTERM');
    // tail --pid returns when the process has exited: a wait on the process, not a guess.
    sh(['timeout', '30', 'tail', `--pid=${pid}`, '-f', '/dev/null']);
  }
  removeFirewallRules();
  if (firewallHooked()) throw new Error("kube-router's chains are still hooked into FORWARD after their removal");
}

/** kube-router's network-policy chains (v2.1: its three hooks, one per pod and one per policy). */
const FIREWALL_CHAIN = /^(KUBE-ROUTER-|KUBE-POD-FW-|KUBE-NWPLCY-)/;

/**
 * Removes what kube-router's firewall put in the node's filter table and its ipsets, rule by rule
 * (never a table restore, which could undo a concurrent change of kube-proxy's). Its own
 * `--cleanup-config` leaves the hooks in place in v2.1.0, then panics in the services half.
 */
function removeFirewallRules(): void {
  const rules = sh(inNode('iptables', '-w', '5', '-S')).split('\n');
  const chains = rules
    .filter((r) => r.startsWith('-N '))
    .map((r) => r.slice(3))
    .filter((c) => FIREWALL_CHAIN.test(c));
  for (const rule of rules) {
    const [, chain, spec] = /^-A (\S+) (.*)$/.exec(rule) ?? [];
    if (chain && !FIREWALL_CHAIN.test(chain) && chains.some((c) => spec.endsWith(`-j ${c}`)))
      sh(['bash', '-c', `${inNode('iptables', '-w', '5', '-D', chain).join(' ')} ${spec}`]);
  }
  for (const c of chains) sh(inNode('iptables', '-w', '5', '-F', c));
  for (const c of chains) sh(inNode('iptables', '-w', '5', '-X', c));
  for (const set of sh(inNode('ipset', 'list', '-n'))
    .split('\n')
    .filter((n) => n.startsWith('KUBE-')))
    sh(inNode('ipset', 'destroy', set));
}

/**
 * A node restarted by up.sh: it finds kube-router missing and restarts the cluster's processes on
 * their existing state, waiting until the firewall has synced. Forced by stopping the firewall.
 */
function restartNode(): void {
  if (firewallHooked()) stopFirewall();
  sh(['bash', 'scripts/local-cluster/up.sh', '--name', opts.context]);
  if (!firewallHooked()) throw new Error('up.sh returned without the firewall hooked into FORWARD');
}

function timeRunner(flow: Flow): number {
  const argv = [
    'scripts/run-ts.mjs',
    'lib/runner/cli.ts',
    flow,
    `--profile=${opts.profile}`,
    `--context=${opts.context}`,
  ];
  const started = performance.now();
  const r = spawnSync('node', argv, { cwd: root, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  if (r.status !== 0) throw new Error(`${flow} exited ${r.status}:\n${r.stderr.slice(-2000)}`);
  return (performance.now() - started) / 1000;
}

function block(side: Side): Record<Flow, number> {
  restartNode();
  if (side === 'not enforced') stopFirewall();
  const times = Object.fromEntries(FLOWS.map((flow) => [flow, timeRunner(flow)])) as Record<Flow, number>;
  const enforcing = firewallHooked();
  if (enforcing !== (side === 'enforced')) throw new Error(`the firewall changed state during the ${side} block`);
  return times;
}

const samples: Record<Side, Record<Flow, number[]>> = {
  enforced: { deploy: [], update: [], destroy: [] },
  'not enforced': { deploy: [], update: [], destroy: [] },
};
sh([
  'node',
  'scripts/run-ts.mjs',
  'lib/runner/cli.ts',
  'destroy',
  `--profile=${opts.profile}`,
  `--context=${opts.context}`,
]);
for (let run = 0; run < opts.runs; run++) {
  const order: Side[] = run % 2 === 0 ? ['enforced', 'not enforced'] : ['not enforced', 'enforced'];
  for (const side of order) {
    const t = block(side);
    for (const flow of FLOWS) samples[side][flow].push(t[flow]);
    process.stderr.write(
      `run ${run + 1}/${opts.runs} ${side}: ${FLOWS.map((f) => `${f} ${t[f].toFixed(2)} s`).join(', ')}\n`,
    );
  }
}
restartNode();

const s = (x: number) => `${x.toFixed(2)} s`;
const spread = (xs: number[]) => s(max(xs) - min(xs));
console.log(
  `| flow (${opts.profile}, real node, ${opts.runs} runs per side) | enforced | not enforced | ratio | spread enforced | spread not |`,
);
console.log('|---|---|---|---|---|---|');
for (const flow of FLOWS) {
  const on = samples.enforced[flow];
  const off = samples['not enforced'][flow];
  console.log(
    `| ${flow} | ${s(median(on))} | ${s(median(off))} | ${(median(on) / median(off)).toFixed(2)} | ${spread(on)} | ${spread(off)} |`,
  );
}
