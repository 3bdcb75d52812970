import { expect } from '@jest/globals';
import { KubeConfig } from '@kubernetes/client-node';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { SANDSTORE_CLUSTER_DEFAULTS } from '../../lib/constructs/sandstore-cluster/sandstore-cluster-props.js';
import { loadProfile } from '../../lib/profiles.js';
import type { Profile } from '../../lib/profile.js';
import { renderProfile, type Manifest } from '../../lib/synth.js';
import { filesOnDisk, inputDigest, knownFresh, outputDigest, recordRender } from '../../lib/freshness.js';
import { deletionPlan, kindsToSweep, volumesOfClaims } from '../../lib/runner/commands/destroy.js';
import { CONFORMANCE_KINDS } from '../../lib/conformance/objects.js';
import { DEPLOY_STEPS } from '../../lib/runner/commands/deploy.js';
import { DEPLOY_PHASE_ORDER, DeployPhase } from '../../lib/labels.js';
import type { ManifestOf } from '../../lib/k8s-types.js';
import type { KubeObject, PersistentVolume, StatefulSet } from '../../lib/runner/kube.js';
import { manifestsOfPhase, ManifestsRefusedError, readManifests } from '../../lib/runner/manifests.js';
import { podProblems } from '../../lib/runner/pods.js';
import { pod } from './pod-fixture.js';
import { assessRollout } from '../../lib/runner/rollout.js';
import { chooseContext, resolveTarget, TargetRefusedError } from '../../lib/runner/target.js';
import { withRestart } from '../../lib/runner/commands/update.js';
import { otherProfileLiveError } from '../../lib/runner/other-profiles.js';
import { clientEndpoints } from '../../lib/runner/client-access.js';
import type { CommandContext } from '../../lib/runner/commands/context.js';

let profile: Profile;
beforeAll(async () => {
  profile = await loadProfile('ssd-raft');
});

function kubeconfig(contexts: Record<string, string>, current = Object.keys(contexts)[0]): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: Object.entries(contexts).map(([name, server]) => ({ name, server, skipTLSVerify: true })),
    users: [{ name: 'u', token: 't' }],
    contexts: Object.keys(contexts).map((name) => ({ name, cluster: name, user: 'u' })),
    currentContext: current,
  });
  return kc;
}

describe('context resolution', () => {
  test('--context beats KUBE_CONTEXT beats the profile; the current-context never counts', () => {
    expect(chooseContext(profile, 'a', { KUBE_CONTEXT: 'b' })).toEqual({ context: 'a', source: 'flag --context' });
    expect(chooseContext(profile, undefined, { KUBE_CONTEXT: 'b' })).toEqual({ context: 'b', source: 'KUBE_CONTEXT' });
    expect(chooseContext(profile, undefined, {})).toEqual({ context: 'minikube-laptop', source: 'profile' });
    const kc = kubeconfig(
      { production: 'https://prod:6443', 'minikube-laptop': 'https://192.168.1.20:8443' },
      'production',
    );
    const t = resolveTarget(profile, undefined, {}, kc);
    expect(t.context).toBe('minikube-laptop');
    expect(t.server).toBe('https://192.168.1.20:8443');
  });

  test('a context missing from the kubeconfig is refused, naming the ones there are', () => {
    expect(() => resolveTarget(profile, undefined, {}, kubeconfig({ production: 'https://prod:6443' }))).toThrow(
      TargetRefusedError,
    );
    expect(() => resolveTarget(profile, undefined, {}, kubeconfig({ production: 'https://prod:6443' }))).toThrow(
      /"minikube-laptop" \(from profile\) is not in the kubeconfig .*contexts there: production\. Nothing was sent/,
    );
  });

  test('a pinned API server that differs is refused; the same server written differently is accepted', () => {
    const pinned = { ...profile, kube: { ...profile.kube, apiServer: 'https://192.168.1.20:8443/' } };
    expect(() =>
      resolveTarget(pinned, undefined, {}, kubeconfig({ 'minikube-laptop': 'https://10.0.0.9:8443' })),
    ).toThrow(
      /points at https:\/\/10\.0\.0\.9:8443, but profile "ssd-raft" is pinned to https:\/\/192\.168\.1\.20:8443/,
    );
    expect(
      resolveTarget(pinned, undefined, {}, kubeconfig({ 'minikube-laptop': 'https://192.168.1.20:8443' })).context,
    ).toBe('minikube-laptop');
  });
});

