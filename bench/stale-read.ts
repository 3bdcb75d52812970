/**
 * How often Sand Store 7ab6010 serves a stale read (the numbers of docs/leader-access.md's "What
 * still fails"): runs upstream's TestOpenSmoke sequence (create, write, fsync, write more, close,
 * open, read) `--sequences` times per run from this machine, through the node ports as `client`
 * gives them, and prints per run the reads that returned other than the whole file, what they
 * returned, and whether the same read 200 ms later returned the whole file; and the sequences an
 * error ended, by error.
 *
 * The client is test/e2e/sandstore-files (its stale-read mode), built inside Sand Store's module;
 * why such a read is stale is written there. Not a test and not a benchmark row: a measuring tool,
 * run by hand against a running local cluster with the profile deployed.
 *
 *   node scripts/run-ts.mjs bench/stale-read.ts --context=sandstore-local [--runs=3]
 *       [--sequences=300] [--profile=local-node]
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sum } from 'simple-statistics';
import { projectRoot } from '../lib/paths.js';
import { buildSandstoreFiles } from '../test/e2e/sandstore-files/build.js';

interface StaleReadReport {
  readonly sequences: number;
  readonly seconds: number;
  readonly stale: readonly { sequence: number; read: string; later: string }[];
  readonly failed: readonly { sequence: number; error: string }[];
}

/** An error without its path and chunk ID, so that the same failure groups. */
const errorKind = (error: string) =>
  error.replace(/"?\/stale-read-[\d-]+"?/g, '<path>').replace(/[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}/g, '<chunk>');

const WHOLE = 'hello, sandstore + appended';

/** One run: the client under `client`, so that it gets the leader's node port first. */
function runOnce(binary: string, opts: Options): StaleReadReport {
  const report = join(mkdtempSync(join(tmpdir(), 'stale-read-')), 'report.json');
  const cli = ['scripts/run-ts.mjs', 'lib/runner/cli.ts', 'client', `--profile=${opts.profile}`];
  const r = spawnSync(
    'node',
    [...cli, `--context=${opts.context}`, '--', binary, 'stale-read', String(opts.sequences), report],
    { cwd: projectRoot(), encoding: 'utf8' },
  );
  if (r.status !== 0) fail(`the client failed (exit ${r.status}); its output:\n${r.stdout}${r.stderr}`);
  return JSON.parse(readFileSync(report, 'utf8')) as StaleReadReport;
}

interface Options {
  readonly context: string;
  readonly profile: string;
  readonly runs: number;
  readonly sequences: number;
}

function main(opts: Options): void {
  const binary = buildSandstoreFiles();
  const reports: StaleReadReport[] = [];
  for (let run = 1; run <= opts.runs; run++) {
    const r = runOnce(binary, opts);
    reports.push(r);
    const reads = [...new Set(r.stale.map((s) => JSON.stringify(s.read)))].join(', ') || '-';
    const healed = r.stale.filter((s) => s.later === WHOLE).length;
    console.log(
      `run ${run}: ${r.stale.length} of ${r.sequences} reads stale (${((100 * r.stale.length) / r.sequences).toFixed(1)}%) ` +
        `in ${r.seconds.toFixed(0)} s; they returned ${reads}; ${healed} of them whole 200 ms later; ` +
        `${r.failed.length} sequences failed`,
    );
    for (const [kind, n] of countBy(r.failed.map((f) => errorKind(f.error)))) console.log(`  ${n} x ${kind}`);
  }
  const stale = sum(reports.map((r) => r.stale.length));
  const sequences = sum(reports.map((r) => r.sequences));
  const failed = sum(reports.map((r) => r.failed.length));
  console.log(
    `all runs: ${stale} of ${sequences} reads stale (${((100 * stale) / sequences).toFixed(1)}%); ` +
      `${failed} sequences failed (${((100 * failed) / sequences).toFixed(1)}%)`,
  );
}

function fail(message: string): never {
  console.error(`stale-read: ${message}`);
  process.exit(1);
}

function countBy(keys: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const k of keys) counts.set(k, (counts.get(k) ?? 0) + 1);
  return counts;
}

const positive = (what: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidArgumentError(`${what}: expected a whole number above 0, got ${v}`);
  return n;
};

const program = new Command('stale-read')
  .requiredOption('--context <name>', 'kube context of the cluster the profile runs on')
  .addOption(new Option('--profile <name>', 'the deployed profile').default('local-node'))
  .addOption(new Option('--runs <n>', 'runs').argParser(positive('--runs')).default(3))
  .addOption(new Option('--sequences <n>', 'sequences per run').argParser(positive('--sequences')).default(300))
  .action((opts: Options) => main(opts));
program.parse();
