import { execFileSync } from 'node:child_process';
import { profileSelector } from '../../lib/labels.js';
import { CONTEXT, expectExit, kubeFor, root, runCli } from './harness.js';

/**
 * With two local clusters up, the runner acts only on the one it is pointed at: the other one's
 * objects keep their resourceVersions.
 */
const OTHER = `${CONTEXT}-b`;

beforeAll(() => {
  execFileSync('bash', ['scripts/local-cluster/up.sh', '--name', OTHER, '--no-node'], { cwd: root, stdio: 'inherit' });
});
afterAll(() => {
  execFileSync('bash', ['scripts/local-cluster/down.sh', '--name', OTHER], { cwd: root, stdio: 'inherit' });
});

test('deploying and destroying on one cluster leaves the other unchanged', async () => {
  const a = kubeFor(CONTEXT);
  const b = kubeFor(OTHER);
  // Something of the profile on A, to see that B's deploy (a clean slate) does not destroy it.
  const onA = await runCli(['deploy', '--profile=local', `--context=${CONTEXT}`, '--timeout=90']);
  expectExit(onA, 0);
  const fingerprint = async () => {
    const lists = await Promise.all(
      ['Namespace', 'StatefulSet', 'Pod', 'PersistentVolumeClaim', 'PersistentVolume', 'StorageClass', 'Service'].map(
        (k) => a.list(k),
      ),
    );
    return lists
      .flatMap((l) =>
        l.items.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}@${o.metadata.resourceVersion}`),
      )
      .sort();
  };
  const before = await fingerprint();

  const deployB = await runCli(['deploy', '--profile=local', `--context=${OTHER}`, '--timeout=90']);
  expectExit(deployB, 0);
  expect(deployB.stdout).toContain(`acting on context ${OTHER} (from flag --context)`);
  expect((await b.list('Pod', { labelSelector: profileSelector('local') })).items.length).toBeGreaterThan(0);
  const destroyB = await runCli(['destroy', '--profile=local', `--context=${OTHER}`, '--timeout=90']);
  expectExit(destroyB, 0);

  expect(await fingerprint()).toEqual(before);
  expect((await runCli(['destroy', '--profile=local', `--context=${CONTEXT}`])).code).toBe(0);
});
