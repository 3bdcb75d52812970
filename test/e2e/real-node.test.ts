import { expect } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { Pod } from '../../lib/runner/kube.js';
import { objectsOf, waitFor } from '../../lib/runner/watch.js';
import { LabelKeys, profileSelector } from '../../lib/labels.js';
import {
  buildSandstoreFiles,
  type CliResult,
  clusterEnv,
  CONTEXT,
  expectExit,
  kubeFor,
  onNode,
  podReady,
  projectWithVariant,
  runCli,
  runnerRequests,
} from './harness.js';
import { rolledOutSince } from './harness.js';
import { chunkCommitRace } from '../../lib/runner/chunk-commit-race.js';
import { currentLeader as newestLeader, roleChanges as roleChangesOf } from '../../lib/runner/leader.js';
import { isStaleRead, type ChurnReport } from './roll-under-load.js';

/**
 * The `local-node` profile on the local cluster's real node (kubelet + containerd, see
 * scripts/local-cluster/node.sh): deployed by the runner as an operator would, then read back
 * without trusting the runner's output: from the API server, from containerd, from /proc and from
 * the node's disk.
 */
const PROFILE = 'local-node';
const NAMESPACE = 'sandstore-node';
const kube = kubeFor();
const env = clusterEnv();
/** Stops or removes what a test started (a client, a profile), even when the test failed half-way. */
let stopAfterTest: (() => unknown) | undefined;
afterEach(async () => {
  await stopAfterTest?.();
  stopAfterTest = undefined;
});
/** The claims' directories the destroy test removed, for the deploy after it. */
let destroyedDirectories = new Map<string, string>();
const ctr = (...args: string[]) =>
  execFileSync('ctr', ['--address', env.CONTAINERD_SOCK, '--namespace', 'k8s.io', ...args], { encoding: 'utf8' });
const profilePods = async () =>
  (await kube.list('Pod', { namespace: NAMESPACE, labelSelector: profileSelector(PROFILE) })).items.sort((a, b) =>
    a.metadata.name.localeCompare(b.metadata.name),
  );

/** Claim name → the directory on the node's disk that backs it, reached through the node's mount namespace. */
async function claimDirectories(): Promise<Map<string, string>> {
  const claims = (
    await kube.list('PersistentVolumeClaim', { namespace: NAMESPACE, labelSelector: profileSelector(PROFILE) })
  ).items;
  const dirs = new Map<string, string>();
  for (const c of claims) {
    expect({ claim: c.metadata.name, phase: c.status?.phase }).toEqual({ claim: c.metadata.name, phase: 'Bound' });
    const pv = await kube.get('PersistentVolume', c.spec?.volumeName ?? '');
    dirs.set(c.metadata.name, onNode(pv.spec?.hostPath?.path ?? ''));
  }
  return dirs;
}

/** Role changes Sand Store logged in each node's event log, read from the claims on the node's disk. */
function roleChangesOnDisk(dirs: Map<string, string>) {
  return [0, 1, 2].flatMap((i) => {
    const log = join(dirs.get(`data-sandstore-${i}`)!, 'logs', `sandstore-${i}.log`);
    return existsSync(log) ? roleChangesOf(`sandstore-${i}`, readFileSync(log, 'utf8')) : [];
  });
}

/** The current leader, from Sand Store's own event logs on the node's disk. */
const leaderOnDisk = async () => newestLeader(roleChangesOnDisk(await claimDirectories()));

/**
 * Waits (up to 60 s) until the event logs on disk show a current leader, elected in a term above
 * `term` when given; re-read every 250 ms, a file has no watch.
 */
async function awaitLeaderOnDisk(term = 0): Promise<string> {
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 250))) {
    const changes = roleChangesOnDisk(await claimDirectories());
    const leader = newestLeader(changes);
    if (leader && changes.some((c) => c.role === 'Leader' && c.term > term)) return leader;
  }
  throw new Error(`no leader${term > 0 ? ` elected above term ${term}` : ''} in the event logs on disk within 60 s`);
}

/** The newest Raft term in the event logs on disk. */
const newestTerm = async () => Math.max(0, ...roleChangesOnDisk(await claimDirectories()).map((c) => c.term));

