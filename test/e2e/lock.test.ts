import { expect } from '@jest/globals';
import { profileSelector } from '../../lib/labels.js';
import type { Lease } from '../../lib/runner/kube.js';
import { LEASE_SECONDS, LOCK_NAMESPACE, lockName, microTime } from '../../lib/runner/lock.js';
import { CONTEXT, expectExit, kubeFor, projectWithVariant, runCli, skewedClock, untilLockExpired } from './harness.js';

/**
 * One runner at a time per profile and cluster: deploy, update, resume, destroy and smoke hold a
 * Lease on the cluster while they run. Read back from the API server: who holds the Lease, and that
 * a refused runner changed nothing of the profile.
 */
const kube = kubeFor();
const PROFILE = 'local';
const cli = (...args: string[]) => runCli([...args, `--profile=${PROFILE}`, `--context=${CONTEXT}`, '--timeout=120']);
const lease = () => kube.find('Lease', lockName(PROFILE), LOCK_NAMESPACE);
const profileObjects = async () => {
  const selector = profileSelector(PROFILE);
  const lists = await Promise.all(
    ['StatefulSet', 'Pod', 'PersistentVolumeClaim', 'Service', 'ConfigMap'].map((kind) =>
      kube.list(kind, { labelSelector: selector }),
    ),
  );
  return lists
    .flatMap((l) => l.items.map((o) => `${o.kind}/${o.metadata.name}@${o.metadata.uid}/${o.metadata.resourceVersion}`))
    .sort();
};
/**
 * A Lease as another runner (on another machine) holds it, written now: `ageSeconds` is how long ago
 * it renewed by its own clock (negative: its clock is ahead of ours).
 */
const foreignLease = (ageSeconds: number, leaseSeconds = LEASE_SECONDS): Lease => {
  const at = microTime(Date.now() - ageSeconds * 1000);
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name: lockName(PROFILE),
      namespace: LOCK_NAMESPACE,
      annotations: { 'sandstore.io/lock-command': 'update' },
    },
    spec: {
      holderIdentity: 'alice@laptop-2 (pid 4242)',
      leaseDurationSeconds: leaseSeconds,
      acquireTime: at,
      renewTime: at,
    },
  };
};

beforeAll(async () => {
  await kube.delete('Lease', lockName(PROFILE), LOCK_NAMESPACE);
  expect((await cli('deploy')).code).toBe(0);
  // Released at the end of the command: nothing is left holding the profile.
  expect(await lease()).toBeUndefined();
});

afterEach(() => kube.delete('Lease', lockName(PROFILE), LOCK_NAMESPACE));

test('a second runner while one is deploying is refused, naming who holds the profile, and changes nothing', async () => {
  let second: Promise<Awaited<ReturnType<typeof runCli>>> | undefined;
  let holder: Lease | undefined;
  const first = runCli(['deploy', `--profile=${PROFILE}`, `--context=${CONTEXT}`, '--timeout=120'], {
    onStdout: (out) => {
      // Once the first has begun deleting the old run, the second tries its luck.
      if (!second && /destroy: /.test(out)) {
        second = (async () => {
          holder = await lease();
          return runCli(['update', `--profile=${PROFILE}`, `--context=${CONTEXT}`]);
        })();
      }
    },
  });
  const r1 = await first;
  expectExit(r1, 0);
  const r2 = await second!;
  expect(holder?.spec?.holderIdentity).toMatch(/^[^@]+@[^ ]+ \(pid \d+\)$/);
  expect({ code: r2.code, stderr: r2.stderr }).toMatchObject({
    code: 1,
    stderr: expect.stringContaining(
      `is being changed by another runner: ${holder?.spec?.holderIdentity} runs \`deploy\` since ${holder?.spec?.acquireTime}; nothing was changed`,
    ),
  });
  expect(r2.stderr).toContain('--break-lock');
  expect(r2.stdout).not.toMatch(/update: applied/);
});

test('a live lock of another machine refuses every command that changes the cluster, before it changes anything', async () => {
  await kube.create(foreignLease(2));
  const before = await profileObjects();
  for (const command of ['deploy', 'update', 'resume', 'destroy', 'smoke']) {
    const r = await cli(command);
    expect({ command, code: r.code, stderr: r.stderr }).toMatchObject({
      command,
      code: 1,
      stderr: expect.stringContaining(
        'is being changed by another runner: alice@laptop-2 (pid 4242) runs `update` since',
      ),
    });
  }
  expect(await profileObjects()).toEqual(before);
  // Reading is never locked.
  expect((await cli('status')).code).toBe(0);
  expect((await lease())?.spec?.holderIdentity).toBe('alice@laptop-2 (pid 4242)');
});

