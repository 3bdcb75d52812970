import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:http';
import { runEntry, STACK_FRAME } from '../cli-harness.js';
import { projectWithVariant, sandstoreSource } from '../e2e/harness.js';

/**
 * `benchmark --baseline` refused before anything starts: a profile whose image registry is a
 * server that counts the requests it gets and knows no image (so a registry request would show), a
 * TMPDIR of its own (where
 * the baseline's data folder would appear) and a results folder of its own. The control runs the
 * same command without the clash and sees the registry asked.
 */

let requests = 0;
let registry: Server;
let port: number;
let work: string;
let scratch: string;
beforeAll(async () => {
  registry = createServer((_req, res) => {
    requests++;
    res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}');
  });
  await new Promise<void>((resolve) => registry.listen(0, '127.0.0.1', resolve));
  port = (registry.address() as { port: number }).port;
  work = projectWithVariant(
    'local-node',
    'baseline-refusal',
    `image: { ...base.image, registry: '127.0.0.1:${port}' }`,
  );
}, 120_000);
afterAll(async () => {
  await new Promise<void>((resolve) => registry.close(() => resolve()));
  rmSync(work, { recursive: true, force: true });
});
beforeEach(() => {
  scratch = mkdtempSync(join(tmpdir(), 'baseline-refusal-'));
});
afterEach(() => rmSync(scratch, { recursive: true, force: true }));

async function baseline(...args: string[]) {
  const before = requests;
  const results = join(scratch, 'results');
  const argv = [
    'benchmark',
    '--profile=baseline-refusal',
    `--results-dir=${results}`,
    `--source=${sandstoreSource()}`,
    ...args,
  ];
  const r = await runEntry('lib/runner/cli.ts', argv, { cwd: work, env: { TMPDIR: scratch } });
  const started = readdirSync(scratch).filter((f) => f.startsWith('sandstore-baseline-'));
  return { ...r, asked: requests - before, started, recorded: existsSync(join(results, 'baseline-refusal')) };
}

const CLASHES: [string[], string][] = [
  [['--compare'], '--compare compares recorded runs'],
  [['--fresh'], '--fresh deploys on the cluster'],
  [['--profiles=local,local-node'], '--profiles runs a study on the cluster'],
  [['--repeat=2'], '--repeat belongs to a study'],
  [['--resume=results/studies/x'], '--resume continues a study'],
  [['--include-invalid', '--out=x'], 'cannot go with --include-invalid, --out'],
  [['--context=sandstore-local'], '--context names a cluster, and the baseline uses none'],
  [['--break-lock'], "--break-lock takes a cluster's lock"],
  [['local-node'], 'unexpected argument local-node: --baseline takes the profile from --profile'],
];

test.each(CLASHES)(
  '--baseline=processes with %j is refused, exit 2, naming the option; no registry request, no process, no record',
  async (extra, said) => {
    const r = await baseline('--baseline=processes', ...extra);
    expect({ code: r.code, asked: r.asked, started: r.started, recorded: r.recorded }).toEqual({
      code: 2,
      asked: 0,
      started: [],
      recorded: false,
    });
    expect(r.stderr).toMatch(/^error: --baseline=processes cannot go with |^error: unexpected argument/);
    expect(r.stderr).toContain(said);
    expect(r.stderr).toContain('Nothing was started.');
    expect(r.stderr).not.toMatch(STACK_FRAME);
  },
);

test('an unknown kind of baseline is refused naming the value and the accepted one', async () => {
  const r = await baseline('--baseline=docker-compose');
  expect({ code: r.code, asked: r.asked, started: r.started }).toEqual({ code: 2, asked: 0, started: [] });
  expect(r.stderr).toContain(
    "option '--baseline <kind>' argument 'docker-compose' is invalid. Allowed choices are processes.",
  );
});

test("the control: without a clash the baseline asks the profile's registry (which knows no image), fails saying so, and starts nothing", async () => {
  const r = await baseline('--baseline=processes', '--duration=1');
  expect(r.stderr).toContain(
    `the registry answered 404 for http://127.0.0.1:${port}/v2/sandstore-node/manifests/local-node-latest`,
  );
  expect(r.stderr).toContain('Is 127.0.0.1:');
  expect(r.asked).toBeGreaterThan(0);
  expect(r.code).toBe(1);
  expect({ started: r.started, recorded: r.recorded }).toEqual({ started: [], recorded: false });
  expect(r.stderr).not.toMatch(STACK_FRAME);
});
