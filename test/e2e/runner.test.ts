import { expect } from '@jest/globals';
import { createServer, type Server } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabelKeys, profileSelector } from '../../lib/labels.js';
import { loadProfile } from '../../lib/profiles.js';
import type { Profile } from '../../lib/profile.js';
import type { Kinds } from '../../lib/runner/kube.js';
import { PassThrough } from 'node:stream';
import { Reporter } from '../../lib/runner/report.js';
import { waitForJob } from '../../lib/runner/waits.js';
import { objectsOf, waitFor } from '../../lib/runner/watch.js';
import { CONTEXT, expectExit, followUntilEveryPod, kubeFor, podReady, projectWithVariant, runCli } from './harness.js';

/**
 * The runner's commands against the real local control plane, on the `local` profile, in the order
 * an operator would run them. Failure images (see scripts/local-cluster/README.md) are simulated by
 * kwok stages: `:crashloop` crash-loops, `:slow-ready` becomes Ready only after ~10 s.
 */
const CRASH_IMAGE = 'sandstore.test/sandstore-node:crashloop';
const SLOW_IMAGE = 'sandstore.test/sandstore-node:slow-ready';
const kube = kubeFor();
let profile: Profile;
const sandstorePods = async () => {
  const items = (
    await kube.list('Pod', {
      namespace: profile.namespace,
      labelSelector: `${profileSelector('local')},${LabelKeys.component}=data-plane`,
    })
  ).items;
  return items.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
};
const claimsOf = async () =>
  (await kube.list('PersistentVolumeClaim', { namespace: profile.namespace, labelSelector: profileSelector('local') }))
    .items;
// A deadline per wait well inside jest's, so a stuck wait fails with the runner's own summary.
// A single-valued flag given twice is refused, so the default deadline goes in only when none is given.
const cli = (command: string, ...args: string[]) =>
  runCli([
    command,
    ...(args.some((a) => a.startsWith('--timeout')) ? [] : ['--timeout=120']),
    ...args,
    '--profile=local',
  ]);

beforeAll(async () => {
  profile = await loadProfile('local');
});

