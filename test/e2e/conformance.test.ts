import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONFORMANCE_NAME } from '../../lib/conformance/objects.js';
import { Component, componentSelector, LabelKeys } from '../../lib/labels.js';
import { objectsOf, waitFor } from '../../lib/runner/watch.js';
import {
  auditLog,
  type AuditEntry,
  type CliResult,
  deployedDuringSuite,
  expectExit,
  kubeFor,
  podReady,
  runCli,
  runnerRequests,
  sandstoreSource,
} from './harness.js';

/**
 * `conformance` on the real node: Sand Store's own cluster tests (integration/cluster, built from the
 * checkout) in a Job against `local-node`. Sand Store 7ab6010 passes all but two subtests of
 * TestDurabilitySmoke, which fail by its design (docs/leader-access.md#what-still-fails): the verdicts
 * are asserted one by one, each failure with its documented cause, so that a change either way is
 * noticed. Afterwards nothing the command wrote is left (listed from the API server) and the
 * StatefulSet is back at 3 Ready pods, after a failure, a pod that never starts and Ctrl-C alike; a
 * checkout without the tests is refused with no request, as the API server's audit log shows.
 */
const PROFILE = 'local-node';
const NAMESPACE = 'sandstore-node';
const kube = kubeFor();
const source = sandstoreSource();

deployedDuringSuite(PROFILE);

beforeAll(() => {
  if (!existsSync(auditLog()))
    throw new Error(`the API server's audit log ${auditLog()} is missing: start the cluster with up.sh`);
});

/** The command with the runner's requests the audit log saw meanwhile. */
async function conformance(
  args: string[],
  opts: Parameters<typeof runCli>[1] = {},
): Promise<{ r: CliResult; requests: AuditEntry[] }> {
  // No margin before: the deploy before the first test ends right before it (its lock's release).
  const started = Date.now();
  const r = await runCli(['conformance', `--profile=${PROFILE}`, ...args], opts);
  return { r, requests: await runnerRequests(started, Date.now() + 100) };
}

