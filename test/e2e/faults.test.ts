import { expect } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { LabelKeys, profileSelector } from '../../lib/labels.js';
import { clusterEnv, CONTEXT, expectExit, kubeFor, root, runCli } from './harness.js';

/**
 * Faults, on a cluster of their own (kwok nodes only), so that stopping its API server disturbs no
 * other test: the API server killed in the middle of a deploy's wait (back in time, and not), Ctrl-C
 * in each phase of deploy, update and destroy, and a watch whose connection stays open but goes
 * silent. After each, the next run converges and nothing of the profile is left over; all read back
 * from the API server.
 */
const NAME = `${CONTEXT}-faults`;
const PROFILE = 'local';
const NAMESPACE = 'sandstore-local';
const up = () =>
  execFileSync('bash', ['scripts/local-cluster/up.sh', '--name', NAME, '--no-node'], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
const cli = (args: string[], opts: Parameters<typeof runCli>[1] = {}) =>
  runCli(
    [
      ...args,
      `--profile=${PROFILE}`,
      `--context=${NAME}`,
      ...(args.some((a) => a.startsWith('--timeout')) ? [] : ['--timeout=90']),
    ],
    opts,
  );

/** Kills the cluster's API server process (SIGKILL: no goodbye to open connections). */
function killApiServer(): void {
  const pid = Number(readFileSync(join(clusterEnv(NAME).CLUSTER_DIR, 'pids', 'kube-apiserver.pid'), 'utf8'));
  process.kill(pid, 'SIGKILL');
}

/**
 * Everything of the profile on the cluster, by kind, as `kind/name`; pods and claims must be those
 * of the current StatefulSets and Job (no orphan of an interrupted run). A fresh client each time:
 * the API server may have been restarted since the last.
 */
async function profileObjects(): Promise<string[]> {
  const kube = kubeFor(NAME);
  const kinds = [
    'Namespace',
    'StorageClass',
    'StatefulSet',
    'Job',
    'Pod',
    'PersistentVolumeClaim',
    'Service',
    'ConfigMap',
    'NetworkPolicy',
    'PodDisruptionBudget',
  ];
  const lists = await Promise.all(kinds.map((kind) => kube.list(kind, { labelSelector: profileSelector(PROFILE) })));
  return lists
    .flatMap((l) =>
      l.items.map((o) => `${o.kind}/${o.metadata.name}${o.metadata.deletionTimestamp ? ' (terminating)' : ''}`),
    )
    .sort();
}

/**
 * After a converged deploy: every object of dist/, the pods of its controllers, their claims;
 * nothing else, nothing terminating. After an update, the StatefulSet differs from dist/ by its
 * restart annotation, so `diff` is not asked.
 */
async function expectConverged(opts: { updated?: boolean } = {}): Promise<void> {
  const objects = await profileObjects();
  expect(objects.filter((o) => o.endsWith('(terminating)'))).toEqual([]);
  expect(objects.filter((o) => o.startsWith('Pod/')).sort()).toEqual([
    'Pod/etcd-0',
    'Pod/sandstore-0',
    'Pod/sandstore-1',
    'Pod/sandstore-2',
    expect.stringMatching(/^Pod\/sandstore-membership-bootstrap-/),
  ]);
  expect(objects.filter((o) => o.startsWith('PersistentVolumeClaim/'))).toEqual([
    'PersistentVolumeClaim/data-etcd-0',
    'PersistentVolumeClaim/data-sandstore-0',
    'PersistentVolumeClaim/data-sandstore-1',
    'PersistentVolumeClaim/data-sandstore-2',
  ]);
  const status = await cli(['status']);
  expectExit(status, 0);
  expect(status.stdout).toMatch(/StatefulSet sandstore: 3\/3 ready, 3 updated, rolled out/);
  if (opts.updated) return;
  const diff = await cli(['diff']);
  expect({ code: diff.code, stdout: diff.stdout }).toMatchObject({
    code: 0,
    stdout: expect.stringContaining('no differences'),
  });
}

/** After a converged destroy: nothing of the profile, and no volume of its claims. */
async function expectGone(): Promise<void> {
  expect((await profileObjects()).filter((o) => !o.startsWith('Namespace/'))).toEqual([]);
  const volumes = (await kubeFor(NAME).list('PersistentVolume')).items.filter(
    (pv) => pv.spec?.claimRef?.namespace === NAMESPACE,
  );
  expect(volumes.map((pv) => pv.metadata.name)).toEqual([]);
}

beforeAll(() => up());
afterAll(() => {
  execFileSync('bash', ['scripts/local-cluster/down.sh', '--name', NAME], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
});

/** The waits of deploy's second step, in order (lib/runner/waits.ts's words). */
const STEP_WAITS =
  '(StatefulSet etcd to roll out|Job sandstore-membership-bootstrap to complete|StatefulSet sandstore to roll out)';

describe("the API server stops in the middle of a deploy's wait", () => {
  test("restarted within the runner's patience, the wait carries on and the deploy completes", async () => {
    let killed = false;
    const deploying = cli(['deploy'], {
      onStdout: (out) => {
        // etcd, the Job and the data plane applied together: the runner now waits for them in
        // order (an apply cut off by the kill would fail at once, not wait: not what this tests).
        if (!killed && out.includes('data-plane: applied')) {
          killed = true;
          killApiServer();
          up();
        }
      },
    });
    const r = await deploying;
    expect(killed).toBe(true);
    expectExit(r, 0);
    // Which of the step's three waits the kill falls in depends on how fast kwok's pods are Ready.
    expect(r.stderr).toMatch(
      new RegExp(`! api server: no answer while waiting for ${STEP_WAITS} \\(.*\\); asking again for up to 30s`),
    );
    expect(r.stderr).toMatch(
      new RegExp(`! api server: the API server answers again after [\\d.]+s; still waiting for ${STEP_WAITS}`),
    );
    await expectConverged();
  });

  test('not back in time, the runner says what it was waiting for and fails; once it is back, the next deploy converges', async () => {
    let killed = false;
    const r = await cli(['deploy'], {
      onStdout: (out) => {
        // etcd, the Job and the data plane applied together: the runner now waits for them in order.
        if (!killed && out.includes('data-plane: applied')) {
          killed = true;
          killApiServer();
        }
      },
    });
    expect(killed).toBe(true);
    expectExit(r, 1);
    expect(r.stderr).toMatch(
      new RegExp(
        `^error: lost the API server while waiting for ${STEP_WAITS}: .*; it did not answer again within 30s$`,
        'm',
      ),
    );
    expect(r.stderr).toContain('once the API server is back, `npm run status` shows where it got');
    expect(r.stderr).toMatch(
      /Deploy stopped in phase "(control-plane|bootstrap|data-plane)"; phases applied: base, control-plane, bootstrap, data-plane\. The cluster holds a partial deployment that Kubernetes keeps converging; `npm run deploy -- --profile=local` starts over from a clean slate/,
    );
    expect(r.stderr).not.toMatch(/^\s+at /m);

    up();
    // The killed runner could not release its lock; it has expired by now (30 s without renewal).
    const again = await cli(['deploy']);
    expectExit(again, 0);
    await expectConverged();
  });
});

describe('Ctrl-C in each phase; the next run converges and nothing is orphaned', () => {
  /** Runs `args`, Ctrl-C the moment a line matching `when` appears; returns the result. */
  const interruptAt = (args: string[], when: RegExp) =>
    cli(args, {
      onStdout: (out, child) => {
        if (when.test(out) && !child.killed) child.kill('SIGINT');
      },
    });

  // Each deploy phase's line is printed once its objects are applied, while the runner waits for
  // them (or goes on to the next phase's apply).
  test.each(['destroy', 'base', 'control-plane', 'bootstrap', 'data-plane'])(
    'deploy, interrupted in phase %s',
    async (phase) => {
      const r = await interruptAt(['deploy'], new RegExp(`\\] ${phase}: `));
      expectExit(r, 130);
      expect(r.stderr).toMatch(/interrupted while|Deploy stopped in phase/);
      expectExit(await cli(['deploy']), 0);
      await expectConverged();
    },
  );

  test('update, interrupted while the controller rolls the pods', async () => {
    const r = await interruptAt(['update'], /update: applied/);
    expectExit(r, 130);
    expectExit(await cli(['update']), 0);
    await expectConverged({ updated: true });
  });

  test('destroy, interrupted while it deletes and waits', async () => {
    const r = await interruptAt(['destroy'], /destroy: deleting \d+ objects/);
    expectExit(r, 130);
    expect(r.stderr).toContain('run the same `npm run destroy -- --profile=<name>` again to wait for them');
    expectExit(await cli(['destroy']), 0);
    await expectGone();
  });
});

test('a claim that appears after destroy listed the profile (a controller catching up) is deleted too; destroy ends with nothing left', async () => {
  expectExit(await cli(['deploy']), 0);
  let created: Promise<unknown> | undefined;
  const r = await cli(['destroy'], {
    onStdout: (out) => {
      // Listed and deleting: what appears now was not in destroy's list (seen in CI: a StatefulSet
      // controller that resynced after an API server restart created two claims just then).
      if (!created && /destroy: deleting \d+ objects/.test(out)) {
        created = kubeFor(NAME).create({
          apiVersion: 'v1',
          kind: 'PersistentVolumeClaim',
          metadata: {
            name: 'data-late',
            namespace: NAMESPACE,
            labels: { [LabelKeys.managedBy]: 'sandstore-deploy', [LabelKeys.profile]: PROFILE },
          },
          spec: {
            accessModes: ['ReadWriteOnce'],
            resources: { requests: { storage: '1Gi' } },
            storageClassName: 'sandstore-local-ssd-local',
          },
        });
      }
    },
  });
  await created;
  expectExit(r, 0);
  expect(r.stdout).toContain('deleting claim data-late, created after the first list');
  await expectGone();
});

describe('a watch that stays open but goes silent', () => {
  let proxy: Server;
  const pairs: [Socket, Socket][] = [];
  let frozen = false;
  let connectionsAfterFreeze = 0;

  beforeAll(async () => {
    // A TCP proxy in front of the API server that, once frozen, keeps every open connection open
    // but passes nothing more through it (a proxy that lost its upstream); new connections pass.
    const kc = new KubeConfig();
    kc.loadFromDefault();
    kc.setCurrentContext(NAME);
    const target = new URL(kc.getCurrentCluster()!.server);
    proxy = createServer((client) => {
      if (frozen) connectionsAfterFreeze++;
      const upstream = createConnection({ host: target.hostname, port: Number(target.port) });
      pairs.push([client, upstream]);
      client.pipe(upstream).pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  });
  afterAll(() => {
    for (const [a, b] of pairs) {
      a.destroy();
      b.destroy();
    }
    proxy.close();
  });

  test('is found dead within 1.25 times its length and watched again on a new connection; the wait completes', async () => {
    expectExit(await cli(['deploy']), 0);
    // The same cluster through the proxy: a kubeconfig of its own, the context's name kept.
    const kc = new KubeConfig();
    kc.loadFromDefault();
    kc.setCurrentContext(NAME);
    const cluster = kc.getCurrentCluster()!;
    const port = (proxy.address() as { port: number }).port;
    const viaProxy = new KubeConfig();
    viaProxy.loadFromOptions({
      clusters: [{ ...cluster, server: `https://127.0.0.1:${port}` }],
      users: [kc.getCurrentUser()!],
      contexts: [{ name: NAME, cluster: cluster.name, user: kc.getCurrentUser()!.name }],
      currentContext: NAME,
    });
    const kubeconfig = join(mkdtempSync(join(tmpdir(), 'kubeconfig-')), 'config');
    writeFileSync(kubeconfig, viaProxy.exportConfig());

    const ROLL_STEP = /update: sandstore-\d recreated/;
    // Pods that take ~10 s each to become Ready: the roll lasts ~30 s, the watch must outlive a freeze.
    const r = await cli(['update', '--image=sandstore.test/sandstore-node:slow-ready', '--timeout=120'], {
      env: { KUBECONFIG: kubeconfig, SANDSTORE_WATCH_SECONDS: '4' },
      onStdout: (out) => {
        // The roll's first replacement: its successor seen by the roller's watch, which waits on.
        if (!frozen && ROLL_STEP.test(out)) {
          frozen = true;
          for (const [client, upstream] of pairs) {
            client.unpipe(upstream);
            upstream.unpipe(client);
            client.pause();
            upstream.pause();
          }
        }
      },
    });
    expect(frozen).toBe(true);
    expectExit(r, 0);
    expect(r.stderr).toMatch(
      /! api server: the watch of \S+ stayed silent for 5s \(asked to end after 4s\); listing again on a new connection/,
    );
    expect(connectionsAfterFreeze).toBeGreaterThan(0);
    // Within a bounded time: the runner's own clock ([elapsed] on each line) from the progress line
    // that froze the connections to the line that found the watch dead: at most 5 s of silence
    // (less if the watch was already quiet before the freeze), plus slack.
    const elapsedAt = (text: string, line: RegExp) =>
      Number(new RegExp(`\\[\\s*([\\d.]+)s\\][^\\n]*${line.source}`).exec(text)?.[1]);
    const detectedAfter = elapsedAt(r.stderr, /stayed silent/) - elapsedAt(r.stdout, ROLL_STEP);
    expect(detectedAfter).toBeGreaterThan(0);
    expect(detectedAfter).toBeLessThan(8);
    const pods = (
      await kubeFor(NAME).list('Pod', {
        namespace: NAMESPACE,
        labelSelector: `${profileSelector(PROFILE)},${LabelKeys.component}=data-plane`,
      })
    ).items;
    expect(pods.map((p) => p.spec?.containers[0].image)).toEqual(
      Array(3).fill('sandstore.test/sandstore-node:slow-ready'),
    );
    expectExit(await cli(['destroy']), 0);
    await expectGone();
  });
});
