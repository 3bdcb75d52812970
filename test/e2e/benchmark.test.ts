import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, inflateSync } from 'node:zlib';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { buildDriver } from '../../lib/benchmark/driver-build.js';
import { DriverSummary, OPERATIONS, RunRecord } from '../../lib/benchmark/record.js';
import { Component, componentSelector } from '../../lib/labels.js';
import type { Pod } from '../../lib/runner/kube.js';
import {
  CONTEXT,
  expectExit,
  kubeFor,
  nodeMountOf,
  projectWithVariant,
  root,
  runCli,
  sandstoreSource,
} from './harness.js';
import { checkCsvAndHistograms } from './run-files.js';

/**
 * `npm run benchmark` on the real node: the local-node profile measured from this machine through
 * its node ports by the project's load driver, twice, then once interrupted and once with the
 * leader's pod deleted under it, then compared. What the command recorded is checked against what
 * did not come from it: the histograms decoded by another HdrHistogram implementation, the closed
 * loop's own arithmetic, and the API server's view of pods, images and nodes.
 */
const PROFILE = 'local-node';
const NAMESPACE = 'sandstore-node';
const kube = kubeFor();
const results = mkdtempSync(join(tmpdir(), 'benchmark-e2e-'));
/** Short phases: the point is the record, not the numbers. */
const SHORT = ['--duration=3', '--warmup=1', '--concurrency=2'];
const source = `--source=${sandstoreSource()}`;
const bench = (...args: string[]) =>
  runCli(['benchmark', `--profile=${PROFILE}`, source, `--results-dir=${results}`, '--timeout=240', ...args]);
const runDirs = () =>
  existsSync(join(results, PROFILE))
    ? readdirSync(join(results, PROFILE))
        .sort()
        .map((d) => join(results, PROFILE, d))
    : [];