describe('reading dist/', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'dist-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const write = (files: ReadonlyMap<string, string>) => {
    mkdirSync(join(dir, profile.name), { recursive: true });
    for (const [f, t] of files) writeFileSync(join(dir, profile.name, f), t);
  };

  test('missing, empty and stale dist/ are refused: an empty set must never turn into deletions', async () => {
    await expect(readManifests(dir, profile)).rejects.toThrow(
      /does not exist; run `npm run synth -- --profile=ssd-raft` first/,
    );
    mkdirSync(join(dir, profile.name));
    await expect(readManifests(dir, profile)).rejects.toThrow(/holds no manifests/);
    const files = new Map(renderProfile(profile));
    files.set(
      'statefulset-sandstore.yaml',
      files.get('statefulset-sandstore.yaml')!.replace('replicas: 3', 'replicas: 5'),
    );
    write(files);
    await expect(readManifests(dir, profile)).rejects.toThrow(ManifestsRefusedError);
    await expect(readManifests(dir, profile)).rejects.toThrow(/stale.*\n.*statefulset-sandstore\.yaml: differs/);
  });

  test('a remembered render vouches only for the exact files it produced: a hand edit or an extra file is still stale', async () => {
    const rendered = renderProfile(profile);
    write(rendered);
    recordRender(profile, rendered);
    expect(knownFresh(profile, outputDigest(filesOnDisk(dir, profile.name)))).toBe(true);
    await expect(readManifests(dir, profile)).resolves.toHaveLength(rendered.size);

    writeFileSync(
      join(dir, profile.name, 'statefulset-sandstore.yaml'),
      rendered.get('statefulset-sandstore.yaml')!.replace('replicas: 3', 'replicas: 4'),
    );
    expect(knownFresh(profile, outputDigest(filesOnDisk(dir, profile.name)))).toBe(false);
    await expect(readManifests(dir, profile)).rejects.toThrow(/statefulset-sandstore\.yaml: differs/);

    write(rendered);
    writeFileSync(join(dir, profile.name, 'configmap-extra.yaml'), 'kind: ConfigMap\n');
    expect(knownFresh(profile, outputDigest(filesOnDisk(dir, profile.name)))).toBe(false);
    await expect(readManifests(dir, profile)).rejects.toThrow(/configmap-extra\.yaml: no longer generated/);
  });

  test('a record is for one set of inputs: a changed profile is not vouched for by the old render', () => {
    const rendered = renderProfile(profile);
    write(rendered);
    recordRender(profile, rendered);
    const changed = {
      ...profile,
      raft: {
        ...profile.raft,
        maxBatchSize: (profile.raft.maxBatchSize ?? SANDSTORE_CLUSTER_DEFAULTS.raft.maxBatchSize) + 1,
      },
    };
    expect(inputDigest(changed)).not.toBe(inputDigest(profile));
    expect(knownFresh(changed, outputDigest(filesOnDisk(dir, profile.name)))).toBe(false);
  });

  test('phases: namespace and storage class first; etcd, bootstrap, data plane, node ports apart; smoke on demand', async () => {
    write(renderProfile(profile));
    const m = await readManifests(dir, profile);
    const names = (phase: Parameters<typeof manifestsOfPhase>[1]) =>
      manifestsOfPhase(m, phase).map((o) => `${o.kind}/${o.metadata.name}`);
    expect(names('base').slice(0, 2)).toEqual(['Namespace/sandstore', 'StorageClass/sandstore-local-ssd']);
    expect(names('control-plane')).toEqual(['StatefulSet/etcd']);
    expect(names('bootstrap')).toEqual(['Job/sandstore-membership-bootstrap']);
    expect(names('data-plane')).toEqual(['StatefulSet/sandstore']);
    expect(names('client-access')).toEqual([
      'Service/sandstore-0-external',
      'Service/sandstore-1-external',
      'Service/sandstore-2-external',
    ]);
    expect(names('on-demand')).toEqual(['Job/sandstore-smoke-test']);
  });

  test("deploy's steps cover every phase once, in order (the order of the waits); etcd, the Job and the data plane go together, after the base objects", () => {
    expect(DEPLOY_STEPS.flat()).toEqual(DEPLOY_PHASE_ORDER);
    const stepOf = (phase: DeployPhase) => DEPLOY_STEPS.findIndex((s) => s.includes(phase));
    expect(stepOf(DeployPhase.dataPlane)).toBe(stepOf(DeployPhase.bootstrap));
    expect(stepOf(DeployPhase.bootstrap)).toBe(stepOf(DeployPhase.controlPlane));
    expect(stepOf(DeployPhase.controlPlane)).toBeGreaterThan(stepOf(DeployPhase.base));
  });
});