/** The verdict lines of the command's summary: "<indent>VERDICT name", and the cause lines beneath each failure. */
function verdicts(output: string): { tests: string[]; text: string } {
  const summary = output.slice(output.indexOf('\nverdicts\n'));
  const tests = summary
    .split('\n')
    .map((l) => /^ {2}(\s*)(PASS|FAIL|SKIP) (\S+) \(/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => `${m[1]}${m[2]} ${m[3]}`);
  return { tests, text: summary };
}

/** Nothing labelled as conformance's, nor named as its objects, in the namespace; the data plane whole again. */
async function expectNothingLeft(): Promise<void> {
  const selector = `${LabelKeys.component}=${Component.conformance}`;
  for (const kind of ['Job', 'Pod', 'ServiceAccount', 'Role', 'RoleBinding']) {
    const items = (await kube.list(kind, { namespace: NAMESPACE, labelSelector: selector })).items;
    expect({ kind, left: items.map((o) => o.metadata.name) }).toEqual({ kind, left: [] });
    if (kind !== 'Pod') expect(await kube.find(kind, CONFORMANCE_NAME, NAMESPACE)).toBeUndefined();
  }
  const sts = await kube.get('StatefulSet', 'sandstore', NAMESPACE);
  expect(sts.spec?.replicas).toBe(3);
  const pods = await kube.list('Pod', {
    namespace: NAMESPACE,
    labelSelector: componentSelector(PROFILE, Component.dataPlane),
  });
  expect(pods.items.filter(podReady).length).toBe(3);
}

/** Every write of the runner went to what it wrote, the StatefulSet's replicas put back, or its lock. */
function expectOnlyOwnWrites(requests: readonly AuditEntry[]): void {
  const writes = requests.filter((e) => !['get', 'list', 'watch'].includes(e.verb));
  const targets = new Set(writes.map((e) => `${e.objectRef?.resource}/${e.objectRef?.name ?? ''}`));
  for (const t of targets) {
    expect(t).toMatch(
      /^(jobs|serviceaccounts|roles|rolebindings)\/sandstore-conformance$|^statefulsets\/sandstore$|^leases\//,
    );
  }
}

test('a checkout without integration/cluster is refused with no request sent', async () => {
  const checkout = mkdtempSync(join(tmpdir(), 'conformance-no-tests-'));
  writeFileSync(join(checkout, 'go.mod'), 'module github.com/AnishMulay/sandstore\n\ngo 1.24\n');
  mkdirSync(join(checkout, 'integration'));
  const { r, requests } = await conformance([`--source=${checkout}`]);
  expectExit(r, 2);
  expect(r.stderr).toContain(`error: --source: ${checkout} has no integration/cluster (Sand Store's cluster tests)`);
  expect(requests).toEqual([]);
}, 60_000);

/** The lines a failed test logged, as the summary prints them beneath its verdict. */
function causeOf(text: string, name: string): string {
  const lines = text.split('\n');
  const at = lines.findIndex((l) => new RegExp(`^ {2}\\s*FAIL ${name} \\(`).test(l));
  if (at < 0) return '';
  const after = lines.slice(at + 1);
  const end = after.findIndex((l) => !/^ {9}/.test(l));
  return after.slice(0, end < 0 ? undefined : end).join('\n');
}

/**
 * Sand Store 7ab6010 may serve a read right after an acknowledged overwrite from the chunk's
 * previous version (docs/leader-access.md#what-still-fails; about 3% of TestOpenSmoke's sequences
 * on the real node, bench/stale-read.ts): TestOpenSmoke then fails with exactly that read, its first
 * payload without the appended one. Any other failure of it is not this race.
 */
const STALE_READ = 'read mismatch: expected "hello, sandstore + appended", got "hello, sandstore"';

test("upstream's cluster tests: every test passes but the two subtests Sand Store 7ab6010 fails by design, each with its documented cause; nothing is left", async () => {
  const { r, requests } = await conformance([`--source=${source}`]);
  expectExit(r, 1);
  // The tests' own output, streamed.
  expect(r.stdout).toContain('=== RUN   TestLeaderElectionReady');
  const { tests, text } = verdicts(r.stdout);
  // Upstream's read race is the one way TestOpenSmoke may fail; its cause is asserted, not assumed.
  const staleRead = causeOf(text, 'TestOpenSmoke').includes(STALE_READ);
  if (staleRead) console.log(`TestOpenSmoke met Sand Store's stale read:\n${causeOf(text, 'TestOpenSmoke')}`);
  expect(tests).toEqual([
    'PASS TestLeaderElectionReady',
    staleRead ? 'FAIL TestOpenSmoke' : 'PASS TestOpenSmoke',
    'FAIL TestDurabilitySmoke',
    '  PASS DataSurvivesFullClusterRestart',
    '  FAIL InterruptedCreateRecoversAfterLeaderDeletion',
    '  FAIL ScaledDownNodeRejoinsAfterSnapshotPressure',
  ]);
  // The leader's pod name is read from a node-port address: `kubectl delete pod 10`.
  expect(causeOf(text, 'InterruptedCreateRecoversAfterLeaderDeletion')).toMatch(/^[^\n]*kubectl delete pod 10 /);
  // At 2 nodes every chunk write fails: each chunk's 3 nodes are the first 3 by ID, gone or not.
  expect(causeOf(text, 'ScaledDownNodeRejoinsAfterSnapshotPressure')).toMatch(/^[^\n]*1\/3 prepare RPCs failed/);
  expect(text).toContain(staleRead ? '2 passed, 4 failed, 0 skipped' : '3 passed, 3 failed, 0 skipped');
  expect(r.stderr).toContain(
    'error: cluster tests failed against profile local-node: ' +
      (staleRead ? 'TestOpenSmoke, ' : '') +
      'TestDurabilitySmoke, ' +
      'TestDurabilitySmoke/InterruptedCreateRecoversAfterLeaderDeletion, ' +
      'TestDurabilitySmoke/ScaledDownNodeRejoinsAfterSnapshotPressure',
  );
  // The command tells a user so; it never says so of a failure that is not the race.
  const hint = "TestOpenSmoke: this is a race in Sand Store 7ab6010's chunk commit, not the deployment";
  if (staleRead) expect(r.stderr).toContain(hint);
  else expect(r.stderr).not.toContain('race in Sand Store');
  // The failed scale-down test leaves 2 replicas; the command puts back the 3 it found.
  expect(r.stdout).toContain('the tests left StatefulSet sandstore at 2 replicas; back at 3, all Ready');
  await expectNothingLeft();
  expectOnlyOwnWrites(requests);
}, 1_500_000);

test('an image that does not exist: the command fails within its bounded wait with the pull error, and removes what it wrote', async () => {
  const started = Date.now();
  const { r, requests } = await conformance([
    '--test-image=localhost:5000/sandstore-cluster-tests:does-not-exist',
    '--start-timeout=90',
  ]);
  expectExit(r, 1);
  expect(r.stderr).toMatch(
    /error: the tests never started: pod sandstore-conformance-\S+ container cluster-tests: (ErrImagePull|ImagePullBackOff) \([^)]*not found/,
  );
  expect(Date.now() - started).toBeLessThan(90_000 + 60_000);
  await expectNothingLeft();
  expectOnlyOwnWrites(requests);
}, 300_000);

test('Ctrl-C once the tests have scaled the StatefulSet to zero: exit 130, the Job and its permissions removed, the 3 replicas back', async () => {
  let child: ChildProcess | undefined;
  const running = conformance([`--source=${source}`, '--run=^TestDurabilitySmoke$'], {
    onSpawn: (c) => (child = c),
  });
  // What the tests do, seen from the API server: DataSurvivesFullClusterRestart's scale to zero.
  await waitFor(
    kube,
    [{ key: 'sts', kind: 'StatefulSet', namespace: NAMESPACE, fieldSelector: 'metadata.name=sandstore' }],
    {
      what: 'the tests to scale StatefulSet sandstore to zero',
      timeoutSeconds: 600,
      check: (s) => (objectsOf(s, 'sts', 'StatefulSet')[0]?.spec?.replicas === 0 ? true : undefined),
    },
  );
  child!.kill('SIGINT');
  const { r, requests } = await running;
  expectExit(r, 130);
  expect(r.stderr).toContain('The test Job and its permissions were removed');
  expect(r.stdout).toContain('the tests left StatefulSet sandstore at 0 replicas; back at 3, all Ready');
  await expectNothingLeft();
  expectOnlyOwnWrites(requests);
}, 900_000);

test("a pod the scheduler cannot place (the real node cordoned): the command fails at --start-timeout with the scheduler's reason, and removes what it wrote", async () => {
  const [node] = (await kube.list('Node', { labelSelector: 'node.sandstore.io/runtime=containerd' })).items;
  await kube.mergePatch('Node', node.metadata.name, undefined, { spec: { unschedulable: true } });
  let r: CliResult;
  try {
    r = (await conformance(['--test-image=localhost:5000/sandstore-cluster-tests:unused', '--start-timeout=20'])).r;
  } finally {
    await kube.mergePatch('Node', node.metadata.name, undefined, { spec: { unschedulable: null } });
  }
  expectExit(r, 1);
  expect(r.stderr).toMatch(
    /error: the tests did not start within 20s: pod sandstore-conformance-\S+ cannot be scheduled \(FailedScheduling\): 0\/\d+ nodes are available: [^\n]*1 node\(s\) were unschedulable/,
  );
  await expectNothingLeft();
}, 300_000);

test('a profile that is not deployed fails in one sentence naming what is missing', async () => {
  const r = await runCli(['conformance', '--profile=local-node-ext4', `--source=${source}`]);
  expectExit(r, 1);
  expect(r.stderr).toContain(
    'error: profile local-node-ext4 is not deployed: no StatefulSet sandstore in namespace sandstore-node-ext4',
  );
}, 120_000);
