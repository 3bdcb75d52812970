import { existsSync } from 'node:fs';
import {
  auditEntries,
  auditLog,
  type AuditEntry,
  CONTEXT,
  expectExit,
  kubeFor,
  kubeconfigAs,
  projectWithVariant,
  runCli,
  type CliResult,
} from './harness.js';

/**
 * `check` and deploy's pre-flight against the real local control plane: each check made to fail
 * on the cluster (a node selector no node matches, a provisioner name nothing serves, requests
 * above what the nodes have, a node port another Service holds, a user who may not list nodes, an
 * API server that is not there), the committed `local` profile passing, and every run read-only,
 * as the API server's own audit log records it.
 */
const kube = kubeFor();
const check = (args: string[] = [], opts: Parameters<typeof runCli>[1] = {}) =>
  runCli(['check', '--profile=local', `--context=${CONTEXT}`, ...args], opts);
const line = (r: CliResult, name: string) =>
  r.stdout
    .split('\n')
    .find((l) => l.startsWith(`✓ ${name}:`) || l.startsWith(`✗ ${name}:`) || l.startsWith(`! ${name}:`)) ??
  `(no line for ${name})`;

/** The runner's requests (its user agent) received in [from, to], from the API server's audit log. */
const runnerRequests = async (from: number, to: number) =>
  (await auditEntries(from, to)).filter((e) => (e.userAgent ?? '').startsWith('sandstore-deploy'));

/** Runs `run` and returns its result with the runner's requests the audit log saw meanwhile. */
async function audited(run: () => Promise<CliResult>): Promise<{ r: CliResult; requests: AuditEntry[] }> {
  const from = Date.now() - 100;
  const r = await run();
  return { r, requests: await runnerRequests(from, Date.now() + 100) };
}
const writes = (requests: AuditEntry[]) =>
  requests.filter((e) => !['get', 'list', 'watch'].includes(e.verb)).map((e) => `${e.verb} ${e.requestURI}`);

beforeAll(() => {
  if (!existsSync(auditLog()))
    throw new Error(`no audit log at ${auditLog()}: the local cluster's up.sh starts the API server with one`);
});

test('the committed local profile (kwok nodes) passes every check, on evidence it names, and sends only reads', async () => {
  const { r, requests } = await audited(() => check());
  expectExit(r, 0);
  expect(line(r, 'connection')).toMatch(
    /^✓ connection: context .* reaches the API server at https:\/\/127\.0\.0\.1:\d+ \(Kubernetes v1\.28\.15\)$/,
  );
  expect(line(r, 'version')).toMatch(/^✓ version: Kubernetes v1\.28\.15 serves everything/);
  expect(line(r, 'nodes')).toBe(
    '✓ nodes: 2 schedulable nodes match the node selector and taints: kwok-ssd-0, kwok-ssd-1',
  );
  // The test provisioner's leader-election Lease, renewed every 2 s, is the evidence.
  expect(line(r, 'provisioner')).toMatch(
    /^✓ provisioner: rancher\.io\/local-path is served: its leader-election Lease kube-system\/rancher\.io-local-path, held by sandstore-local-provisioner_\S+, renewed \d+s ago$/,
  );
  expect(line(r, 'resources')).toMatch(/^✓ resources: the 5 pods' requests fit on kwok-ssd-0, kwok-ssd-1/);
  expect(line(r, 'node ports')).toBe('✓ node ports: node ports 30280-30282 are free');
  expect(line(r, 'image')).toBe(
    '✓ image: registry localhost:5000 answers /v2/ (profiles name no pull secret, so only reachability from this machine is checked)',
  );
  expect(requests.length).toBeGreaterThan(5);
  expect(writes(requests)).toEqual([]);
});

test('a node port held by another Service: ✗ naming it and the command that frees it; the control shows the audit log sees writes', async () => {
  const name = `holds-30281-${Date.now().toString(36)}`;
  const from = Date.now() - 100;
  await kube.create({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'default' },
    spec: { type: 'NodePort', selector: { app: 'none' }, ports: [{ port: 80, nodePort: 30281 }] },
  });
  try {
    // The test's own create went out with the runner's client: the audit log must show it as a write.
    expect(writes(await runnerRequests(from, Date.now() + 100))).toContain(
      'create /api/v1/namespaces/default/services',
    );
    const { r, requests } = await audited(() => check());
    expectExit(r, 1);
    expect(line(r, 'node ports')).toMatch(
      new RegExp(
        `^✗ node ports: node port held by another Service: 30281 by Service default/${name}; fix: kubectl --context=${CONTEXT} delete service -n default ${name}, or set clientAccess.nodePortBase to \\d+ in profiles/local\\.ts`,
      ),
    );
    expect(r.stdout).toContain('1 problem, ');
    expect(writes(requests)).toEqual([]);
  } finally {
    await kube.delete('Service', name, 'default');
  }
});