test('a lock whose runner is gone expires and is taken over; --break-lock takes a live one, and says whose it broke', async () => {
  // Its clock an hour ahead: by its renewTime it would look live for an hour yet.
  await kube.create(foreignLease(-3600, 1));
  await untilLockExpired(kube, lockName(PROFILE));
  const expired = await cli('update');
  expectExit(expired, 0);
  expect(expired.output).toMatch(
    /took over the lock of alice@laptop-2 \(pid 4242\) \(update, last renewed .*\): it had expired/,
  );
  expect(await lease()).toBeUndefined();

  await kube.create(foreignLease(1));
  const broken = await cli('update', '--break-lock');
  expectExit(broken, 0);
  expect(broken.output).toMatch(
    /broke the lock of alice@laptop-2 \(pid 4242\) \(update, since .*\) as asked \(--break-lock\)/,
  );
  expect(await lease()).toBeUndefined();
});

/**
 * Clocks differ between machines: expiry is judged on the API server's clock, so neither the
 * holder's clock nor this runner's can end a live lock or prolong a dead one.
 */
test("a live lock is kept whoever's clock is off: the holder's an hour behind, or this runner's an hour ahead", async () => {
  // Renewed an hour ago by its own clock, which is behind: by renewTime it expired long ago.
  await kube.create(foreignLease(3600));
  const behind = await cli('update');
  expect({ code: behind.code, stderr: behind.stderr }).toMatchObject({
    code: 1,
    stderr: expect.stringContaining('is being changed by another runner: alice@laptop-2 (pid 4242)'),
  });
  await kube.delete('Lease', lockName(PROFILE), LOCK_NAMESPACE);

  await kube.create(foreignLease(2));
  const args = ['update', `--profile=${PROFILE}`, `--context=${CONTEXT}`, '--timeout=120'];
  const ahead = await runCli(args, { env: skewedClock('+1h') });
  expect({ code: ahead.code, stderr: ahead.stderr }).toMatchObject({
    code: 1,
    stderr: expect.stringContaining('is being changed by another runner: alice@laptop-2 (pid 4242)'),
  });
  expect((await lease())?.spec?.holderIdentity).toBe('alice@laptop-2 (pid 4242)');
});

test('a runner killed while holding the lock leaves it until it expires or is broken, whatever its clock said', async () => {
  // The killed runner's clock was an hour ahead: its renewTime says the lock is live for an hour.
  const killed = await runCli(['update', `--profile=${PROFILE}`, `--context=${CONTEXT}`], {
    env: skewedClock('+1h'),
    onStdout: (out, child) => {
      if (/update: applied/.test(out) && !child.killed) child.kill('SIGKILL');
    },
  });
  expect(killed.code).toBeNull();
  const left = await lease();
  expect(left?.metadata.annotations?.['sandstore.io/lock-command']).toBe('update');
  expect(Date.parse(left!.spec!.renewTime!) - Date.now()).toBeGreaterThan(3000_000);
  const refused = await cli('update');
  expect(refused.code).toBe(1);
  expect(refused.stderr).toContain(`runs \`update\` since ${left?.spec?.acquireTime}`);
  // A lease after its last renewal on the server's clock, it is taken over without --break-lock.
  await untilLockExpired(kube, lockName(PROFILE));
  const after = await cli('update');
  expectExit(after, 0);
  expect(after.output).toMatch(/took over the lock of .* \(update, last renewed .*\): it had expired/);
});

/**
 * One profile at a time on a cluster (the seed's Flow 3 pre-flight): a deploy of another profile
 * while `local` is live is refused, and neither profile changes.
 */