const sts = (
  s: Partial<{ gen: number; observed: number; ready: number; updated: number; current: string; update: string }>,
): StatefulSet => ({
  kind: 'StatefulSet',
  metadata: { name: 'sandstore', generation: s.gen ?? 2 },
  spec: { replicas: 3, selector: {}, template: {} },
  status: {
    replicas: 3,
    observedGeneration: s.observed ?? 2,
    readyReplicas: s.ready ?? 3,
    updatedReplicas: s.updated ?? 3,
    currentRevision: s.current ?? 'new',
    updateRevision: s.update ?? 'new',
  },
});
const policy = { podReadySeconds: 60, now: 10_000 };

describe('rollout decision', () => {
  test('done only when observed, all updated and Ready, and currentRevision caught up', () => {
    const pods = [pod('sandstore-0', 'new'), pod('sandstore-1', 'new'), pod('sandstore-2', 'new')];
    expect(assessRollout(sts({}), pods, policy)).toEqual({ state: 'done' });
    expect(assessRollout(sts({ observed: 1 }), pods, policy).state).toBe('progressing');
    expect(assessRollout(sts({ updated: 2 }), pods, policy).state).toBe('progressing');
    expect(assessRollout(sts({ ready: 2 }), pods, policy).state).toBe('progressing');
    expect(assessRollout(sts({ current: 'old' }), pods, policy).state).toBe('progressing');
  });

  test('an updated pod that crash-loops fails the rollout, naming it; old-revision pods are not judged', () => {
    const pods = [
      pod('sandstore-0', 'old', { waiting: 'CrashLoopBackOff' }),
      pod('sandstore-1', 'old'),
      pod('sandstore-2', 'new', {
        ready: false,
        waiting: 'CrashLoopBackOff',
        restarts: 3,
        terminated: { exitCode: 2, message: 'panic: boom' },
      }),
    ];
    const s = assessRollout(sts({ updated: 1, ready: 2, current: 'old' }), pods, policy);
    expect(s).toMatchObject({ state: 'failed', pod: 'sandstore-2' });
    const reason = s.state === 'failed' ? s.reason : '';
    expect(reason).toContain('CrashLoopBackOff');
    expect(reason).toContain('panic: boom');
  });

  test('a restart since the rollout began, or a missed Ready deadline, fails it too', () => {
    const restarted = [pod('sandstore-2', 'new', { ready: false, restarts: 1, created: 9_000 })];
    expect(
      assessRollout(sts({ updated: 1, current: 'old' }), restarted, {
        ...policy,
        restartsAtStart: new Map([['sandstore-2', 0]]),
      }).state,
    ).toBe('failed');
    const slow = [pod('sandstore-2', 'new', { ready: false, created: 10_000 - 61_000 })];
    expect(assessRollout(sts({ updated: 1, current: 'old' }), slow, policy)).toMatchObject({
      state: 'failed',
      reason: expect.stringContaining('deadline 60s'),
    });
    const young = [pod('sandstore-2', 'new', { ready: false, created: 9_000 })];
    expect(assessRollout(sts({ updated: 1, current: 'old' }), young, policy).state).toBe('progressing');
  });

  test('an update applies the dist StatefulSet with a restart annotation, OnDelete and optionally another image', () => {
    const dist = renderProfile(profile);
    const m = parse(dist.get('statefulset-sandstore.yaml')!) as ManifestOf<'StatefulSet'>;
    const updated = withRestart(m, '2026-01-01T00:00:00Z', 'r/sandstore-node:fix');
    expect(updated.spec?.template.metadata?.annotations?.['sandstore.io/restarted-at']).toBe('2026-01-01T00:00:00Z');
    // The runner chooses the order (quorum-roll.ts): the controller replaces no pod by itself.
    expect(updated.spec?.updateStrategy).toEqual({ type: 'OnDelete' });
    expect(m.spec?.updateStrategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { partition: 0 } });
    expect(updated.spec?.template.spec?.containers[0]?.image).toBe('r/sandstore-node:fix');
    expect(updated.spec?.template.spec?.initContainers?.[0]?.image).toBe('r/sandstore-node:fix');
    expect(m.spec?.template.spec?.containers[0]?.image).toBe('docker.io/sandstore/sandstore-node:ssd-raft-latest');
  });
});

