import { expect } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { CONTEXT, clusterEnv, kubeFor, podReady, root } from './harness.js';
import { objectsOf, waitFor } from '../../lib/runner/watch.js';

/**
 * The real node's life cycle on a cluster of its own: `up.sh` twice reuses it, a killed kubelet
 * (or an interrupted up.sh) is repaired by the next `up.sh`, and `down.sh` leaves no process,
 * container, mount, network namespace, veth, route or cgroup behind. Checked on this machine
 * (/proc, /proc/mounts, `ip`, /sys/fs/cgroup), not from the scripts' output.
 */
const NAME = `${CONTEXT}-life`;
const up = () => spawnSync('bash', ['scripts/local-cluster/up.sh', '--name', NAME], { cwd: root, encoding: 'utf8' });
const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8' });
const alive = (pid: number) =>
  existsSync(`/proc/${pid}`) && !/\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
const recordedPids = (dir: string) =>
  Object.fromEntries(
    readdirSync(`${dir}/pids`).map((f) => [f.replace(/\.pid$/, ''), Number(readFileSync(`${dir}/pids/${f}`, 'utf8'))]),
  );

afterAll(() => {
  spawnSync('bash', ['scripts/local-cluster/down.sh', '--name', NAME], { cwd: root, stdio: 'inherit' });
});

test('up twice reuses the node; a killed kubelet is repaired; down leaves nothing behind', async () => {
  const first = up();
  expect({ code: first.status, stderr: first.stderr }).toMatchObject({ code: 0 });
  const env = clusterEnv(NAME);
  const kube = kubeFor(NAME);
  const pids = recordedPids(env.CLUSTER_DIR);
  expect(Object.keys(pids).sort()).toEqual([
    'containerd',
    'coredns',
    'etcd',
    'kube-apiserver',
    'kube-controller-manager',
    'kube-proxy',
    'kube-router',
    'kube-scheduler',
    'kubelet',
    'kwok-controller',
    'local-path',
    'nodeproxy',
    'provisioner',
  ]);

  // Run twice: the same processes, reused.
  const second = up();
  expect({ code: second.status, stderr: second.stderr }).toMatchObject({
    code: 0,
    stderr: expect.stringContaining('reusing it'),
  });
  expect(recordedPids(env.CLUSTER_DIR)).toEqual(pids);

  // A container on the node, so that down.sh has one to remove.
  await kube.apply({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'pause', namespace: 'default' },
    spec: {
      nodeSelector: { 'node.sandstore.io/runtime': 'containerd' },
      tolerations: [{ key: 'node.sandstore.io/runtime', operator: 'Exists', effect: 'NoSchedule' }],
      containers: [{ name: 'pause', image: 'localhost:5000/pause:3.9' }],
    },
  });
  await waitFor(kube, [{ key: 'pod', kind: 'Pod', namespace: 'default', fieldSelector: 'metadata.name=pause' }], {
    what: 'the pause pod to be Ready',
    timeoutSeconds: 60,
    check: (s) => objectsOf(s, 'pod', 'Pod').find(podReady),
  });
  // Every process of the node's pods lives in the cluster's cgroup (the kubelet's cgroupRoot).
  const containerPids = execFileSync(
    'find',
    [`/sys/fs/cgroup/pids/${env.NODE_CGROUP}`, '-name', 'cgroup.procs', '-exec', 'cat', '{}', '+'],
    { encoding: 'utf8' },
  )
    .split('\n')
    .filter(Boolean)
    .map(Number);
  expect(containerPids.length).toBeGreaterThan(0);
  // The node's pod logs are its own: in its mount namespace /var/log/pods is NODE_POD_LOGS_DIR,
  // and the host's /var/log/pods, which other real nodes' kubelets empty of every pod they do not
  // run (their container GC), never sees them.
  const podLogDirs = execFileSync('nsenter', [`--mount=${env.NODE_MNTNS_PATH}`, 'ls', '/var/log/pods'], {
    encoding: 'utf8',
  })
    .split('\n')
    .filter(Boolean);
  const pauseLogs = podLogDirs.filter((d) => d.startsWith('default_pause_'));
  expect(pauseLogs).toHaveLength(1);
  expect(readdirSync(env.NODE_POD_LOGS_DIR)).toEqual(podLogDirs);
  expect(readdirSync('/var/log/pods').filter((d) => pauseLogs.includes(d))).toEqual([]);

  // kube-router's firewall acts in the node's network namespace only: its chains are there, and
  // neither they nor its address sets (one per policy's pods) ever in this machine's own.
  const inNode = (cmd: string, ...args: string[]) =>
    execFileSync('nsenter', [`--net=/run/netns/${env.NODE_NETNS}`, cmd, ...args], { encoding: 'utf8' });
  expect(inNode('iptables-save', '-t', 'filter')).toContain(':KUBE-ROUTER-FORWARD');
  const hostFirewall = () => ({
    chains: execFileSync('iptables-save', ['-t', 'filter'], { encoding: 'utf8' }).match(/KUBE-ROUTER-\w+/g) ?? [],
    sets: execFileSync('ipset', ['list', '-n'], { encoding: 'utf8' }).match(/^KUBE-(SRC|DST)-\w+$/gm) ?? [],
  });
  expect(hostFirewall()).toEqual({ chains: [], sets: [] });

  // A dead kubelet: the next up.sh repairs the node.
  process.kill(pids.kubelet, 'SIGKILL');
  const repaired = up();
  expect({ code: repaired.status, stderr: repaired.stderr }).toMatchObject({
    code: 0,
    stderr: expect.stringContaining('restarting its processes'),
  });
  // The repair restarted the API server too: a new client, not the old keep-alive connection.
  const node = await kubeFor(NAME).get('Node', env.NODE_NAME);
  expect(node.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
  const repairedPids = recordedPids(env.CLUSTER_DIR);
  expect(repairedPids.kubelet).not.toBe(pids.kubelet);

  const down = spawnSync('bash', ['scripts/local-cluster/down.sh', '--name', NAME], { cwd: root, encoding: 'utf8' });
  expect({ code: down.status, stderr: down.stderr }).toMatchObject({ code: 0 });
  for (const pid of [...Object.values(pids), ...Object.values(repairedPids), ...containerPids])
    expect({ pid, alive: alive(pid) }).toEqual({ pid, alive: false });
  expect(ip('netns', 'list')).not.toMatch(new RegExp(`^${env.NODE_NETNS}\\b`, 'm'));
  expect(ip('-o', 'link', 'show')).not.toContain(`ssn${env.NODE_SLOT}`);
  expect(ip('-4', 'route', 'show')).not.toContain(env.NODE_POD_CIDR);
  expect(readFileSync('/proc/mounts', 'utf8')).not.toContain(env.CLUSTER_DIR);
  expect(readFileSync('/proc/mounts', 'utf8')).not.toContain(env.NODE_RUN_DIR);
  for (const controller of readdirSync('/sys/fs/cgroup'))
    expect(existsSync(`/sys/fs/cgroup/${controller}/${env.NODE_CGROUP}`)).toBe(false);
  const shims = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
    .split('\n')
    .filter((a) => a.includes(env.CONTAINERD_SOCK));
  expect(shims).toEqual([]);
  // The firewall's rules and sets went with the node's namespace; none ever reached this machine's.
  expect(hostFirewall()).toEqual({ chains: [], sets: [] });
  expect(existsSync(env.CLUSTER_DIR)).toBe(false);
});
