import { expect } from '@jest/globals';
import { join } from 'node:path';
import { clusterEnv, CONTEXT, expectExit, kubeFor, runCli } from './harness.js';
import {
  describeRoll,
  isStaleRead,
  kubectlRestart,
  rollUnderLoad,
  stopChurnClients,
  type RollTarget,
} from './roll-under-load.js';

/**
 * Issue 22's proof, on the real node: the runner's quorum-aware roll against the StatefulSet's own
 * ordinal RollingUpdate, on the same cluster in one run, each under the same client load: two
 * clients at once, one following a follower's "leader is <pod>" answer to that pod's node port (the
 * outage the cluster causes) and one trying the nodes in turn (what a client without that help
 * sees). Elections are counted from Sand Store's own event logs on the node's disk.
 */
const PROFILE = 'local-node';
const NAMESPACE = 'sandstore-node';
const target: RollTarget = { context: CONTEXT, profile: PROFILE, namespace: NAMESPACE, replicas: 3 };
const kube = kubeFor();
afterEach(stopChurnClients);
// The suite's files run in any order (jest's, by their last durations): a profile left live here
// would make every later deploy of another profile refuse (one profile at a time).
afterAll(async () => {
  expectExit(await runCli(['destroy', `--profile=${PROFILE}`, '--timeout=120']), 0);
});

test('deploy local-node on the real node', async () => {
  expectExit(await runCli(['deploy', `--profile=${PROFILE}`, '--timeout=240']), 0);
});

test('the quorum-aware roll against the ordinal RollingUpdate, under load, in one run', async () => {
  const quorum = await rollUnderLoad(target, async () => {
    expectExit(await runCli(['update', `--profile=${PROFILE}`, '--timeout=300']), 0);
  });
  const sts = await kube.get('StatefulSet', 'sandstore', NAMESPACE);
  expect(sts.spec?.updateStrategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { partition: 0 } });
  // What a user without the runner runs: the StatefulSet's own roll, highest ordinal first.
  const ordinal = await rollUnderLoad(target, () => kubectlRestart(target, join(clusterEnv().KUBE_BIN_DIR, 'kubectl')));
  // The measured numbers, printed before anything is asserted on them (docs/performance.md).
  console.log(`${describeRoll('quorum order', quorum)}\n${describeRoll('ordinal order', ordinal)}`);
  expect(ordinal.order).toEqual(['sandstore-2', 'sandstore-1', 'sandstore-0']);
  // Each pod once. Not asserted: that the leader of before the roll goes last. Every restarted member
  // wins an election (see below), so the leader changes under the roll and the runner's "leader
  // last" means the leader at that step (seen: sandstore-1 last while sandstore-0 led before).
  expect(new Set(quorum.order).size).toBe(3);
  // Never more than one member out at once (as far as this process's watch saw it).
  expect(Math.max(quorum.mostOut, ordinal.mostOut)).toBeLessThanOrEqual(1);
  for (const r of [quorum, ordinal])
    for (const c of [r.follow, r.naive])
      // Every operation succeeded in the end, and read back what it wrote, but for upstream's stale
      // read, which heals within the second (counted in the line above).
      expect({ abandoned: c.abandoned, lost: c.mismatches.filter((m) => !isStaleRead(m)) }).toEqual({
        abandoned: 0,
        lost: [],
      });
  // The leader's own replacement costs at least one election: Sand Store has no leadership transfer.
  // How many more is Sand Store's, not the order's to promise: with the leader handover a replaced
  // member usually hears the leader before its election timer fires, but likely when its hold runs
  // out first it calls elections it cannot win, and with no pre-vote each one unseats the leader
  // (the runs so far, 5 and 9 elections among them: docs/commands.md, "Quorum-aware update"). So
  // the elections are measured and printed above, and not bounded here; what the order does
  // guarantee is asserted above (each pod once, never two out, nothing lost).
  expect(quorum.elections).toBeGreaterThan(0);
  expect(ordinal.elections).toBeGreaterThan(0);
  // Two rolls, each bounded by its watch's 400 s, and the clients served again after each.
}, 900_000);