/** The containerd id of a pod's Sand Store container (for ctr, in the node's containerd). */
const sandstoreContainerId = (pod: Pod) =>
  pod.status!.containerStatuses!.find((c) => c.name === 'sandstore')!.containerID!.replace(/^containerd:\/\//, '');

/**
 * Deletes a Sand Store pod and waits (by watch) until the StatefulSet controller has it back Ready
 * under the same name; returns the pod before and after.
 */
async function deletePodAndAwaitBack(victim: string): Promise<{ before: Pod; back: Pod }> {
  const before = await kube.get('Pod', victim, NAMESPACE);
  await kube.delete('Pod', victim, NAMESPACE);
  const back = await waitFor(
    kube,
    [{ key: 'pod', kind: 'Pod', namespace: NAMESPACE, fieldSelector: `metadata.name=${victim}` }],
    {
      what: `${victim} to come back Ready`,
      timeoutSeconds: 120,
      check: (snap) => objectsOf(snap, 'pod', 'Pod').find((p) => p.metadata.uid !== before.metadata.uid && podReady(p)),
    },
  );
  return { before, back };
}

test('the real node is a kubelet on containerd, not a kwok node', async () => {
  expect(env.NODE_NAME).toBeTruthy();
  const node = await kube.get('Node', env.NODE_NAME);
  expect(node.metadata.annotations?.['kwok.x-k8s.io/node']).toBeUndefined();
  expect(node.status?.nodeInfo?.containerRuntimeVersion).toMatch(/^containerd:\/\/1\.6\./);
  expect(node.status?.nodeInfo?.kubeletVersion).toBe('v1.28.15');
  expect(node.status?.addresses).toContainEqual({ type: 'InternalIP', address: env.NODE_IP });
  expect(node.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
});

test('deploy runs etcd, the membership Job and every Sand Store pod as real containers on the real node', async () => {
  const r = await runCli(['deploy', `--profile=${PROFILE}`, '--timeout=240']);
  expectExit(r, 0);

  const pods = await profilePods();
  const byComponent = (c: string) => pods.filter((p) => p.metadata.labels?.[LabelKeys.component] === c);
  expect(byComponent('control-plane').map((p) => p.metadata.name)).toEqual(['etcd-0']);
  expect(byComponent('data-plane').map((p) => p.metadata.name)).toEqual(['sandstore-0', 'sandstore-1', 'sandstore-2']);
  expect(byComponent('membership-bootstrap')).toHaveLength(1);
  const job = await kube.get('Job', 'sandstore-membership-bootstrap', NAMESPACE);
  expect(job.status?.succeeded).toBe(1);

  // containerd's own view: every container the API server reports exists there, with a process.
  const containers = new Set(ctr('containers', 'ls', '--quiet').split('\n').filter(Boolean));
  const tasks = new Map(
    ctr('tasks', 'ls')
      .split('\n')
      .slice(1)
      .filter(Boolean)
      .map((l) => {
        const [id, pid, status] = l.trim().split(/\s+/);
        return [id, { pid: Number(pid), status }] as const;
      }),
  );
  for (const pod of pods) {
    expect({ pod: pod.metadata.name, node: pod.spec?.nodeName }).toEqual({
      pod: pod.metadata.name,
      node: env.NODE_NAME,
    });
    for (const cs of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
      const id = /^containerd:\/\/([0-9a-f]{64})$/.exec(cs.containerID ?? '')?.[1];
      expect({ container: `${pod.metadata.name}/${cs.name}`, id: Boolean(id) }).toEqual({
        container: `${pod.metadata.name}/${cs.name}`,
        id: true,
      });
      expect(cs.imageID).toMatch(/^localhost:5000\/[a-z-]+@sha256:[0-9a-f]{64}$/);
      expect(containers.has(id!)).toBe(true);
    }
    if (pod.metadata.labels?.[LabelKeys.component] === 'membership-bootstrap') continue;
    expect({ pod: pod.metadata.name, ready: podReady(pod) }).toEqual({ pod: pod.metadata.name, ready: true });
    // The running process is the real program, seen through /proc on this machine.
    const main = pod.status?.containerStatuses?.find(
      (c) => c.name === (pod.metadata.name === 'etcd-0' ? 'etcd' : 'sandstore'),
    );
    const task = tasks.get(main?.containerID?.slice('containerd://'.length) ?? '');
    expect(task?.status).toBe('RUNNING');
    const exe = readlinkSync(`/proc/${task!.pid}/exe`);
    expect(exe).toBe(pod.metadata.name === 'etcd-0' ? '/usr/local/bin/etcd' : '/usr/local/bin/sandstore');
  }
});

test('the membership is in etcd whole, written in one transaction, and every Sand Store node waited for it before it started', async () => {
  // Read from etcd itself, through its JSON gateway, from a Sand Store pod (the network policy lets
  // the data plane reach etcd's client port), with the tools its wait-for-membership uses.
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const range = JSON.stringify({ key: b64('/sandstore/config/nodes/'), range_end: b64('/sandstore/config/nodes0') });
  const out = execFileSync(
    env.KUBECTL,
    ['--context', CONTEXT, '-n', NAMESPACE, 'exec', 'sandstore-0', '-c', 'events', '--'].concat([
      'wget',
      '-q',
      '-O',
      '-',
      '--post-data',
      range,
      'http://etcd-0.etcd.sandstore-node.svc:2379/v3/kv/range',
    ]),
    { encoding: 'utf8' },
  );
  const kvs = (JSON.parse(out) as { kvs: { key: string; value: string; mod_revision: string }[] }).kvs;
  const entries = kvs.map((kv) => ({
    key: Buffer.from(kv.key, 'base64').toString(),
    value: JSON.parse(Buffer.from(kv.value, 'base64').toString()) as unknown,
  }));
  expect(entries).toEqual(
    [0, 1, 2].map((i) => ({
      key: `/sandstore/config/nodes/sandstore-${i}`,
      value: { id: `sandstore-${i}`, address: `sandstore-${i}.sandstore-node.svc:8080`, role: 'voter' },
    })),
  );
  // One revision for all: no moment when a node could see its own key but not every other member's
  // (one etcdctl put per member, as the Job did before, gives each key a revision of its own).
  expect(new Set(kvs.map((kv) => kv.mod_revision)).size).toBe(1);
  // Each node's gate passed on its own key, and only then did Sand Store start (init containers run
  // to completion first): the node never ran against an etcd without the membership.
  for (const pod of (await profilePods()).filter((p) => p.metadata.labels?.[LabelKeys.component] === 'data-plane')) {
    const gate = pod.status?.initContainerStatuses?.find((c) => c.name === 'wait-for-membership');
    expect({ pod: pod.metadata.name, exit: gate?.state?.terminated?.exitCode }).toEqual({
      pod: pod.metadata.name,
      exit: 0,
    });
    const log = execFileSync(
      env.KUBECTL,
      ['--context', CONTEXT, '-n', NAMESPACE, 'logs', pod.metadata.name, '-c', 'wait-for-membership'],
      { encoding: 'utf8' },
    );
    // Through etcd's client Service: the gate starts with etcd, before etcd's pod has an address.
    expect(log).toContain(`membership of ${pod.metadata.name} found in etcd at etcd-client.sandstore-node.svc:2379`);
  }
});

test("every claim is a real directory on the node's disk holding the pod's data, and Raft elected exactly one leader", async () => {
  const dirs = await claimDirectories();
  expect([...dirs.keys()].sort()).toEqual(['data-etcd-0', 'data-sandstore-0', 'data-sandstore-1', 'data-sandstore-2']);
  for (const [claim, dir] of dirs) {
    expect({
      claim,
      underVolumesDir: dir.startsWith(onNode(`${env.NODE_VIEW_DIR}/volumes/`)),
      isDir: statSync(dir).isDirectory(),
    }).toEqual({ claim, underVolumesDir: true, isDir: true });
  }
  expect(readdirSync(dirs.get('data-etcd-0')!)).toContain('data');
  for (let i = 0; i < 3; i++) expect(existsSync(join(dirs.get(`data-sandstore-${i}`)!, 'state.db'))).toBe(true);
  // Sand Store writes its events to <DATA_DIR>/logs/<node-id>.log on the claim (the runtime
  // contract), a plain file with nothing to watch: re-read every 250 ms until a leader shows. Raft
  // may go through several terms while the pods start one by one (a later pod's election can
  // depose the first leader), so what must hold is Raft's own rule: at most one leader per term,
  // and exactly one node whose last transition is "Became Leader" in the newest term.
  const elections = () => {
    const changes = roleChangesOnDisk(dirs);
    const leadersPerTerm = new Map<number, string[]>();
    for (const c of changes.filter((c) => c.role === 'Leader'))
      leadersPerTerm.set(c.term, [...(leadersPerTerm.get(c.term) ?? []), c.pod]);
    return { leadersPerTerm, current: newestLeader(changes) };
  };
  for (const deadline = Date.now() + 30_000; !elections().current && Date.now() < deadline;)
    await new Promise((r) => setTimeout(r, 250));
  const { leadersPerTerm, current } = elections();
  expect(current).toBeDefined();
  for (const [term, leaders] of leadersPerTerm) expect({ term, leaders }).toEqual({ term, leaders: [leaders[0]] });
});

test("the node's network: cluster DNS, a ClusterIP Service, node ports from the host, and no way out", async () => {
  // A ClusterIP Service in front of Sand Store's metrics port (the profile's own Services are headless
  // or NodePort), and a pod on the real node that resolves and reaches it through kube-proxy's rules.
  // Metrics, not etcd: the profile's NetworkPolicies, enforced on the real node, let only Sand Store
  // and the membership Job reach etcd (test/e2e/network-policies.test.ts), and metrics any pod.
  const labels = { 'app.kubernetes.io/name': 'real-node-probe' };
  await kube.apply({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'probe-metrics', namespace: NAMESPACE, labels },
    spec: {
      selector: { 'app.kubernetes.io/name': 'sandstore', [LabelKeys.component]: 'data-plane' },
      ports: [{ port: 12112, targetPort: 2112 }],
    },
  });
  const script = [
    'set -e',
    'wget -q -O /dev/null http://sandstore-0.sandstore-headless:2112/metrics', // <pod>.<headless service>
    'wget -q -O /dev/null http://probe-metrics.sandstore-node.svc:12112/metrics', // <svc>.<ns>.svc, ClusterIP
    'if nslookup example.com >/dev/null 2>&1; then echo "example.com resolved"; exit 1; fi', // no forwarding
    'echo probe-ok',
  ].join('\n');
  const security = {
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
    runAsNonRoot: true,
    runAsUser: 65532,
    seccompProfile: { type: 'RuntimeDefault' },
  };
  await kube.apply({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'real-node-probe', namespace: NAMESPACE, labels },
    spec: {
      restartPolicy: 'Never',
      automountServiceAccountToken: false,
      nodeSelector: { 'node.sandstore.io/runtime': 'containerd' },
      tolerations: [{ key: 'node.sandstore.io/runtime', operator: 'Equal', value: 'containerd', effect: 'NoSchedule' }],
      containers: [
        {
          name: 'probe',
          image: 'localhost:5000/sandstore-node:local-node-latest',
          command: ['sh', '-c', script],
          securityContext: security,
        },
      ],
    },
  });
  try {
    const done = await waitFor(
      kube,
      [{ key: 'pod', kind: 'Pod', namespace: NAMESPACE, fieldSelector: 'metadata.name=real-node-probe' }],
      {
        timeoutSeconds: 60,
        what: 'the probe pod to finish',
        check: (snap) =>
          objectsOf(snap, 'pod', 'Pod').find((p) => ['Succeeded', 'Failed'].includes(p.status?.phase ?? '')),
      },
    );
    const log: string = await kube.request('GET', '/api/v1/namespaces/sandstore-node/pods/real-node-probe/log', {
      raw: true,
    });
    expect({ phase: done.status?.phase, log }).toEqual({
      phase: 'Succeeded',
      log: expect.stringContaining('probe-ok'),
    });
  } finally {
    await kube.delete('Pod', 'real-node-probe', NAMESPACE);
    await kube.delete('Service', 'probe-metrics', NAMESPACE);
  }

  // From the host, as the operator's laptop: every node port reaches a listening Sand Store.
  for (const port of [30380, 30381, 30382]) {
    await new Promise<void>((resolve, reject) => {
      const socket = connect({ host: env.NODE_IP, port, timeout: 3000 }, () => {
        socket.end();
        resolve();
      });
      socket.on('error', (err) => reject(new Error(`node port ${env.NODE_IP}:${port}: ${err.message}`)));
      socket.on('timeout', () => reject(new Error(`node port ${env.NODE_IP}:${port}: timed out`)));
    });
  }
  // The node's namespace has no default route: nothing a pod sends can leave the machine.
  const routes = execFileSync('nsenter', [`--net=/run/netns/${env.NODE_NETNS}`, 'ip', '-4', 'route', 'show'], {
    encoding: 'utf8',
  });
  expect(routes).not.toMatch(/^default/m);
});