const readRecord = (dir: string) => RunRecord.parse(JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')));
const readSummary = (dir: string) => DriverSummary.parse(JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')));
const recorded: string[] = [];

beforeAll(async () => {
  // The first build of the driver compiles Sand Store's client library (minutes, cold): done here,
  // with its own deadline, so that the first test measures and does not wait on a compiler.
  await buildDriver({ source: sandstoreSource() });
}, 600_000);

afterAll(async () => {
  await runCli(['destroy', `--profile=${PROFILE}`, '--timeout=120']);
});

test('a fresh benchmark of the local profile records every operation, uncapped, with no errors, and a run.json that matches the cluster', async () => {
  const r = await bench('--fresh', ...SHORT);
  expectExit(r, 0);
  expect(r.stdout).toMatch(/gate: leader sandstore-\d \(term \d+\)/);
  expect(runDirs()).toHaveLength(1);
  const dir = runDirs()[0];
  recorded.push(dir);
  checkCsvAndHistograms(dir, 2);
  await checkRecordAgainstCluster(dir);
});

test('a second run is recorded beside the first, never over it', async () => {
  const r = await bench(...SHORT);
  expectExit(r, 0);
  expect(runDirs()).toHaveLength(2);
  const dir = runDirs()[1];
  expect(dir).not.toBe(recorded[0]);
  recorded.push(dir);
  checkCsvAndHistograms(dir, 2);
  expect(readRecord(recorded[0]).status).toBe('valid');
});

test('Ctrl-C during a run stops the driver, keeps what was measured, marks the run interrupted and exits 130', async () => {
  let sent = false;
  const r = await runCli(
    [
      'benchmark',
      `--profile=${PROFILE}`,
      source,
      `--results-dir=${results}`,
      '--duration=20',
      '--warmup=0',
      '--ops=stat,listdir',
    ],
    {
      onStdout: (text, child) => {
        if (sent || !/stat 1\/2 measure/.test(text)) return;
        sent = true;
        setTimeout(() => child.kill('SIGINT'), 1500);
      },
    },
  );
  expectExit(r, 130);
  const dir = runDirs()[2];
  const record = readRecord(dir);
  expect(record.status).toBe('interrupted');
  const summary = readSummary(dir);
  expect(summary.interrupted).toBe(true);
  expect(summary.phases.map((p) => [p.operation, p.complete])).toEqual([['stat', false]]);
  expect(summary.phases[0].ok_ops).toBeGreaterThan(0);
  expect(summary.phases[0].measured_s).toBeLessThan(20);
});

test("a run during which the leader's pod is deleted is kept, marked invalid with the reason, and exits 1", async () => {
  let leader: string | undefined;
  const r = await runCli(
    [
      'benchmark',
      `--profile=${PROFILE}`,
      source,
      `--results-dir=${results}`,
      '--duration=8',
      '--warmup=1',
      '--concurrency=2',
      '--ops=stat,listdir',
      '--timeout=240',
    ],
    {
      onStdout: (text) => {
        if (leader || !/stat 1\/2 measure/.test(text)) return;
        leader = /gate: leader (sandstore-\d)/.exec(text)?.[1];
        if (leader) void kube.delete('Pod', leader, NAMESPACE);
      },
    },
  );
  expect(leader).toBeDefined();
  expectExit(r, 1);
  expect(r.stderr).toContain('marked invalid');
  const dir = runDirs()[3];
  recorded.push(dir);
  const record = readRecord(dir);
  expect(record.status).toBe('invalid');
  expect(record.reasons.join('\n')).toContain(`pod ${leader} was replaced`);
  expect(record.leadership.before.leader).toBe(leader);
});

test('--compare writes a Markdown table across the runs, the invalid one marked and left out, and a chart as SVG and PNG', async () => {
  const out = join(results, 'cmp');
  const r = await runCli(['benchmark', '--compare', ...recorded, `--out=${out}`]);
  expectExit(r, 0);
  const markdown = readFileSync(join(out, 'comparison.md'), 'utf8');
  for (const op of OPERATIONS) expect(markdown).toMatch(new RegExp(`\\|\\s*${op}\\s*\\|`));
  const invalid = readRecord(recorded[2]);
  expect(markdown).toContain(invalid.id);
  expect(markdown).toMatch(/invalid/);
  const svg = readFileSync(join(out, 'chart.svg'), 'utf8');
  expect(XMLValidator.validate(svg)).toBe(true);
  const root = (new XMLParser({ ignoreAttributes: false }).parse(svg) as { svg: Record<string, string> }).svg;
  const png = decodePng(readFileSync(join(out, 'chart.png')));
  expect(png.width / png.height).toBeCloseTo(
    Number.parseFloat(root['@_width']) / Number.parseFloat(root['@_height']),
    2,
  );
});

test('with the profile destroyed, a benchmark says it is not deployed, exits 1 and records nothing', async () => {
  expectExit(await runCli(['destroy', `--profile=${PROFILE}`, '--timeout=120']), 0);
  const before = runDirs();
  const r = await bench(...SHORT);
  expectExit(r, 1);
  expect(r.stderr).toContain(`profile ${PROFILE} is not deployed`);
  expect(r.stderr).not.toMatch(/^\s+at /m);
  expect(runDirs()).toEqual(before);
});

test('a node port this machine cannot reach stops the run before it measures, naming the address, clientAccess and the node', async () => {
  // The pods advertised at 127.0.0.1, where nothing listens on the host (the node ports live in the
  // real node's network namespace, at its own address).
  const work = projectWithVariant(
    PROFILE,
    'unreachable-node',
    `namespace: 'sandstore-unreachable-node', storage: { ...base.storage, className: 'sandstore-unreachable-ssd' },
  clientAccess: { nodePortBase: 30680, advertiseHost: '127.0.0.1' }`,
  );
  try {
    const r = await runCli(
      ['benchmark', '--profile=unreachable-node', '--fresh', source, `--results-dir=${results}`, ...SHORT],
      { cwd: work },
    );
    expectExit(r, 1);
    expect(r.stderr).toContain('node ports not reachable from this machine within 30s: ');
    // Leader first, whichever pod leads: each address is named with its pod and the refusal.
    for (const i of [0, 1, 2]) expect(r.stderr).toContain(`127.0.0.1:3068${i} (sandstore-${i}): connect ECONNREFUSED`);
    expect(r.stderr).toContain('clientAccess: nodePortBase 30680, advertiseHost 127.0.0.1');
    expect(r.stderr).toMatch(new RegExp(`the pods run on node ${CONTEXT}-node \\(InternalIP 10\\.213\\.\\d+\\.2\\)`));
    expect(existsSync(join(results, 'unreachable-node'))).toBe(false);
  } finally {
    expectExit(await runCli(['destroy', '--profile=unreachable-node'], { cwd: work }), 0);
  }
});

/** run.json against the API server's own answers and the files it names. */
async function checkRecordAgainstCluster(dir: string): Promise<void> {
  const record = readRecord(dir);
  expect(record.status).toBe('valid');
  expect(record.reasons).toEqual([]);
  expect(record.profile.name).toBe(PROFILE);
  expect(record.leadership.after).toEqual(record.leadership.before);
  expect(record.driver.options.seeds).toHaveLength(3);
  const hash = createHash('sha256');
  const dist = join(root, 'dist', PROFILE);
  for (const name of readdirSync(dist)
    .filter((n) => !n.startsWith('.'))
    .sort())
    hash
      .update(`${name}\0`)
      .update(readFileSync(join(dist, name)))
      .update('\0');
  expect(record.profile.distDigest).toBe(`sha256:${hash.digest('hex')}`);
  const pods = (
    await kube.list('Pod', { namespace: NAMESPACE, labelSelector: componentSelector(PROFILE, Component.dataPlane) })
  ).items;
  for (const pod of pods) {
    const inRecord = record.cluster.pods.find((p) => p.name === pod.metadata.name);
    const ids = (pod.status?.containerStatuses ?? []).map((c) => [c.name, c.imageID]).sort();
    expect(inRecord?.containers.map((c) => [c.name, c.imageID]).sort()).toEqual(ids);
    expect(ids.every(([, id]) => /sha256:[0-9a-f]{64}/.test(id))).toBe(true);
    expect(inRecord?.node).toBe(pod.spec?.nodeName);
  }
  const node = await kube.get('Node', pods[0]?.spec?.nodeName ?? '');
  const nodeInRecord = record.cluster.nodes.find((n) => n.name === node.metadata.name);
  expect(nodeInRecord).toMatchObject({
    kernelVersion: node.status?.nodeInfo?.kernelVersion,
    osImage: node.status?.nodeInfo?.osImage,
    cpu: node.status?.capacity?.cpu,
    memory: node.status?.capacity?.memory,
  });
  expect(record.sandstore.contentDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
  expect(record.project.revision).toMatch(/^[0-9a-f]{40}$/);
  await checkServerSide(record, pods);
}

/**
 * The servers' side against what did not come from the command: each pod's data volume against
 * the file system the node's own findmnt reports under its claim's directory, its CPU limit against
 * the pod spec, and Sand Store's count of create calls against the driver's.
 */
async function checkServerSide(record: RunRecord, pods: Pod[]): Promise<void> {
  expect(record.server?.pods.map((p) => p.name).sort()).toEqual(pods.map((p) => p.metadata.name).sort());
  for (const pod of pods) {
    const inRecord = record.server!.pods.find((p) => p.name === pod.metadata.name)!;
    expect(inRecord.unavailable).toEqual([]);
    const claim = pod.spec?.volumes?.find((v) => v.persistentVolumeClaim)?.persistentVolumeClaim?.claimName ?? '';
    const pv = await kube.get(
      'PersistentVolume',
      (await kube.get('PersistentVolumeClaim', claim, NAMESPACE)).spec?.volumeName ?? '',
    );
    const [fsType, source] = nodeMountOf(pv.spec?.hostPath?.path ?? pv.spec?.local?.path ?? '');
    expect({ pod: pod.metadata.name, fsType: inRecord.volume?.fsType, source: inRecord.volume?.source }).toEqual({
      pod: pod.metadata.name,
      fsType,
      source: source.replace(/\[.*$/, ''),
    });
    const limit = pod.spec?.containers.find((c) => c.name === 'sandstore')?.resources?.limits?.cpu ?? '';
    expect(inRecord.cpu?.limitCores).toBe(limit.endsWith('m') ? Number(limit.slice(0, -1)) / 1000 : Number(limit));
    expect(inRecord.cpu!.usageSeconds).toBeGreaterThan(0);
    expect(inRecord.cpu!.periods).toBeGreaterThan(0);
  }
  // The servers saw at least the calls the driver counted (the warm-up's too, so not fewer).
  const creates = record.server!.components.find(
    (c) => c.component === 'hyperconverged_server' && c.operation === 'handle_create',
  );
  const driverCreates = readSummary(join(results, record.id)).phases.find((p) => p.operation === 'create')!.ok_ops;
  expect(creates?.calls).toBeGreaterThanOrEqual(driverCreates);
}

/** A PNG decoded far enough to know it is whole: chunk CRCs, and IDAT inflating to height rows of width pixels. */
function decodePng(png: Buffer): { width: number; height: number } {
  expect(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
  const idat: Buffer[] = [];
  let header: Buffer | undefined;
  for (let at = 8; at < png.length;) {
    const length = png.readUInt32BE(at);
    const type = png.subarray(at + 4, at + 8).toString('latin1');
    const data = png.subarray(at + 8, at + 8 + length);
    expect(png.readUInt32BE(at + 8 + length)).toBe(crc32(png.subarray(at + 4, at + 8 + length)));
    if (type === 'IHDR') header = data;
    if (type === 'IDAT') idat.push(data);
    at += 12 + length;
  }
  const width = header!.readUInt32BE(0);
  const height = header!.readUInt32BE(4);
  const channels = ({ 0: 1, 2: 3, 4: 2, 6: 4 } as Record<number, number>)[header![9]] ?? 1;
  const bytesPerPixel = (channels * header![8]) / 8;
  expect(inflateSync(Buffer.concat(idat)).length).toBe(height * (1 + width * bytesPerPixel));
  return { width, height };
}