describe('pod problems', () => {
  test('scheduler reasons, image pulls and crash loops are reported in words', () => {
    expect(
      podProblems(pod('p', 'r', { ready: false, unschedulable: '0/3 nodes are available: 3 Insufficient cpu.' })),
    ).toEqual([
      'cannot be scheduled (FailedScheduling): 0/3 nodes are available: 3 Insufficient cpu.; the profile asks for more cpu than a matching node has free: lower the cpu requests, or free capacity on the node',
    ]);
    // A pod of a profile: the field to change, by component.
    const etcd = pod('etcd-0', 'r', {
      ready: false,
      unschedulable:
        '0/4 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, 3 node(s) had untolerated taint.',
    });
    etcd.metadata.labels = {
      ...etcd.metadata.labels,
      'app.kubernetes.io/component': 'control-plane',
      'sandstore.io/profile': 'local-node',
    };
    expect(podProblems(etcd)[0]).toMatch(
      /; the profile asks for more cpu and memory than a matching node has free: lower resources\.etcd\.requests\.\{cpu,memory\} in profiles\/local-node\.ts, or free capacity on the node$/,
    );
    expect(
      podProblems(
        pod('p', 'r', {
          ready: false,
          unschedulable: "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.",
        }),
      )[0],
    ).not.toContain('the profile asks for');
    expect(podProblems(pod('p', 'r', { waiting: 'ImagePullBackOff' }))[0]).toMatch(
      /^container sandstore: ImagePullBackOff/,
    );
    expect(podProblems(pod('p', 'r'))).toEqual([]);
  });
});

describe('what destroy deletes', () => {
  const obj = (kind: string, name: string, extra: Partial<KubeObject['metadata']> = {}): KubeObject => ({
    kind,
    metadata: { name, namespace: 'ns', ...extra },
  });
  test('controllers first, namespace last; owned pods are left to the garbage collector', () => {
    const plan = deletionPlan([
      obj('Namespace', 'ns'),
      obj('PersistentVolumeClaim', 'data-sandstore-0'),
      obj('Service', 'svc'),
      obj('Pod', 'sandstore-0', { ownerReferences: [{ kind: 'StatefulSet', name: 'sandstore', uid: 'u' }] }),
      obj('Pod', 'stray'),
      obj('StatefulSet', 'sandstore'),
      obj('StorageClass', 'sc'),
    ]);
    expect(plan.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      'StatefulSet/sandstore',
      'Pod/stray',
      'Service/svc',
      'PersistentVolumeClaim/data-sandstore-0',
      'StorageClass/sc',
      'Namespace/ns',
    ]);
  });

  test("the sweep covers every kind in dist/ and the profile kinds even without dist/, conformance's included", () => {
    expect(kindsToSweep(undefined)).toEqual(
      expect.arrayContaining(['StatefulSet', 'PersistentVolumeClaim', 'Pod', 'Namespace', 'StorageClass']),
    );
    // What a killed `conformance` may leave, for any profile.
    expect(kindsToSweep(undefined)).toEqual(expect.arrayContaining([...CONFORMANCE_KINDS]));
  });

  test("volumes are matched to the profile's claims by claimRef", () => {
    const pv = (name: string, ns: string, claim: string): PersistentVolume => ({
      kind: 'PersistentVolume',
      metadata: { name },
      spec: { claimRef: { namespace: ns, name: claim } },
    });
    const volumes = [
      pv('a', 'ns', 'data-sandstore-0'),
      pv('b', 'other', 'data-sandstore-0'),
      pv('c', 'ns', 'unrelated'),
    ];
    expect(volumesOfClaims(volumes, new Set(['ns/data-sandstore-0'])).map((v) => v.metadata.name)).toEqual(['a']);
  });
});