describe('profiles the cluster cannot hold', () => {
  let work: string;
  let huge: string;
  beforeAll(() => {
    // A selector no node carries, and a provisioner name nothing serves.
    work = projectWithVariant(
      'local',
      'nowhere',
      `namespace: 'sandstore-nowhere', clientAccess: { nodePortBase: 30680 },
  storage: { ...base.storage, className: 'sandstore-nowhere-ssd', provisioner: 'example.com/nothing' },
  nodeSelection: { ...base.nodeSelection, nodeSelector: { 'node.sandstore.io/disk': 'nvme' } }`,
    );
    huge = projectWithVariant(
      'local',
      'toobig',
      `namespace: 'sandstore-toobig', clientAccess: { nodePortBase: 30690 },
  storage: { ...base.storage, className: 'sandstore-toobig-ssd' },
  resources: { ...base.resources, etcd: { requests: { cpu: '64', memory: '64Mi' }, limits: { cpu: '64', memory: '64Mi' } } }`,
    );
  });

  test('a selector no node matches and a provisioner nothing serves: ✗ each, with the fix; the other checks still run', async () => {
    const r = await runCli(['check', '--profile=nowhere', `--context=${CONTEXT}`], { cwd: work });
    expectExit(r, 1);
    expect(line(r, 'nodes')).toMatch(
      new RegExp(
        `^✗ nodes: no schedulable node for (StatefulSet|Job) \\S+ \\(node selector node\\.sandstore\\.io/disk=nvme\\): .*kwok-ssd-0 lacks label node\\.sandstore\\.io/disk=nvme.*; fix: kubectl --context=${CONTEXT} label node kwok-general-0 node\\.sandstore\\.io/disk=nvme$`,
      ),
    );
    expect(line(r, 'provisioner')).toMatch(
      /^✗ provisioner: nothing is seen serving provisioner example\.com\/nothing: no leader-election Lease or Endpoints example\.com-nothing or example-com-nothing renewed recently, .*; fix: install the provisioner \(or CSI driver\) that serves example\.com\/nothing/,
    );
    expect(line(r, 'node ports')).toBe('✓ node ports: node ports 30680-30682 are free');
    expect(r.stdout).toContain('2 problems, ');
  });

  test('deploy of it is refused by its pre-flight (exit 1) and sends no write: not even its lock', async () => {
    const { r, requests } = await audited(() =>
      runCli(['deploy', '--profile=nowhere', `--context=${CONTEXT}`], { cwd: work }),
    );
    expectExit(r, 1);
    expect(r.stderr).toContain(
      'error: the pre-flight found 2 problems that would make the deploy of nowhere fail (nodes, provisioner); nothing was changed',
    );
    expect(requests.length).toBeGreaterThan(0);
    expect(writes(requests)).toEqual([]);
    expect(await kube.find('Namespace', 'sandstore-nowhere')).toBeUndefined();
  });

  test('requests above what the nodes have: ✗ resources naming the pod, the request and the most room left', async () => {
    const r = await runCli(['check', '--profile=toobig', `--context=${CONTEXT}`], { cwd: huge });
    expectExit(r, 1);
    expect(line(r, 'resources')).toMatch(
      /^✗ resources: 1 of 5 pods do not fit: a pod of StatefulSet etcd requests 64 cpu, the most left on any node it may go to is \d+m? \(kwok-ssd-\d\); fix: lower resources\.etcd\.requests\.cpu in profiles\/toobig\.ts/,
    );
    expect(line(r, 'nodes')).toMatch(/^✓ nodes:/);
  });
});