test("logs follows Sand Store's events of every pod from its log file, leader election included", async () => {
  const seen = new Set<string>();
  let election = '';
  const r = await runCli(['logs', `--profile=${PROFILE}`], {
    interruptAfterMs: 60_000,
    onStdout: (text, child) => {
      for (const m of text.matchAll(/^(sandstore-\d)\s+\| .*\[\1\] INFO: /gm)) seen.add(m[1]);
      election ||= /^(sandstore-\d)\s+\| .*Became Leader.*$/m.exec(text)?.[0] ?? '';
      if (seen.size === 3 && election && !child.killed) child.kill('SIGINT');
    },
  });
  expect(r.code).toBe(0);
  expect([...seen].sort()).toEqual(['sandstore-0', 'sandstore-1', 'sandstore-2']);
  // Sand Store writes an event's fields in Go's map order, which varies from line to line.
  expect(election).toMatch(/INFO: Became Leader .*\bterm=\d+/);
  expect(election).toMatch(/INFO: Became Leader .*\bnodeID=sandstore-\d\b/);
});

test('an update to an image that crashes at start pauses with one follower on it; its previous logs are the real crash; a good image completes the roll', async () => {
  const pods = async () =>
    (await profilePods()).filter((p) => p.metadata.labels?.[LabelKeys.component] === 'data-plane');
  const before = await pods();
  const leader = await awaitLeaderOnDisk();
  const r = await runCli([
    'update',
    `--profile=${PROFILE}`,
    '--image=localhost:5000/sandstore-node:local-node-crash',
    '--pod-ready-timeout=90',
    '--timeout=180',
  ]);
  expectExit(r, 1);
  const sts = await kube.get('StatefulSet', 'sandstore', NAMESPACE);
  expect(sts.spec?.updateStrategy?.type).toBe('OnDelete');
  const after = await pods();
  const onNew = after.filter((p) => p.metadata.labels!['controller-revision-hash'] === sts.status?.updateRevision);
  // Exactly one pod on the new revision, a follower (the leader goes last); the others untouched.
  expect(onNew).toHaveLength(1);
  const crashing = onNew[0].metadata.name;
  expect(crashing).not.toBe(leader);
  expect(r.stderr).toContain(`paused at pod ${crashing}`);
  for (const p of after.filter((q) => q.metadata.name !== crashing)) {
    const was = before.find((q) => q.metadata.name === p.metadata.name);
    expect({ pod: p.metadata.name, uid: p.metadata.uid, ready: podReady(p) }).toEqual({
      pod: was?.metadata.name,
      uid: was?.metadata.uid,
      ready: true,
    });
  }
  const crashed = onNew[0].status?.containerStatuses?.find((c) => c.name === 'sandstore');
  expect(crashed?.restartCount).toBeGreaterThan(0);

  // The real program's own words, from the kubelet's log of the container that died.
  const previous = await runCli(['logs', `--profile=${PROFILE}`, `--pod=${crashing}`, '--previous']);
  expect({ code: previous.code, stdout: previous.stdout }).toMatchObject({
    code: 0,
    stdout: expect.stringContaining('flag provided but not defined: -local-cluster-crash'),
  });

  const fixed = await runCli(['update', `--profile=${PROFILE}`, '--timeout=180']);
  expectExit(fixed, 0);
  // The crash-looping pod serves nobody: it is replaced first, before any healthy member.
  expect(/update: replacing (\S+) \(([^)]+)\)/.exec(fixed.stdout)?.slice(1)).toEqual([crashing, 'not Ready']);
  const done = await kube.get('StatefulSet', 'sandstore', NAMESPACE);
  expect(done.status?.currentRevision).toBe(done.status?.updateRevision);
  expect((await pods()).map((p) => [p.metadata.name, podReady(p)])).toEqual([
    ['sandstore-0', true],
    ['sandstore-1', true],
    ['sandstore-2', true],
  ]);
});