describe('another profile live on the cluster', () => {
  test('the refusal names each profile, what of it is there, and a way to remove it that works from here', () => {
    const dir = mkdtempSync(join(tmpdir(), 'profiles-'));
    writeFileSync(join(dir, 'local.ts'), '');
    try {
      const err = otherProfileLiveError(
        [
          { name: 'local', namespaces: ['sandstore-local'], objects: '2 StatefulSet, 3 Pod' },
          {
            name: 'gone',
            namespaces: ['sandstore-gone', 'sandstore-gone-2'],
            objects: '1 PersistentVolumeClaim (terminating)',
          },
          {
            name: 'ghost',
            namespaces: [],
            objects: '',
            runner: {
              identity: 'bob@l (pid 1)',
              command: 'deploy',
              since: 'T',
              renewed: 'T',
              leaseSeconds: 30,
              expired: false,
            },
          },
        ],
        { profileName: 'ssd-raft', context: 'c', profilesDir: dir },
      );
      expect(err.exitCode).toBe(1);
      expect(err.message).toBe(
        "c already runs Sand Store profile local, gone, ghost; one profile at a time, so that benchmarks never share the node's disk, CPU or memory: profile ssd-raft was not deployed and nothing was changed",
      );
      expect(err.details).toEqual([
        'profile local: 2 StatefulSet, 3 Pod in namespace sandstore-local',
        '  to remove it (this deletes its claims and their data):',
        '    npm run destroy -- --profile=local --context=c',
        'profile gone: 1 PersistentVolumeClaim (terminating) in namespace sandstore-gone, sandstore-gone-2',
        '  to remove it (this deletes its claims and their data):',
        '    kubectl --context c delete namespace sandstore-gone sandstore-gone-2  (no profiles/gone.ts in this project)',
        'profile ghost: its runner bob@l (pid 1) runs `deploy` since T',
        '  wait for that runner to finish, then remove the profile:',
        '    kubectl --context c delete statefulset,job,pod,pvc --all-namespaces -l sandstore.io/profile=ghost',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('client addresses', () => {
  test('are listed in ordinal order whatever the file order of dist/ (sandstore-10 sorts before sandstore-2 there)', async () => {
    const eleven: Profile = {
      ...profile,
      raft: { ...profile.raft, replicas: 11 },
      clientAccess: { ...profile.clientAccess, advertiseHost: 'bench.example' },
    };
    const manifests = [...renderProfile(eleven)].map(([, text]) => parse(text.replace(/^#.*\n/gm, '')) as Manifest);
    // An advertised host needs no request: the context's client is never used.
    const ctx = { profile: eleven, namespace: eleven.namespace, kube: undefined } as unknown as CommandContext;
    const endpoints = await clientEndpoints(ctx, manifests);
    expect(endpoints.map((e) => e.pod)).toEqual(Array.from({ length: 11 }, (_, i) => `sandstore-${i}`));
    expect(endpoints.map((e) => e.address)).toEqual(
      Array.from({ length: 11 }, (_, i) => `bench.example:${eleven.clientAccess.nodePortBase + i}`),
    );
  });
});
