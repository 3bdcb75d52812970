import { LabelKeys, profileSelector } from '../../lib/labels.js';
import { distDir } from '../../lib/paths.js';
import { listProfiles, loadProfile } from '../../lib/profiles.js';
import { readManifests } from '../../lib/runner/manifests.js';
import { CONTEXT, expectExit, kubeFor, podReady, runCli } from './harness.js';

/**
 * Every profile's dist/ on the real control plane: accepted by a server-side dry run, then deployed
 * for real into a namespace that enforces Pod Security "restricted"; etcd and Sand Store pods reach
 * Ready on the kwok nodes with their claims Bound; and destroy removes it all again.
 */
const kube = kubeFor();

describe.each(listProfiles())('profile %s on the local control plane', (name) => {
  test('dry run accepts every object; deploy reaches Ready with claims Bound on SSD nodes; destroy removes it', async () => {
    const profile = await loadProfile(name);
    const manifests = await readManifests(distDir(), profile);
    // Start from nothing (a namespace left terminating by an earlier run refuses new objects).
    expect((await runCli(['destroy', `--profile=${name}`, `--context=${CONTEXT}`, '--wait-namespace'])).code).toBe(0);

    // Dry run needs the namespace to exist; create it (as dist/ has it), dry-run everything else.
    const ns = manifests.find((m) => m.kind === 'Namespace')!;
    await kube.apply(ns);
    for (const m of manifests.filter((o) => o.kind !== 'Namespace')) {
      await expect(kube.apply(m, { dryRun: true })).resolves.toMatchObject({ metadata: { name: m.metadata.name } });
    }
    expect((await kube.get('Namespace', profile.namespace)).metadata.labels).toMatchObject({
      'pod-security.kubernetes.io/enforce': 'restricted',
    });

    const deployed = await runCli(['deploy', `--profile=${name}`, `--context=${CONTEXT}`, '--timeout=180']);
    expectExit(deployed, 0);
    expect(deployed.stdout).toContain(`acting on context ${CONTEXT}`);

    const selector = profileSelector(name);
    const pods = (await kube.list('Pod', { namespace: profile.namespace, labelSelector: selector })).items;
    const running = pods.filter((p) =>
      ['control-plane', 'data-plane'].includes(p.metadata.labels![LabelKeys.component]),
    );
    expect(running).toHaveLength(profile.raft.replicas + profile.etcd.replicas);
    for (const p of running) {
      expect({ pod: p.metadata.name, ready: podReady(p) }).toEqual({ pod: p.metadata.name, ready: true });
      const node = await kube.get('Node', p.spec?.nodeName ?? '');
      expect(node.metadata.labels).toMatchObject(profile.nodeSelection.nodeSelector);
    }
    const claims = (await kube.list('PersistentVolumeClaim', { namespace: profile.namespace, labelSelector: selector }))
      .items;
    expect(claims).toHaveLength(profile.raft.replicas + profile.etcd.replicas);
    for (const c of claims)
      expect({ claim: c.metadata.name, phase: c.status?.phase }).toEqual({ claim: c.metadata.name, phase: 'Bound' });

    const destroyed = await runCli(['destroy', `--profile=${name}`, `--context=${CONTEXT}`, '--timeout=120']);
    expectExit(destroyed, 0);
  });
});