test('an update that finds no serving leader (the leader and a follower frozen) refuses: exit 1, nothing replaced, nothing written', async () => {
  const dataPlane = (await profilePods()).filter((p) => p.metadata.labels?.[LabelKeys.component] === 'data-plane');
  const leader = await awaitLeaderOnDisk();
  const termBefore = await newestTerm();
  const follower = dataPlane.find((p) => p.metadata.name !== leader)!;
  // Frozen in their cgroup (the kernel still accepts TCP for them, so the pods stay Ready): one
  // member is left, which cannot win an election alone.
  const frozen = [dataPlane.find((p) => p.metadata.name === leader)!, follower].map(sandstoreContainerId);
  for (const id of frozen) ctr('task', 'pause', id);
  let thawed = false;
  const thaw = () => {
    if (thawed) return;
    thawed = true;
    for (const id of frozen) ctr('task', 'resume', id);
  };
  stopAfterTest = thaw;
  const sts = await kube.get('StatefulSet', 'sandstore', NAMESPACE);
  const from = Date.now();
  const r = await runCli(['update', `--profile=${PROFILE}`, '--timeout=120']);
  const to = Date.now();
  thaw();
  expectExit(r, 1);
  expect(r.stderr).toMatch(/has no serving leader: [^\n]*Nothing was replaced\./);
  const after = (await profilePods()).filter((p) => p.metadata.labels?.[LabelKeys.component] === 'data-plane');
  expect(after.map((p) => p.metadata.uid)).toEqual(dataPlane.map((p) => p.metadata.uid));
  const stsAfter = await kube.get('StatefulSet', 'sandstore', NAMESPACE);
  expect(stsAfter.metadata.generation).toBe(sts.metadata.generation);
  expect(stsAfter.spec?.updateStrategy).toEqual(sts.spec?.updateStrategy);
  // Nothing written: the runner's requests in the audit log are reads (its lock aside).
  const writes = (await runnerRequests(from, to)).filter(
    (e) => !['get', 'list', 'watch'].includes(e.verb) && e.objectRef?.resource !== 'leases',
  );
  expect(writes.map((e) => `${e.verb} ${e.objectRef?.resource}/${e.objectRef?.name}`)).toEqual([]);
  // Thawed, the members elect a leader again (a term above the frozen leader's) for the tests after.
  await awaitLeaderOnDisk(termBefore);
});