describe('runner on the local control plane', () => {
  let firstClaims: Kinds['PersistentVolumeClaim'][] = [];

  test('deploy from empty to Ready, with a progress line per phase', async () => {
    await cli('destroy');
    const r = await cli('deploy');
    expectExit(r, 0);
    for (const phase of ['destroy', 'base', 'control-plane', 'bootstrap', 'data-plane', 'client-access'])
      expect(r.stdout).toContain(`${phase}:`);
    expect(r.stdout).toMatch(
      new RegExp(`acting on context ${CONTEXT} \\(from KUBE_CONTEXT\\), API server https?://127\\.0\\.0\\.1:\\d+`),
    );
    const pods = await sandstorePods();
    expect(pods.map((p) => [p.metadata.name, podReady(p)])).toEqual([
      ['sandstore-0', true],
      ['sandstore-1', true],
      ['sandstore-2', true],
    ]);
    firstClaims = await claimsOf();
    expect(firstClaims.map((c) => c.status?.phase)).toEqual(['Bound', 'Bound', 'Bound', 'Bound']);
  });

  test('status shows pods, claims, services and the rollout; diff finds nothing to change', async () => {
    const s = await cli('status');
    expectExit(s, 0);
    expect(s.stdout).toMatch(/StatefulSet sandstore: 3\/3 ready, 3 updated, rolled out/);
    expect(s.stdout).toMatch(/Job sandstore-membership-bootstrap: Complete/);
    expect(s.stdout).toMatch(/sandstore-2\s+yes\s+Running\s+0\s+kwok-/);
    expect(s.stdout).toMatch(/data-sandstore-0\s+Bound\s+1Gi/);
    expect(s.stdout).toMatch(/sandstore-0-external\s+NodePort\s+8080→node:30280/);
    const d = await cli('diff');
    expectExit(d, 0);
    expect(d.stdout).toContain('no differences');
  });

  test('the smoke test runs as a Job against every node, and the Job is removed', async () => {
    const r = await cli('smoke');
    expectExit(r, 0);
    expect(r.stdout).toContain('smoke test passed against 3 nodes');
    expect(await kube.find('Job', 'sandstore-smoke-test', profile.namespace)).toBeUndefined();
  });

  test('logs follows every Sand Store pod at once, each line prefixed by its pod; Ctrl-C ends it', async () => {
    const { r, seen } = await followUntilEveryPod('local');
    expect(r.code).toBe(0);
    expect(seen).toEqual(['sandstore-0', 'sandstore-1', 'sandstore-2']);
    const refused = await cli('logs', '--previous');
    expectExit(refused, 2);
    expect(refused.stderr).toContain('--previous needs --pod=<name>');
  });

  test('a deleted Sand Store pod comes back bound to the same claim (crash-recovery drill)', async () => {
    const before = (await sandstorePods())[1];
    const claim = firstClaims.find((c) => c.metadata.name === 'data-sandstore-1')!;
    await kube.delete('Pod', before.metadata.name, profile.namespace);
    // Watched, not polled: the StatefulSet controller re-creates the pod under the same name.
    const after = await waitFor(
      kube,
      [{ key: 'pod', kind: 'Pod', namespace: profile.namespace, fieldSelector: 'metadata.name=sandstore-1' }],
      {
        what: 'sandstore-1 to come back Ready',
        timeoutSeconds: 60,
        check: (s) => objectsOf(s, 'pod', 'Pod').find((p) => p.metadata.uid !== before.metadata.uid && podReady(p)),
      },
    );
    expect(after?.metadata.uid).not.toBe(before.metadata.uid);
    expect(podReady(after)).toBe(true);
    expect(after.spec?.volumes?.find((v) => v.name === 'data')?.persistentVolumeClaim?.claimName).toBe(
      'data-sandstore-1',
    );
    const now = await kube.get('PersistentVolumeClaim', 'data-sandstore-1', profile.namespace);
    expect(now.metadata.uid).toBe(claim.metadata.uid);
    expect(now.spec?.volumeName).toBe(claim.spec?.volumeName);
  });

  test('an update to a crashing image pauses with one pod on the new revision and the others untouched', async () => {
    const before = await sandstorePods();
    const r = await cli('update', `--image=${CRASH_IMAGE}`, '--pod-ready-timeout=60');
    expectExit(r, 1);
    // kwok's stand-ins log no Sand Store events: the runner orders by readiness and ordinal alone.
    expect(r.stderr).toMatch(/rollout of StatefulSet sandstore paused at pod sandstore-2: it failed/);
    expect(r.output).toContain('CrashLoopBackOff');
    expect(r.output).toContain('npm run logs -- --profile=local --pod=sandstore-2 --previous');
    expect(r.output).toContain('logs sandstore-2 -c sandstore --previous');
    const sts = await kube.get('StatefulSet', 'sandstore', profile.namespace);
    expect(sts.spec?.updateStrategy?.type).toBe('OnDelete');
    const after = await sandstorePods();
    const onNew = after.filter((p) => p.metadata.labels!['controller-revision-hash'] === sts.status?.updateRevision);
    expect(onNew.map((p) => p.metadata.name)).toEqual(['sandstore-2']);
    for (const i of [0, 1]) expect(after[i].metadata.uid).toBe(before[i].metadata.uid);
    const s = await cli('status');
    expect(s.stdout).toContain('PAUSED at pod sandstore-2: ');
    // Live now differs from dist/: diff shows it as a YAML diff and exits 1.
    const d = await cli('diff');
    expectExit(d, 1);
    expect(d.stdout).toMatch(/^-\s+image: sandstore\.test\/sandstore-node:crashloop$/m);
    expect(d.stdout).toMatch(/^\+\s+image: localhost:5000\/sandstore-node:local-latest$/m);
    // The post-mortem the failure message points at: the crashed container's previous logs.
    const previous = await cli('logs', '--pod=sandstore-2', '--previous');
    expectExit(previous, 0);
    expect(previous.stdout).toContain('panic: simulated crash');
  });

  test('updating again after a fix replaces the crashing pod and completes the rollout', async () => {
    // With podManagementPolicy Parallel the controller itself replaces a not-Ready pod on an old
    // revision (OrderedReady would wait for it to become Ready, forever).
    const r = await cli('update');
    expectExit(r, 0);
    expect(r.stdout).toContain('rolled out');
    const sts = await kube.get('StatefulSet', 'sandstore', profile.namespace);
    expect(sts.status?.currentRevision).toBe(sts.status?.updateRevision);
    expect(
      (await sandstorePods()).every(
        (p) => podReady(p) && p.metadata.labels!['controller-revision-hash'] === sts.status?.updateRevision,
      ),
    ).toBe(true);
  });

  test('a rollout paused on a pod that is too slow can be resumed and then completes', async () => {
    const paused = await cli('update', `--image=${SLOW_IMAGE}`, '--pod-ready-timeout=2');
    expectExit(paused, 1);
    expect(paused.stderr).toContain('paused at pod sandstore-2');
    const r = await cli('resume', '--pod-ready-timeout=60');
    expectExit(r, 0);
    const sts = await kube.get('StatefulSet', 'sandstore', profile.namespace);
    expect(sts.spec?.updateStrategy?.rollingUpdate?.partition).toBe(0);
    expect(sts.status?.currentRevision).toBe(sts.status?.updateRevision);
    expect(sts.status?.readyReplicas).toBe(3);
  });

  test('a second deploy starts from new claims', async () => {
    const r = await cli('deploy');
    expectExit(r, 0);
    const claims = await claimsOf();
    expect(claims).toHaveLength(4);
    const oldUids = new Set(firstClaims.map((c) => c.metadata.uid));
    for (const c of claims) expect(oldUids.has(c.metadata.uid)).toBe(false);
  });

  test("a deploy wipes the last run's volumes alongside the new deployment, and fails on one left unwiped", async () => {
    // The clean slate returns once pods and claims are gone; the old volumes are waited for last.
    // One of them is held by a finalizer: the new deployment comes up on new claims all the same,
    // and the deploy fails on its deadline naming that volume, instead of reporting success.
    const old = await claimsOf();
    const held = old.find((c) => c.metadata.name === 'data-sandstore-0')!.spec!.volumeName!;
    await kube.mergePatch('PersistentVolume', held, undefined, { metadata: { finalizers: ['sandstore.test/hold'] } });
    try {
      const r = await cli('deploy', '--timeout=20');
      expectExit(r, 1);
      expect(r.stderr).toMatch(
        new RegExp(`PersistentVolume/${held}: terminating since .*; finalizers [^;]*sandstore\\.test/hold`),
      );
      expect(r.stderr).toContain('The new deployment is Ready on new claims.');
      const pods = await sandstorePods();
      expect(pods.map((p) => podReady(p))).toEqual([true, true, true]);
      const oldUids = new Set(old.map((c) => c.metadata.uid));
      expect((await claimsOf()).filter((c) => oldUids.has(c.metadata.uid))).toEqual([]);
      const left = (await kube.list('PersistentVolume')).items.filter((v) =>
        old.some((c) => c.spec?.volumeName === v.metadata.name),
      );
      expect(left.map((v) => [v.metadata.name, v.status?.phase])).toEqual([[held, 'Released']]);
    } finally {
      await kube.mergePatch('PersistentVolume', held, undefined, { metadata: { finalizers: null } });
    }
  });

  test('destroy leaves zero objects, claims and volumes of the profile', async () => {
    const volumesBefore = (await claimsOf()).map((c) => c.spec?.volumeName);
    const r = await cli('destroy');
    expectExit(r, 0);
    const selector = profileSelector('local');
    for (const kind of [
      'StatefulSet',
      'Job',
      'Service',
      'ConfigMap',
      'PodDisruptionBudget',
      'NetworkPolicy',
      'PersistentVolumeClaim',
      'Pod',
      'StorageClass',
    ]) {
      expect({
        kind,
        left: (await kube.list(kind, { labelSelector: selector })).items.map((o) => o.metadata.name),
      }).toEqual({ kind, left: [] });
    }
    // The namespace is deleted and left to the namespace controller to finalize (destroy does not
    // wait for that): gone or terminating, never active.
    const namespaces = (await kube.list('Namespace', { labelSelector: selector })).items;
    expect(namespaces.filter((n) => !n.metadata.deletionTimestamp).map((n) => n.metadata.name)).toEqual([]);
    expect(r.stdout).toMatch(/namespace sandstore-local deleted \(the cluster finalizes it in the background/);
    const volumes = (await kube.list('PersistentVolume')).items.map((v) => v.metadata.name);
    for (const v of volumesBefore) expect(volumes).not.toContain(v);
    const again = await cli('destroy');
    expectExit(again, 0);
    expect(again.stdout).toContain('nothing of profile local on the cluster');
  });
});

/** A kubeconfig whose current-context is "production" and which has "sandstore-local" but not "minikube-laptop". */
function kubeconfigText(server: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'current-context: production',
    'clusters:',
    `- name: production`,
    `  cluster: { server: "${server}", insecure-skip-tls-verify: true }`,
    `- name: pinned`,
    `  cluster: { server: "${server}", insecure-skip-tls-verify: true }`,
    'users:',
    '- name: u',
    '  user: { token: t }',
    'contexts:',
    '- name: production',
    '  context: { cluster: production, user: u }',
    '- name: sandstore-local',
    '  context: { cluster: pinned, user: u }',
  ].join('\n');
}