test('a user who may not list nodes: the checks that need nodes say they could not run and why, the others run (exit 1)', async () => {
  const suffix = Date.now().toString(36);
  const sa = `check-no-nodes-${suffix}`;
  const role = `sandstore-check-no-nodes-${suffix}`;
  // Everything check reads but nodes, granted to a ServiceAccount: a real API server refusing the one list.
  await kube.request('POST', '/api/v1/namespaces/default/serviceaccounts', { body: { metadata: { name: sa } } });
  await kube.request('POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', {
    body: {
      metadata: { name: role },
      rules: [
        { apiGroups: [''], resources: ['pods', 'services', 'endpoints', 'persistentvolumes'], verbs: ['list'] },
        { apiGroups: ['storage.k8s.io'], resources: ['storageclasses', 'csinodes'], verbs: ['list'] },
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['list'] },
      ],
    },
  });
  await kube.request('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    body: {
      metadata: { name: role },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
      subjects: [{ kind: 'ServiceAccount', name: sa, namespace: 'default' }],
    },
  });
  try {
    const { status } = await kube.request<{ status: { token: string } }>(
      'POST',
      `/api/v1/namespaces/default/serviceaccounts/${sa}/token`,
      { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 600 } } },
    );
    const r = await check([], { env: { KUBECONFIG: kubeconfigAs({ token: status.token }) } });
    expectExit(r, 1);
    expect(line(r, 'nodes')).toMatch(
      new RegExp(
        `^! nodes: could not run: the API server refused GET /api/v1/nodes: 403 nodes is forbidden: User "system:serviceaccount:default:${sa}" cannot list resource "nodes"`,
      ),
    );
    expect(line(r, 'resources')).toMatch(
      /^! resources: could not run: the API server refused GET \/api\/v1\/nodes: 403/,
    );
    for (const other of ['connection', 'version', 'storage class', 'provisioner', 'node ports'])
      expect(line(r, other)).toMatch(new RegExp(`^✓ ${other}:`));
    expect(r.stdout).toContain('0 problems, ');
    expect(r.stdout).toContain('2 not run: the checks that ran allow a deploy of local');
    expect(r.stderr).not.toMatch(/\bat \S+ \(/);
  } finally {
    await kube.request('DELETE', `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${role}`);
    await kube.request('DELETE', `/apis/rbac.authorization.k8s.io/v1/clusterroles/${role}`);
    await kube.request('DELETE', `/api/v1/namespaces/default/serviceaccounts/${sa}`);
  }
});

test('an API server that is not there: one ✗ line saying so and how to start it, exit 1, no stack trace', async () => {
  const r = await check([], { env: { KUBECONFIG: kubeconfigAs({ token: 'unused' }, 'https://127.0.0.1:1') } });
  expectExit(r, 1);
  const lines = r.stdout
    .trimEnd()
    .split('\n')
    .filter((l) => !l.startsWith('acting on'));
  expect(lines[0]).toMatch(
    new RegExp(
      `^✗ connection: GET /version: cannot reach the API server at https://127\\.0\\.0\\.1:1: connect ECONNREFUSED 127\\.0\\.0\\.1:1; fix: `,
    ),
  );
  expect(lines.slice(1)).toEqual(['1 problem, 0 warnings: a deploy of local would be refused']);
  expect(r.stderr).toBe('');
});