test("a rolling update under a client's load replaces one pod at a time, followers first, the leader last; no acknowledged write is lost and the client is refused only while the roll runs", async () => {
  const files = buildSandstoreFiles();
  const work = mkdtempSync(join(tmpdir(), 'churn-'));
  const reportFile = join(work, 'churn.json');
  // The client writes and reads back files without pause (test/e2e/sandstore-files churn), started
  // through `client` as the operator would, and stopped by a SIGTERM the runner passes on.
  // When the client reported progress (every 10 operations), and who waits for the next report.
  const progress: number[] = [];
  const waiting: (() => void)[] = [];
  const churn = runCli(['client', `--profile=${PROFILE}`, '--', files, 'churn', '0', reportFile], {
    env: { INIT_CWD: work },
    // Stopped whatever happens below (afterEach): a client left running keeps jest from exiting.
    onSpawn: (child) => {
      stopAfterTest = () => child.kill('SIGTERM');
    },
    onStdout: (out) => {
      const seen = (out.match(/^churn: \d+ ok$/gm) ?? []).length;
      if (seen > progress.length) {
        while (progress.length < seen) progress.push(Date.now());
        for (const wake of waiting.splice(0)) wake();
      }
    },
  });
  let churnEnded = false;
  void churn.then(() => {
    churnEnded = true;
    for (const wake of waiting.splice(0)) wake();
  });
  /** Whether the client reports progress after `since` (ms), within two minutes: woken by its output. */
  const servedSince = async (since: number): Promise<boolean> => {
    const deadline = Date.now() + 120_000;
    while (!progress.some((t) => t > since) && !churnEnded && Date.now() < deadline) {
      await new Promise<void>((wake) => {
        const timer = setTimeout(wake, deadline - Date.now());
        waiting.push(() => {
          clearTimeout(timer);
          wake();
        });
      });
    }
    return progress.some((t) => t > since);
  };
  expect(await servedSince(0)).toBe(true);

  // The roll, as the API server saw it: every pod change, from a watch of our own.
  const sts0 = await kube.get('StatefulSet', 'sandstore', NAMESPACE);
  const initialUids = new Map(
    (await profilePods())
      .filter((p) => p.metadata.name.startsWith('sandstore-'))
      .map((p) => [p.metadata.name, p.metadata.uid]),
  );
  const replaced: string[] = [];
  let mostUnavailable = 0;
  const watched = waitFor(
    kube,
    [
      { key: 'sts', kind: 'StatefulSet', namespace: NAMESPACE, fieldSelector: 'metadata.name=sandstore' },
      {
        key: 'pods',
        kind: 'Pod',
        namespace: NAMESPACE,
        labelSelector: `${profileSelector(PROFILE)},${LabelKeys.component}=data-plane`,
      },
    ],
    {
      what: 'the roll to finish',
      timeoutSeconds: 300,
      onChange: (key, type, pod, snap) => {
        if (key !== 'pods') return;
        if (
          type !== 'DELETED' &&
          pod.metadata.uid !== initialUids.get(pod.metadata.name) &&
          !replaced.includes(pod.metadata.name)
        )
          replaced.push(pod.metadata.name);
        const available = objectsOf(snap, 'pods', 'Pod').filter(
          (p) => !p.metadata.deletionTimestamp && podReady(p),
        ).length;
        mostUnavailable = Math.max(mostUnavailable, 3 - available);
      },
      check: (snap) => (rolledOutSince(objectsOf(snap, 'sts', 'StatefulSet')[0], sts0, 3) ? true : undefined),
    },
  );
  const rollStart = Date.now();
  let rollEnd: number;
  let servedAfter: boolean;
  let update: CliResult;
  try {
    update = await runCli(['update', `--profile=${PROFILE}`, '--timeout=300']);
    rollEnd = Date.now();
    expectExit(update, 0);
    await watched;
    // Served again after the roll (10 more operations).
    servedAfter = await servedSince(rollEnd);
  } finally {
    stopAfterTest?.();
  }
  // One pod at a time, each once, each after the one before was Ready, in the runner's quorum order:
  // while a follower is left to replace, the leader is not replaced (it may have changed meanwhile).
  expect([...replaced].sort()).toEqual(['sandstore-0', 'sandstore-1', 'sandstore-2']);
  const steps = [...update.stdout.matchAll(/update: replacing (sandstore-\d) \(([^)]+)\)/g)].map((m) => [m[1], m[2]]);
  expect(steps.map(([pod]) => pod)).toEqual(replaced);
  expect(steps.slice(0, 2).map(([, role]) => role)).toEqual(['a follower', 'a follower']);
  expect(mostUnavailable).toBe(1);
  expect(servedAfter).toBe(true);
  const ended = await churn;
  expectExit(ended, 0);
  const report = JSON.parse(readFileSync(reportFile, 'utf8')) as ChurnReport;
  const refused = report.outages.reduce((sum, o) => sum + o.millis, 0);
  const longest = Math.max(0, ...report.outages.map((o) => o.millis));
  const after = (o: { startedAt: string; millis: number }) => (Date.parse(o.startedAt) + o.millis - rollEnd) / 1000;
  // The measured window, for the README, printed before anything is asserted on it.
  console.log(
    `update under load: roll ${((rollEnd - rollStart) / 1000).toFixed(1)}s; ${report.operations} operations; ${report.outages.length} outage(s), longest ${(longest / 1000).toFixed(1)}s, ${(refused / 1000).toFixed(1)}s in all, the last ending ${Math.max(0, ...report.outages.map(after)).toFixed(1)}s after the roll; ${report.outages.map((o) => o.mostFrequentError.slice(0, 120)).join(' | ')}`,
  );
  // Every operation succeeded in the end (none still failing after 60 s of retries), and read back
  // what it wrote, but for upstream's stale read, which heals within the second.
  const stale = report.mismatches.filter(isStaleRead);
  if (stale.length > 0) console.log(`stale reads that healed: ${JSON.stringify(stale)}`);
  expect({ abandoned: report.abandoned, lost: report.mismatches.filter((m) => !isStaleRead(m)) }).toEqual({
    abandoned: 0,
    lost: [],
  });
  // The client was refused only because of the roll: every outage began while it ran. How long the
  // elections after a restart go on is Sand Store's (see docs/commands.md, "Sand Store 7ab6010"): measured,
  // printed above, bounded by the 60 s above, not asserted tighter.
  for (const o of report.outages) {
    const start = Date.parse(o.startedAt);
    expect({ outage: o.startedAt, beganDuringRoll: start >= rollStart - 1000 && start <= rollEnd }).toEqual({
      outage: o.startedAt,
      beganDuringRoll: true,
    });
  }
});

