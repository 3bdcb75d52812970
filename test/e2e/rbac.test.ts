import { KubeConfig } from '@kubernetes/client-node';
import { spawnSync } from 'node:child_process';
import { parseAllDocuments } from 'yaml';
import { ApiError, Kube } from '../../lib/runner/kube.js';
import { LOCK_NAMESPACE, lockName, microTime } from '../../lib/runner/lock.js';
import {
  auditEntries,
  CONTEXT,
  expectExit,
  followUntilEveryPod,
  kubeFor,
  kubeconfigAs,
  runCli,
  untilLockExpired,
} from './harness.js';

/**
 * Least privilege, on a real API server: a teammate who holds only what `npm run rbac` prints for
 * the `local` profile (a ServiceAccount token, bound by an admin with `kubectl apply`) runs every
 * runner command, deploy to destroy and a second deploy after it (the grant lives in the namespace,
 * which destroy keeps). Any command that starts needing a permission the roles lack fails here with
 * the API server's 403. The same teammate is refused another namespace's pods and cluster-wide
 * deletes; and with one rule taken away, the command that needs it fails with the runner's own error.
 */
const admin = kubeFor();
const suffix = Date.now().toString(36);
const sa = `sandstore-teammate-${suffix}`;
const NAMESPACE = 'sandstore-local';
let env: NodeJS.ProcessEnv;
let teammate: Kube;

const kubectl = (args: string[], input?: string) => {
  const r = spawnSync('kubectl', ['--context', CONTEXT, ...args], { input, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
};
const asTeammate = (command: string, ...args: string[]) =>
  runCli([command, '--profile=local', '--timeout=120', ...args], { env });

let grants = '';
/** When the teammate's first command started: the audit log is read from then on. */
let flowStart = 0;
beforeAll(async () => {
  // Another test may have left the profile deployed under the admin: start from nothing of it.
  expectExit(await runCli(['destroy', '--profile=local', '--wait-namespace']), 0);
  await admin.request('POST', '/api/v1/namespaces/default/serviceaccounts', { body: { metadata: { name: sa } } });
  const printed = await runCli(['rbac', '--profile=local', `--service-account=default/${sa}`]);
  expectExit(printed, 0);
  grants = printed.stdout;
  // As the README says an admin grants them.
  kubectl(['apply', '-f', '-'], grants);
  const { status } = await admin.request<{ status: { token: string } }>(
    'POST',
    `/api/v1/namespaces/default/serviceaccounts/${sa}/token`,
    { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } } },
  );
  const file = kubeconfigAs({ token: status.token });
  env = { KUBECONFIG: file };
  const kc = new KubeConfig();
  kc.loadFromFile(file);
  kc.setCurrentContext(CONTEXT);
  teammate = new Kube(kc);
});

afterAll(async () => {
  // The grants and the namespace they kept (the YAML holds it): later tests find the cluster as before.
  kubectl(['delete', '--ignore-not-found', '--wait=false', '-f', '-'], grants);
  await admin.request('DELETE', `/api/v1/namespaces/default/serviceaccounts/${sa}`).catch(() => undefined);
});

