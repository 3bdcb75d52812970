import { holderOf, LEASE_SECONDS, microTime } from '../../lib/runner/lock.js';
import type { Lease } from '../../lib/runner/kube.js';

/**
 * The lock's expiry is judged on the API server's clock: when the server stamped the holder's last
 * write (managedFields) against the server's time now. The holder's renewTime is its own clock's.
 */
const HOUR = 3600_000;
const serverWrote = Date.parse('2026-12-06T13:00:00Z');

const lease = (renewTime: number, writtenOnServer?: number): Lease => ({
  apiVersion: 'coordination.k8s.io/v1',
  kind: 'Lease',
  metadata: {
    name: 'sandstore-deploy-local',
    namespace: 'default',
    annotations: { 'sandstore.io/lock-command': 'update' },
    ...(writtenOnServer === undefined
      ? {}
      : {
          managedFields: [
            { manager: 'kubectl', operation: 'Update', time: new Date(writtenOnServer - 60_000).toISOString() },
            { manager: 'sandstore-deploy', operation: 'Update', time: new Date(writtenOnServer).toISOString() },
          ],
        }),
  },
  spec: {
    holderIdentity: 'alice@laptop-2 (pid 4242)',
    leaseDurationSeconds: LEASE_SECONDS,
    acquireTime: microTime(renewTime),
    renewTime: microTime(renewTime),
  },
});

test("a live holder whose clock is an hour behind keeps its lock; judged on the holder's clock, it would lose it", () => {
  // renewTime by the holder's clock, an hour behind this machine's; the server wrote it at serverWrote.
  const behind = lease(Date.now() - HOUR, serverWrote);
  const live = holderOf(behind, serverWrote + 5_000);
  expect(live).toMatchObject({ expired: false, renewed: '2026-12-06T13:00:00.000Z', leaseSeconds: LEASE_SECONDS });
  // Without the server's write time the only clocks left are the holder's and ours.
  const { managedFields: _, ...metadata } = behind.metadata;
  expect(holderOf({ ...behind, metadata }, serverWrote + 5_000).expired).toBe(true);
});

test('a dead holder whose clock was an hour ahead loses its lock a lease after its last write on the server', () => {
  const ahead = lease(Date.now() + HOUR, serverWrote);
  // The write time is whole seconds: up to a second is added before the lease counts.
  expect(holderOf(ahead, serverWrote + (LEASE_SECONDS + 1) * 1000).expired).toBe(false);
  expect(holderOf(ahead, serverWrote + (LEASE_SECONDS + 1) * 1000 + 1).expired).toBe(true);
  const { managedFields: _, ...metadata } = ahead.metadata;
  // Judged on the holder's clock against ours, it would stay live for an hour.
  expect(holderOf({ ...ahead, metadata }, serverWrote + (LEASE_SECONDS + 2) * 1000).expired).toBe(false);
});

test("the server's time decides, not this machine's", () => {
  // This machine's clock (Date.now(), years after serverWrote) plays no part.
  const fresh = lease(serverWrote, serverWrote);
  expect(holderOf(fresh, serverWrote + 10_000).expired).toBe(false);
  expect(holderOf(fresh, serverWrote + 40_000).expired).toBe(true);
});