/** The command's result; run a second time when the first failed only at upstream's chunk commit race. */
async function againAfterRace(run: () => Promise<CliResult>): Promise<CliResult> {
  const first = await run();
  const race = first.code !== 0 ? chunkCommitRace(first.output) : undefined;
  if (!race) return first;
  console.log(`Sand Store's chunk commit race failed the first run, run again: ${race}`);
  return run();
}

test("the in-cluster smoke Job passes, and so does Sand Store's open_smoke client run from this machine through the node ports", async () => {
  // Sand Store 7ab6010's chunk commit race (lib/runner/chunk-commit-race.ts) fails its own smoke
  // client now and then, whatever the deployment; `smoke` says so, and a user runs it again: so does
  // this test, once, and only for that failure.
  const smoke = await againAfterRace(() => runCli(['smoke', `--profile=${PROFILE}`, '--timeout=120']));
  expectExit(smoke, 0);
  expect(smoke.stdout).toContain('Smoke test complete.');

  // The operator's client, built from ../shared/sandstore (clients/open_smoke) by images.sh, run as a
  // process on the host with only what `client` gives it: the node's address and the node ports.
  const cache = process.env.SANDSTORE_CACHE_DIR ?? join(homedir(), '.cache', 'sandstore-deploy');
  const binDir = readdirSync(join(cache, 'sandstore-bin'))
    .map((d) => join(cache, 'sandstore-bin', d))
    .find((d) => existsSync(join(d, 'smoke')));
  expect(binDir).toBeDefined();
  const work = mkdtempSync(join(tmpdir(), 'open-smoke-'));
  // The leader must not be the pod behind the profile's first node port (30380), so that passing
  // proves a client reaches a leader anywhere. While sandstore-0 leads, its Sand Store is frozen
  // until the others have elected one of theirs, then thawed: it hears the higher term and follows.
  // (Deleting a follower's pod no longer moves leadership: with the leader handover a restarted
  // member hears the leader before its election timer fires.)
  let leader = await awaitLeaderOnDisk();
  if (leader === 'sandstore-0') {
    const termBefore = await newestTerm();
    const id = sandstoreContainerId((await profilePods()).find((p) => p.metadata.name === 'sandstore-0')!);
    ctr('task', 'pause', id);
    try {
      await awaitLeaderOnDisk(termBefore);
    } finally {
      ctr('task', 'resume', id);
    }
    leader = await awaitLeaderOnDisk();
  }
  expect(leader).not.toBe('sandstore-0');
  const leaderPort = 30380 + Number(leader.slice('sandstore-'.length));
  const r = await againAfterRace(() =>
    runCli(['client', `--profile=${PROFILE}`, '--', join(binDir!, 'smoke')], { env: { INIT_CWD: work } }),
  );
  expectExit(r, 0);
  // The seeds the client got, and the ones its success line names, begin with the leader's node port.
  const nodeIp = env.NODE_IP.replace(/\./g, '\\.');
  expect(r.output).toMatch(new RegExp(`SANDSTORE_SEEDS=${nodeIp}:${leaderPort},`));
  expect(r.output).toMatch(new RegExp(`Smoke test complete\\. target=${nodeIp}:${leaderPort}\\b`));
});