describe('runner refusals and failures', () => {
  let listener: Server;
  let connections = 0;
  let port = 0;
  let kubeconfig: string;
  beforeAll(async () => {
    listener = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    port = (listener.address() as { port: number }).port;
    // Its current-context points at a "production" server that counts connections; the local
    // profile's context is not in it at all.
    kubeconfig = join(mkdtempSync(join(tmpdir(), 'kubeconfig-')), 'config');
    writeFileSync(kubeconfig, kubeconfigText(`https://127.0.0.1:${port}`));
  });
  afterAll(() => listener.close());

  test('a context missing from the kubeconfig is refused and no request is sent (not even to the current-context)', async () => {
    const r = await runCli(['destroy', '--profile=ssd-raft'], {
      env: { KUBECONFIG: kubeconfig, KUBE_CONTEXT: undefined },
    });
    expectExit(r, 2);
    expect(r.stderr).toContain('kube context "minikube-laptop" (from profile) is not in the kubeconfig');
    expect(r.stderr).toContain('contexts there: production, sandstore-local. Nothing was sent.');
    expect(connections).toBe(0);
  });

  test('an API server that does not answer is reported as such, with what to check, not as a stack trace', async () => {
    const dead = join(mkdtempSync(join(tmpdir(), 'kubeconfig-')), 'config');
    writeFileSync(dead, kubeconfigText('https://127.0.0.1:1'));
    const r = await runCli(['status', '--profile=local'], { env: { KUBECONFIG: dead, KUBE_CONTEXT: undefined } });
    expectExit(r, 1);
    expect(r.stderr).toContain('cannot reach the API server at https://127.0.0.1:1');
    expect(r.stderr).toContain('Is the cluster up?');
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });

  test("a context whose API server differs from the profile's pin is refused and no request is sent", async () => {
    const work = projectWithVariant(
      'local',
      'pinned',
      `namespace: 'sandstore-pinned', kube: { context: 'sandstore-local', apiServer: 'https://10.1.2.3:6443' }`,
    );
    const r = await runCli(['deploy', '--profile=pinned'], {
      cwd: work,
      env: { KUBECONFIG: kubeconfig, KUBE_CONTEXT: undefined },
    });
    expectExit(r, 2);
    expect(r.stderr).toContain(
      `kube context "sandstore-local" points at https://127.0.0.1:${port}, but profile "pinned" is pinned to https://10.1.2.3:6443`,
    );
    expect(connections).toBe(0);
  });

  test("insufficient resources are reported with the scheduler's reason, and the deploy fails on its deadline", async () => {
    const work = projectWithVariant(
      'local',
      'huge',
      `namespace: 'sandstore-huge', storage: { ...base.storage, className: 'sandstore-local-ssd-huge' },
  clientAccess: { nodePortBase: 30380 },
  resources: { ...base.resources, etcd: { requests: { cpu: '64', memory: '64Mi' }, limits: { cpu: '64', memory: '64Mi' } } }`,
    );
    try {
      // Past the pre-flight (which refuses this profile: test/e2e/check.test.ts): the scheduler's words still matter
      // when the cluster changes between the pre-flight and the pods.
      const r = await runCli(
        ['deploy', '--profile=huge', `--context=${CONTEXT}`, '--timeout=20', '--ignore-check=resources'],
        { cwd: work },
      );
      expectExit(r, 1);
      expect(r.stderr).toMatch(
        /! pod etcd-0: cannot be scheduled \(FailedScheduling\): 0\/\d+ nodes are available: .*Insufficient cpu/,
      );
      expect(r.stderr).toContain('timed out after 20s waiting for StatefulSet etcd to roll out');
      expect(r.stderr).toMatch(/pod etcd-0: Pending, not Ready: cannot be scheduled/);
    } finally {
      expectExit(await runCli(['destroy', '--profile=huge', `--context=${CONTEXT}`], { cwd: work }), 0);
    }
  });

  test("a namespace and a StorageClass that exist without the profile's labels are not taken over: deploy and update refuse naming both, and leave them as they were", async () => {
    // Someone else's objects under the names a profile uses (as `namespace: 'monitoring'` or k3s's
    // `local-path` class would be).
    const suffix = Date.now().toString(36);
    const ns = `sandstore-foreign-${suffix}`;
    const sc = `sandstore-foreign-ssd-${suffix}`;
    const work = projectWithVariant(
      'local',
      'takeover',
      `namespace: '${ns}', storage: { ...base.storage, className: '${sc}' }`,
    );
    await kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { team: 'monitoring' } } });
    await kube.create({
      apiVersion: 'storage.k8s.io/v1',
      kind: 'StorageClass',
      metadata: { name: sc },
      provisioner: 'rancher.io/local-path',
      reclaimPolicy: 'Retain',
      volumeBindingMode: 'WaitForFirstConsumer',
    });
    const state = async () =>
      (await Promise.all([kube.get('Namespace', ns), kube.get('StorageClass', sc)])).map((o) => ({
        resourceVersion: o.metadata.resourceVersion,
        labels: o.metadata.labels ?? {},
        annotations: o.metadata.annotations ?? {},
        managers: ((o.metadata.managedFields ?? []) as { manager: string }[]).map((f) => f.manager).sort(),
      }));
    try {
      const before = await state();
      for (const command of ['deploy', 'update']) {
        const r = await runCli([command, '--profile=takeover', `--context=${CONTEXT}`, '--timeout=30'], { cwd: work });
        expectExit(r, 1);
        expect(r.stderr).toContain(
          `${CONTEXT} already has objects that profile takeover would take over, and a later destroy would delete`,
        );
        expect(r.stderr).toContain(
          `Namespace ${ns} already exists and was not made by sandstore-deploy: set \`namespace\` in profiles/takeover.ts to a name of its own`,
        );
        expect(r.stderr).toContain(
          `StorageClass ${sc} already exists and was not made by sandstore-deploy: set \`storage.className\` in profiles/takeover.ts to a name of its own`,
        );
        expect(r.stderr).toContain('nothing was changed');
        // Both exactly as they were (no label, annotation or field manager of ours), and nothing of
        // the profile in the namespace.
        expect(await state()).toEqual(before);
        // (Kubernetes' own kube-root-ca.crt ConfigMap appears in every namespace: only the profile's objects count.)
        for (const kind of ['StatefulSet', 'Service', 'ConfigMap', 'NetworkPolicy', 'Job'] as const) {
          expect((await kube.list(kind, { namespace: ns, labelSelector: profileSelector('takeover') })).items).toEqual(
            [],
          );
        }
      }
      // Destroy finds nothing of the profile (they carry none of its labels) and deletes neither.
      expectExit(await runCli(['destroy', '--profile=takeover', `--context=${CONTEXT}`], { cwd: work }), 0);
      expect(await state()).toEqual(before);
    } finally {
      await kube.delete('StorageClass', sc);
      await kube.delete('Namespace', ns);
    }
  });

  test('a deletion held by a finalizer makes destroy fail on its deadline, saying what is stuck and how to force it', async () => {
    const ns = 'sandstore-local';
    await kube.apply({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: ns, labels: { [LabelKeys.managedBy]: 'sandstore-deploy', [LabelKeys.profile]: 'local' } },
    });
    await kube.apply({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: {
        name: 'held',
        namespace: ns,
        labels: { [LabelKeys.managedBy]: 'sandstore-deploy', [LabelKeys.profile]: 'local' },
        finalizers: ['sandstore.test/hold'],
      },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, storageClassName: 'none' },
    });
    try {
      const r = await cli('destroy', '--timeout=3');
      expectExit(r, 1);
      expect(r.stderr).toContain('timed out after 3s');
      expect(r.stderr).toMatch(
        /PersistentVolumeClaim\/held in sandstore-local: terminating since .*; finalizers sandstore\.test\/hold/,
      );
      expect(r.stderr).toContain(
        `kubectl --context ${CONTEXT} -n sandstore-local patch persistentvolumeclaim/held --type=merge -p '{"metadata":{"finalizers":null}}'`,
      );
    } finally {
      await kube.mergePatch('PersistentVolumeClaim', 'held', ns, { metadata: { finalizers: null } });
      expectExit(await cli('destroy'), 0);
    }
  });

  test("a failed Job ends the wait at once with its pod's exit, not at the deadline", async () => {
    const ns = 'sandstore-jobfail';
    const labels = { [LabelKeys.managedBy]: 'sandstore-deploy', [LabelKeys.profile]: 'jobfail' };
    await kube.apply({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: ns, labels: { ...labels, 'pod-security.kubernetes.io/enforce': 'restricted' } },
    });
    const restricted = {
      runAsNonRoot: true,
      runAsUser: 65532,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    };
    await kube.apply({
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'bootstrap', namespace: ns, labels },
      spec: {
        backoffLimit: 0,
        template: {
          metadata: { labels },
          spec: {
            restartPolicy: 'Never',
            containers: [{ name: 'etcdctl', image: 'sandstore.test/job:fail', securityContext: restricted }],
          },
        },
      },
    });
    const started = Date.now();
    try {
      await expect(
        waitForJob(
          { kube, namespace: ns, report: new Reporter(new PassThrough(), new PassThrough()), timeoutSeconds: 120 },
          'bootstrap',
        ),
      ).rejects.toMatchObject({
        name: 'WaitFailedError',
        message: expect.stringContaining('Job bootstrap failed'),
        details: [expect.stringMatching(/container etcdctl exited 1 \(Error\)/)],
      });
      expect(Date.now() - started).toBeLessThan(30_000);
    } finally {
      // Gone, not only deleting: its Job and pod carry Sand Store's labels, and a deploy refuses
      // while another profile's objects are on the cluster, terminating ones included.
      await kube.delete('Namespace', ns);
      await waitFor(kube, [{ key: 'ns', kind: 'Namespace', fieldSelector: `metadata.name=${ns}` }], {
        what: `namespace ${ns} to be gone`,
        timeoutSeconds: 60,
        check: (s) => (objectsOf(s, 'ns').length === 0 ? true : undefined),
      });
    }
  });

  test('Ctrl-C during a wait exits 130 and says what state the cluster is in', async () => {
    // etcd, the Job and the data plane are applied in one step, so all three are named as applied.
    const r = await runCli(['deploy', `--context=${CONTEXT}`, '--profile=local'], {
      onStdout: (text, child) => {
        if (text.includes('control-plane: applied') && !child.killed) child.kill('SIGINT');
      },
    });
    expectExit(r, 130);
    expect(r.stderr).toMatch(
      /interrupted while waiting for StatefulSet etcd to roll out\. No request was left half-sent\.\n\s+Deploy stopped in phase "control-plane"; phases applied: base, control-plane, bootstrap, data-plane\. The cluster holds a partial deployment/,
    );
    expectExit(await cli('destroy'), 0);
  });
});
