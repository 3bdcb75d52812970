import { expect } from '@jest/globals';
import { spawn } from 'node:child_process';
import { componentSelector, Component, profileSelector } from '../../lib/labels.js';
import { objectsOf, waitFor } from '../../lib/runner/watch.js';
import { CONTEXT, deployedDuringSuite, kubeFor } from './harness.js';

/**
 * Seed 004's own kubectl lines, run verbatim against `local-node` on the real node: Flow 5's
 * `kubectl logs -l app=sandstore -f` and Flow 2's `kubectl delete pvc -l app=sandstore` and
 * `kubectl wait --for=delete pod -l app=sandstore`. Each gets `--context` (the seed's own rule for
 * every kubectl line) and `--namespace`, so that they act only on this suite's cluster and the
 * profile's namespace, never the kubeconfig's current ones.
 */
const PROFILE = 'local-node';
const NAMESPACE = 'sandstore-node';
const kube = kubeFor();
const scoped = [`--context=${CONTEXT}`, `--namespace=${NAMESPACE}`];

deployedDuringSuite(PROFILE);

const dataPlanePods = async () =>
  (
    await kube.list('Pod', { namespace: NAMESPACE, labelSelector: componentSelector(PROFILE, Component.dataPlane) })
  ).items
    .map((p) => p.metadata.name)
    .sort();

/**
 * Flow 5's line, with kubectl's request log (-v=6) on: it follows a log stream of every pod the
 * selector matched. Resolves with the pods whose log it opened once it has one for each of
 * `expected` (then it is stopped), or with what it printed if it ended by itself.
 */
function followedPods(expected: readonly string[]): Promise<{ pods: string[]; output: string }> {
  const args = ['logs', '-l', 'app=sandstore', '-f', '--max-log-requests=10', ...scoped, '-v=6'];
  const child = spawn('kubectl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const opened = () =>
    [...output.matchAll(new RegExp(`/namespaces/${NAMESPACE}/pods/([^/]+)/log\\?[^ ]*follow=true[^ ]* 200 OK`, 'g'))]
      .map((m) => m[1])
      .sort();
  return new Promise((resolve) => {
    const onData = (d: Buffer) => {
      output += d.toString();
      if (expected.every((p) => opened().includes(p))) child.kill('SIGINT');
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('close', () => resolve({ pods: [...new Set(opened())], output }));
  });
}

test("Flow 5's `kubectl logs -l app=sandstore -f` follows every Sand Store node's pod and nothing else", async () => {
  const pods = await dataPlanePods();
  expect(pods).toEqual(['sandstore-0', 'sandstore-1', 'sandstore-2']);
  const followed = await followedPods(pods);
  // Without the label on the pods kubectl says "No resources found" and ends at once.
  expect(followed.output).not.toMatch(/No resources found/);
  expect(followed.pods).toEqual(pods);
}, 120_000);

test("Flow 2's `kubectl delete pvc -l app=sandstore` deletes every Sand Store node's claim, not etcd's", async () => {
  const claims = async (selector: string) =>
    (await kube.list('PersistentVolumeClaim', { namespace: NAMESPACE, labelSelector: selector })).items
      .map((c) => c.metadata.name)
      .sort();
  const etcdClaims = await claims(componentSelector(PROFILE, Component.controlPlane));
  expect(etcdClaims.length).toBeGreaterThan(0);
  expect(await claims(componentSelector(PROFILE, Component.dataPlane))).toEqual([
    'data-sandstore-0',
    'data-sandstore-1',
    'data-sandstore-2',
  ]);
  // Flow 2's step 1 for the data plane: its workload goes first, so that the claims are not in use.
  const kubectl = (...args: string[]) => runKubectl([...args, ...scoped]);
  expect((await kubectl('delete', 'statefulset', 'sandstore', '--wait=false')).code).toBe(0);

  const deleted = await kubectl('delete', 'pvc', '-l', 'app=sandstore', '--ignore-not-found=true');
  expect(deleted.code).toBe(0);
  expect(deleted.stdout).toMatch(/data-sandstore-0.*deleted/);
  const waited = await kubectl('wait', '--for=delete', 'pod', '-l', 'app=sandstore', '--timeout=60s');
  expect(waited).toMatchObject({ code: 0 });

  // The claims go once their pods have: watched, not polled.
  await waitFor(
    kube,
    [{ key: 'claims', kind: 'PersistentVolumeClaim', namespace: NAMESPACE, labelSelector: profileSelector(PROFILE) }],
    {
      what: "the data plane's claims to be deleted",
      timeoutSeconds: 120,
      check: (snap) => {
        const left = objectsOf(snap, 'claims', 'PersistentVolumeClaim').map((c) => c.metadata.name);
        return left.every((name) => etcdClaims.includes(name)) ? left.sort() : undefined;
      },
    },
  ).then((left) => expect(left).toEqual(etcdClaims));
}, 300_000);

function runKubectl(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('kubectl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