test("a deploy of another profile while local-node runs is refused, naming it; local-node's pods, claims, volumes and directories are untouched", async () => {
  const dirs = await claimDirectories();
  const versions = async () => {
    const claims = (await kube.list('PersistentVolumeClaim', { labelSelector: profileSelector(PROFILE) })).items;
    const volumes = await Promise.all(claims.map((c) => kube.get('PersistentVolume', c.spec?.volumeName ?? '')));
    const pods = await profilePods();
    return [...claims, ...volumes]
      .map((o) => `${o.kind}/${o.metadata.name}@${o.metadata.uid}/${o.metadata.resourceVersion}`)
      .concat(pods.map((p) => `Pod/${p.metadata.name}@${p.metadata.uid} ready=${podReady(p)}`))
      .sort();
  };
  const before = await versions();
  const work = projectWithVariant(
    'local-node',
    'other-node',
    `namespace: 'sandstore-other-node', storage: { ...base.storage, className: 'sandstore-other-node-ssd' }, clientAccess: { nodePortBase: 30580 }`,
  );
  const r = await runCli(['deploy', '--profile=other-node', '--timeout=60'], { cwd: work });
  // Should it not be refused, it must not stay: every later deploy would be refused in its turn.
  if (r.code !== 1) stopAfterTest = () => runCli(['destroy', '--profile=other-node'], { cwd: work });
  expect({ code: r.code, stderr: r.stderr }).toMatchObject({
    code: 1,
    stderr: expect.stringContaining(`already runs Sand Store profile ${PROFILE}; one profile at a time`),
  });
  expect(r.stderr).toContain(`npm run destroy -- --profile=${PROFILE} --context=`);
  expect(await versions()).toEqual(before);
  // The data on the node's disk is still there, in the same directories.
  expect(dirs.size).toBe(4);
  for (const [claim, dir] of dirs) expect({ claim, onDisk: existsSync(dir) }).toEqual({ claim, onDisk: true });
  expect((await kube.list('Pod', { labelSelector: profileSelector('other-node') })).items).toEqual([]);
  expect(await kube.find('Namespace', 'sandstore-other-node')).toBeUndefined();
});

test("destroy removes the profile's pods, claims, volumes and their directories on disk", async () => {
  destroyedDirectories = await claimDirectories();
  const before = destroyedDirectories;
  const destroyed = await runCli(['destroy', `--profile=${PROFILE}`, '--timeout=120']);
  expectExit(destroyed, 0);
  expect((await kube.list('Pod', { labelSelector: profileSelector(PROFILE) })).items).toEqual([]);
  expect((await kube.list('PersistentVolumeClaim', { labelSelector: profileSelector(PROFILE) })).items).toEqual([]);
  expect(
    (await kube.list('PersistentVolume')).items.filter((pv) => pv.spec?.claimRef?.namespace === NAMESPACE),
  ).toEqual([]);
  for (const [claim, dir] of before) expect({ claim, onDisk: existsSync(dir) }).toEqual({ claim, onDisk: false });
});