describe('another profile live on the cluster', () => {
  let work: string;
  const OTHER = 'other';
  const otherObjects = async () => {
    const lists = await Promise.all(
      [
        'Namespace',
        'StorageClass',
        'StatefulSet',
        'Pod',
        'PersistentVolumeClaim',
        'Service',
        'ConfigMap',
        'Job',
        'Lease',
      ].map((kind) => kube.list(kind, { labelSelector: profileSelector(OTHER) })),
    );
    return lists.flatMap((l) => l.items.map((o) => `${o.kind}/${o.metadata.name}`));
  };
  /** local's volumes, with their versions: a refused deploy must not have touched the data. */
  const localVolumes = async () => {
    const claims = (await kube.list('PersistentVolumeClaim', { labelSelector: profileSelector(PROFILE) })).items;
    expect(claims.length).toBeGreaterThan(0);
    return Promise.all(
      claims.map(async (c) => {
        const pv = await kube.get('PersistentVolume', c.spec?.volumeName ?? '');
        return `${pv.metadata.name}@${pv.metadata.uid}/${pv.metadata.resourceVersion} ${pv.status?.phase}`;
      }),
    );
  };

  beforeAll(() => {
    work = projectWithVariant(
      'local',
      OTHER,
      `namespace: 'sandstore-other', storage: { ...base.storage, className: 'sandstore-local-ssd-other' }, clientAccess: { nodePortBase: 30580 }`,
    );
  });

  test('a deploy while another profile is live is refused, naming it and the command that removes it; neither profile changes', async () => {
    const before = [await profileObjects(), await localVolumes()];
    const r = await runCli(['deploy', `--profile=${OTHER}`, `--context=${CONTEXT}`, '--timeout=120'], { cwd: work });
    // Should it not be refused, it must not stay: every later deploy would be refused in its turn.
    if (r.code !== 1) await runCli(['destroy', `--profile=${OTHER}`, `--context=${CONTEXT}`], { cwd: work });
    expect({ code: r.code, stderr: r.stderr }).toMatchObject({
      code: 1,
      stderr: expect.stringContaining(`${CONTEXT} already runs Sand Store profile ${PROFILE}; one profile at a time`),
    });
    expect(r.stderr).toMatch(
      /profile local: 2 StatefulSet, .*\d+ Pod, 4 PersistentVolumeClaim in namespace sandstore-local\n/,
    );
    expect(r.stderr).toContain(`npm run destroy -- --profile=${PROFILE} --context=${CONTEXT}`);
    expect(r.stderr).not.toMatch(/^\s+at /m);
    expect(r.stdout).not.toMatch(/destroy: |base: /);
    expect([await profileObjects(), await localVolumes()]).toEqual(before);
    // Nothing of the refused profile reached the cluster, and its lock went with it.
    expect(await otherObjects()).toEqual([]);
    expect(await kube.find('Lease', lockName(OTHER), LOCK_NAMESPACE)).toBeUndefined();
  });

  test("a runner holding another profile's lock also refuses a deploy: it may be creating that profile's objects", async () => {
    const at = microTime();
    await kube.create({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: lockName('ghost'),
        namespace: LOCK_NAMESPACE,
        labels: { 'app.kubernetes.io/managed-by': 'sandstore-deploy', 'sandstore.io/profile': 'ghost' },
        annotations: { 'sandstore.io/lock-command': 'deploy' },
      },
      spec: {
        holderIdentity: 'bob@laptop-3 (pid 99)',
        leaseDurationSeconds: LEASE_SECONDS,
        acquireTime: at,
        renewTime: at,
      },
    });
    try {
      const r = await runCli(['deploy', `--profile=${OTHER}`, `--context=${CONTEXT}`, '--timeout=120'], { cwd: work });
      expect({ code: r.code, stderr: r.stderr }).toMatchObject({
        code: 1,
        stderr: expect.stringContaining('already runs Sand Store profile ghost, local;'),
      });
      expect(r.stderr).toContain(`profile ghost: its runner bob@laptop-3 (pid 99) runs \`deploy\` since ${at}`);
      // No profiles/ghost.ts here: the way out is kubectl, on the context acted on.
      expect(r.stderr).toContain(
        `kubectl --context ${CONTEXT} delete statefulset,job,pod,pvc --all-namespaces -l sandstore.io/profile=ghost`,
      );
      expect(await otherObjects()).toEqual([]);
    } finally {
      await kube.delete('Lease', lockName('ghost'), LOCK_NAMESPACE);
    }
  });
});

afterAll(async () => {
  await kube.delete('Lease', lockName(PROFILE), LOCK_NAMESPACE);
  await runCli(['destroy', `--profile=${PROFILE}`, `--context=${CONTEXT}`, '--timeout=120']);
});