describe('a teammate bound only to the printed roles', () => {
  test('the printed YAML parses and binds this ServiceAccount', () => {
    const kinds = parseAllDocuments(grants).map((d) => (d.toJS() as { kind: string }).kind);
    expect(kinds).toEqual([
      'Namespace',
      'ClusterRole',
      'ClusterRoleBinding',
      'Role',
      'RoleBinding',
      'Role',
      'RoleBinding',
    ]);
    expect(grants).toContain(`name: ${sa}`);
  });

  test('check, deploy, status, diff', async () => {
    flowStart = Date.now() - 100;
    expectExit(await asTeammate('check'), 0);
    const deployed = await asTeammate('deploy');
    expectExit(deployed, 0);
    expect(deployed.stdout).toContain('done: profile local deployed');
    const status = await asTeammate('status');
    expectExit(status, 0);
    expect(status.stdout).toMatch(/StatefulSet sandstore: 3\/3 ready, 3 updated, rolled out/);
    const diff = await asTeammate('diff');
    expectExit(diff, 0);
    expect(diff.stdout).toContain('no differences');
  });

  test('smoke, logs (one pod, and following all), client', async () => {
    const smoke = await asTeammate('smoke');
    expectExit(smoke, 0);
    expect(smoke.stdout).toContain('smoke test passed against 3 nodes');
    expectExit(await asTeammate('logs', '--pod=sandstore-0'), 0);
    const { r: follow, seen } = await followUntilEveryPod('local', env);
    expect(follow.code).toBe(0);
    expect(follow.stderr).not.toMatch(/forbidden|cannot stream/);
    expect(seen).toEqual(['sandstore-0', 'sandstore-1', 'sandstore-2']);
    const client = await asTeammate('client');
    expectExit(client, 0);
    expect(client.stdout).toMatch(/SANDSTORE_SEEDS=\S+:3028\d/);
  });

  test("conformance: writes its Job, the tests' ServiceAccount and the Role it binds them to (the escalation check: only what the teammate holds), and removes them", async () => {
    // kwok completes the Job's pod (exit 0) and serves its fixture log, which holds no test: the run
    // fails saying so, after every write and removal the teammate's roles must allow.
    const r = await asTeammate('conformance', '--test-image=localhost:5000/sandstore-cluster-tests:kwok');
    expectExit(r, 1);
    expect(r.stderr).toContain('error: the test binary ran no test (exit 0');
    expect(r.output).not.toMatch(/forbidden/i);
    expect(r.stdout).toContain(
      'removed Job sandstore-conformance, RoleBinding sandstore-conformance, Role sandstore-conformance, ServiceAccount sandstore-conformance',
    );
  }, 300_000);

  test('update, resume', async () => {
    const updated = await asTeammate('update');
    expectExit(updated, 0);
    expect(updated.stdout).toContain('rolled out');
    // A lock whose runner is gone (its lease of 1 s over on the server's clock): resume takes it
    // over, which is an update of the Lease by name, as every renewal is (the commands here end
    // before their first, 10 s in).
    const at = microTime();
    await admin.create({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: lockName('local'), namespace: LOCK_NAMESPACE },
      spec: { holderIdentity: 'bob@laptop (pid 1)', leaseDurationSeconds: 1, acquireTime: at, renewTime: at },
    });
    await untilLockExpired(admin, lockName('local'));
    const resumed = await asTeammate('resume');
    expectExit(resumed, 0);
    expect(resumed.stderr).toContain('took over the lock of bob@laptop (pid 1)');
    expect(await admin.find('Lease', lockName('local'), LOCK_NAMESPACE)).toBeUndefined();
  });

  test('destroy empties the namespace and keeps it, with the grant in it; a second deploy and destroy work', async () => {
    const destroyed = await asTeammate('destroy');
    expectExit(destroyed, 0);
    expect(destroyed.stdout).toContain('namespace sandstore-local kept (annotation sandstore.io/keep-on-destroy');
    const ns = await admin.get('Namespace', NAMESPACE);
    expect(ns.metadata.deletionTimestamp).toBeUndefined();
    expect((await admin.list('Pod', { namespace: NAMESPACE })).items).toEqual([]);
    expect((await admin.list('PersistentVolumeClaim', { namespace: NAMESPACE })).items).toEqual([]);
    expectExit(await asTeammate('deploy'), 0);
    expectExit(await asTeammate('destroy', '--wait-namespace'), 0);
  });

  test("the audit log: no request of the teammate refused during those commands, and every write the roles grant was used but the benchmark's and one of destroy's", async () => {
    const user = `system:serviceaccount:default:${sa}`;
    const requests = (await auditEntries(flowStart, Date.now() + 100)).filter((e) => e.user?.username === user);
    expect(requests.length).toBeGreaterThan(50);
    // Refusals a command shrugs off (a lock it could not release, a log it could not stream) count too.
    expect(requests.filter((e) => e.responseStatus?.code === 403).map((e) => `${e.verb} ${e.requestURI}`)).toEqual([]);
    const resource = (e: { objectRef?: { apiGroup?: string; resource?: string; subresource?: string } }) =>
      `${e.objectRef?.apiGroup ?? ''}/${e.objectRef?.resource}${e.objectRef?.subresource ? `/${e.objectRef.subresource}` : ''}`;
    // A server-side apply of an absent object is a patch answered 201, authorized as create too.
    const used = new Set(
      requests.flatMap((e) => [
        `${resource(e)} ${e.verb}`,
        ...(e.verb === 'patch' && e.responseStatus?.code === 201 ? [`${resource(e)} create`] : []),
      ]),
    );
    const granted = parseAllDocuments(grants)
      .map((d) => d.toJS() as { rules?: { apiGroups: string[]; resources: string[]; verbs: string[] }[] })
      .flatMap((o) => o.rules ?? [])
      .flatMap((r) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}/${res} ${v}`))))
      .filter((g) => !/ (get|list|watch)$/.test(g) || g.startsWith('/pods/'));
    expect([...new Set(granted)].filter((g) => !used.has(g)).sort()).toEqual([
      // (Pods' delete is used: update replaces the data plane's pods itself, in quorum order.)
      // The benchmark's reads inside the servers (not run here: it needs the real node); websocket
      // exec is authorized as get, other clients' as create.
      '/pods/exec create',
      '/pods/exec get',
      '/pods/proxy get',
      // Held only to be granted: conformance binds the tests to upstream's Role, and the API server
      // lets a user bind only what it holds. The tests scale through it (not run on kwok).
      'apps/statefulsets update',
      'apps/statefulsets/scale patch',
      'apps/statefulsets/scale update',
    ]);
  });

  test("refused: another namespace's pods (delete, logs, exec, create) and cluster-wide deletes, by RBAC", async () => {
    const other = `rbac-other-${suffix}`;
    await admin.request('POST', '/api/v1/namespaces', { body: { metadata: { name: other } } });
    try {
      // Someone else's pod (never scheduled: its object is what is asked about).
      const aPod = { metadata: { name: 'theirs' }, spec: { containers: [{ name: 'x', image: 'x' }] } };
      await admin.request('POST', `/api/v1/namespaces/${other}/pods`, { body: aPod });
      const podPath = `/api/v1/namespaces/${other}/pods/theirs`;
      // Every delete and create is a dry run: were it allowed, nothing would change.
      const dry = { query: { dryRun: 'All' } };
      const refusal = (kube: Kube, method: string, path: string, opts: Parameters<Kube['request']>[2] = dry) =>
        kube.request(method, path, opts).then(
          () => 'allowed',
          (err: unknown) => (err instanceof ApiError ? err.message : Promise.reject(err)),
        );
      const forbidden = (verb: string, resource: string) =>
        new RegExp(
          `: 403 .*forbidden: User "system:serviceaccount:default:${sa}" cannot ${verb} resource "${resource}"`,
        );
      // The controls: the same requests are valid, the admin's are allowed.
      expect(await refusal(admin, 'DELETE', podPath)).toBe('allowed');
      expect(await refusal(admin, 'DELETE', `/api/v1/namespaces/${other}`)).toBe('allowed');
      expect(await refusal(teammate, 'DELETE', podPath)).toMatch(forbidden('delete', 'pods'));
      expect(await refusal(teammate, 'GET', `${podPath}/log`, { raw: true })).toMatch(forbidden('get', 'pods/log'));
      expect(await refusal(teammate, 'POST', `${podPath}/exec`, { query: { command: 'true' } })).toMatch(
        forbidden('create', 'pods/exec'),
      );
      expect(await refusal(teammate, 'POST', `/api/v1/namespaces/${other}/pods`, { ...dry, body: aPod })).toMatch(
        forbidden('create', 'pods'),
      );
      expect(await refusal(teammate, 'DELETE', `/api/v1/namespaces/${other}`)).toMatch(
        forbidden('delete', 'namespaces'),
      );
      expect(await refusal(teammate, 'DELETE', `/api/v1/namespaces/${NAMESPACE}`)).toMatch(
        forbidden('delete', 'namespaces'),
      );
      const node = (await admin.list('Node')).items[0].metadata.name;
      expect(await refusal(teammate, 'DELETE', `/api/v1/nodes/${node}`)).toMatch(forbidden('delete', 'nodes'));
      for (const [path, resource] of [
        ['/api/v1/nodes', 'nodes'],
        ['/api/v1/persistentvolumes', 'persistentvolumes'],
        ['/apis/storage.k8s.io/v1/storageclasses', 'storageclasses'],
        [`/api/v1/namespaces/${other}/pods`, 'pods'],
        [`/api/v1/namespaces/${NAMESPACE}/pods`, 'pods'],
      ])
        expect(await refusal(teammate, 'DELETE', path)).toMatch(forbidden('deletecollection', resource));
      // Inside its namespace, the same client's delete is allowed (and finds nothing of that name).
      expect(await refusal(teammate, 'DELETE', `/api/v1/namespaces/${NAMESPACE}/configmaps/none`)).toMatch(/: 404 /);
    } finally {
      await admin.delete('Namespace', other);
    }
  });

  test("with pods/log taken away, logs fails with the runner's error naming the permission and where to get it", async () => {
    expectExit(await asTeammate('deploy'), 0);
    const role = `sandstore-deploy-local`;
    const live = await admin.request<{ rules: { resources: string[] }[] }>(
      'GET',
      `/apis/rbac.authorization.k8s.io/v1/namespaces/${NAMESPACE}/roles/${role}`,
    );
    const without = live.rules.filter((r) => !r.resources.includes('pods/log'));
    expect(without.length).toBe(live.rules.length - 1);
    await admin.request('PUT', `/apis/rbac.authorization.k8s.io/v1/namespaces/${NAMESPACE}/roles/${role}`, {
      body: { ...live, rules: without },
    });
    try {
      const r = await asTeammate('logs', '--pod=sandstore-0');
      expectExit(r, 1);
      expect(r.stderr).toContain(
        `error: no logs for container events of pod sandstore-0: pods "sandstore-0" is forbidden: User "system:serviceaccount:default:${sa}" cannot get resource "pods/log"`,
      );
      expect(r.stderr).toContain('docs/commands.md#permissions');
      expect(r.stderr).not.toContain('internal error');
    } finally {
      kubectl(['apply', '-f', '-'], grants);
    }
    expectExit(await asTeammate('logs', '--pod=sandstore-0'), 0);
    expectExit(await asTeammate('destroy'), 0);
  });
});