test('a profile asking for more CPU than the real node has stays Pending, and the runner says why and what to change', async () => {
  const work = projectWithVariant(
    'local-node',
    'huge-node',
    `namespace: 'sandstore-huge-node', storage: { ...base.storage, className: 'sandstore-huge-node-ssd' },
  clientAccess: { nodePortBase: 30480 },
  resources: { ...base.resources, etcd: { requests: { cpu: '3', memory: '64Mi' }, limits: { cpu: '3', memory: '64Mi' } } }`,
  );
  try {
    // Past the pre-flight, which refuses it (test/e2e/check.test.ts): what the scheduler says while the deploy waits.
    const r = await runCli(['deploy', '--profile=huge-node', '--timeout=20', '--ignore-check=resources'], {
      cwd: work,
    });
    expectExit(r, 1);
    expect(r.stderr).toMatch(
      /! pod etcd-0: cannot be scheduled \(FailedScheduling\): 0\/\d+ nodes are available: 1 Insufficient cpu/,
    );
    expect(r.stderr).toContain('lower resources.etcd.requests.{cpu} in profiles/huge-node.ts');
    // The scheduler's own record, read back: Pending, never placed on a node.
    const pod = await kube.get('Pod', 'etcd-0', 'sandstore-huge-node');
    expect({ phase: pod.status?.phase, node: pod.spec?.nodeName }).toEqual({ phase: 'Pending', node: undefined });
  } finally {
    expect((await runCli(['destroy', '--profile=huge-node'], { cwd: work })).code).toBe(0);
  }
});

test('the next deploy starts from empty directories: nothing of the last run comes along', async () => {
  const before = destroyedDirectories;
  // Run by the destroy test above: the directories of etcd's claim and the three Sand Store pods'.
  expect(before.size).toBe(4);
  const redeployStart = Date.now();
  const redeployed = await runCli(['deploy', `--profile=${PROFILE}`, '--timeout=240']);
  expectExit(redeployed, 0);
  const after = await claimDirectories();
  for (const [claim, dir] of after)
    expect({ claim, reused: [...before.values()].includes(dir) }).toEqual({ claim, reused: false });
  // Nothing of the last run came along: each node's event log begins after this deploy began (Raft
  // state and the log live in the same directory, which did not exist before).
  for (let i = 0; i < 3; i++) {
    const log = readFileSync(join(after.get(`data-sandstore-${i}`)!, 'logs', `sandstore-${i}.log`), 'utf8');
    const first = Date.parse(log.slice(0, log.indexOf(' ')));
    expect({ node: i, startsAfterDeploy: first >= Math.floor(redeployStart / 1000) * 1000 }).toEqual({
      node: i,
      startsAfterDeploy: true,
    });
  }
});

test("crash-recovery drill: a file written through Sand Store survives the leader's and then a follower's pod being deleted, byte for byte", async () => {
  const files = buildSandstoreFiles();
  const work = mkdtempSync(join(tmpdir(), 'drill-'));
  const content = randomBytes(3 * 1024 * 1024 + 17);
  writeFileSync(join(work, 'written.bin'), content);
  const sandstoreFiles = (...args: string[]) =>
    runCli(['client', `--profile=${PROFILE}`, '--', files, ...args], { env: { INIT_CWD: work } });
  const written = await sandstoreFiles('write', '/drill.bin', join(work, 'written.bin'));
  expect({ code: written.code, output: written.output }).toMatchObject({
    code: 0,
    output: expect.stringContaining(`wrote ${content.length} bytes`),
  });

  for (const which of ['leader', 'follower'] as const) {
    const leader = await leaderOnDisk();
    expect(leader).toBeDefined();
    const victim =
      which === 'leader' ? leader! : ['sandstore-0', 'sandstore-1', 'sandstore-2'].find((p) => p !== leader)!;
    const claim = await kube.get('PersistentVolumeClaim', `data-${victim}`, NAMESPACE);
    // The StatefulSet controller re-creates the pod under the same name, on the same claim.
    const { back } = await deletePodAndAwaitBack(victim);
    expect(back.spec?.volumes?.find((v) => v.name === 'data')?.persistentVolumeClaim?.claimName).toBe(`data-${victim}`);
    const claimNow = await kube.get('PersistentVolumeClaim', `data-${victim}`, NAMESPACE);
    expect({ uid: claimNow.metadata.uid, volume: claimNow.spec?.volumeName }).toEqual({
      uid: claim.metadata.uid,
      volume: claim.spec?.volumeName,
    });
    // A leader again (Sand Store's logs on the node's disk).
    await awaitLeaderOnDisk();

    const read = await sandstoreFiles('read', '/drill.bin', join(work, `read-after-${which}.bin`));
    expect({ which, code: read.code, output: read.output }).toMatchObject({ which, code: 0 });
    expect(readFileSync(join(work, `read-after-${which}.bin`)).equals(content)).toBe(true);
  }
});

afterAll(async () => {
  await runCli(['destroy', `--profile=${PROFILE}`, '--timeout=120']);
});
