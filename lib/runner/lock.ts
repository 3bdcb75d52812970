import { hostname, userInfo } from 'node:os';
import { FailedError } from '../errors.js';
import { LabelKeys, MANAGED_BY } from '../labels.js';
import { ApiError, type Kube, type Lease } from './kube.js';
import type { Reporter } from './report.js';

/**
 * One runner at a time per profile and cluster, as Helm refuses a release with an operation in
 * progress: deploy, update, resume, destroy and smoke hold a coordination.k8s.io Lease while they
 * run. The cluster holds it (not a local file), so runners on two laptops see each other. It lives
 * in the namespace `default`, which always exists (the profile's own is created by deploy and
 * deleted by destroy, under the lock). A runner renews it every RENEW_SECONDS; one that was killed
 * stops renewing, and its lock expires LEASE_SECONDS after its last renewal on the API server's
 * clock (not the holder's or ours: see holderOf), or can be broken with --break-lock.
 */
export const LOCK_NAMESPACE = 'default';
export const LEASE_SECONDS = 30;
const RENEW_SECONDS = 10;
const COMMAND_ANNOTATION = 'sandstore.io/lock-command';

export const lockName = (profileName: string) => `sandstore-deploy-${profileName}`;

/** Who holds a lock, from its Lease: for messages. */
export interface LockHolder {
  readonly identity: string;
  readonly command: string;
  readonly since: string;
  /** When the holder last wrote the Lease, on the API server's clock where it says. */
  readonly renewed: string;
  readonly leaseSeconds: number;
  readonly expired: boolean;
}

/**
 * When the Lease was last written, on the API server's clock: the latest time in its managedFields
 * (the server stamps an entry each time a writer changes a field, as every renewal changes
 * renewTime; whole seconds). Undefined on a server that keeps none.
 */
export function lastWrittenOnServer(lease: Lease): number | undefined {
  const entries = lease.metadata.managedFields;
  if (!Array.isArray(entries)) return undefined;
  const times = entries.map((e) => Date.parse((e as { time?: string }).time ?? '')).filter((t) => Number.isFinite(t));
  return times.length > 0 ? Math.max(...times) : undefined;
}

/**
 * Whether the lock expired, judged on one clock: the server's time of the holder's last write
 * against the server's time now (`serverNow`, Kube.serverNow()). The holder's renewTime is its own
 * clock's: compared with ours, a holder whose clock is behind would lose a live lock, and one whose
 * clock is ahead would keep a dead one. Only a server that stamps no write time leaves that
 * comparison, as client-go's leader election makes its own.
 */
export function holderOf(lease: Lease, serverNow: number): LockHolder {
  const spec = lease.spec ?? {};
  const leaseSeconds = spec.leaseDurationSeconds ?? LEASE_SECONDS;
  const written = lastWrittenOnServer(lease);
  // Whole seconds, rounded down: the write may have been up to a second later.
  const renewed =
    written !== undefined
      ? written + 1000
      : Date.parse(spec.renewTime ?? spec.acquireTime ?? lease.metadata.creationTimestamp ?? '');
  const now = written !== undefined ? serverNow : Date.now();
  return {
    identity: spec.holderIdentity ?? '(unknown)',
    command: lease.metadata.annotations?.[COMMAND_ANNOTATION] ?? '(unknown)',
    since: spec.acquireTime ?? '(unknown)',
    renewed: Number.isFinite(renewed) ? new Date(written ?? renewed).toISOString() : '(never)',
    leaseSeconds,
    expired: !Number.isFinite(renewed) || renewed + leaseSeconds * 1000 < now,
  };
}

/** Another runner holds the lock (exit code 1): nothing of the profile was changed by this one. */
class LockHeldError extends FailedError {}

export interface HeldLock {
  /** Stops renewing and deletes the Lease (if it is still ours). */
  release(): Promise<void>;
}

/** A Lease's MicroTime (RFC 3339 with microseconds) for the moment `ms`. */
export const microTime = (ms = Date.now()) => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

/**
 * Takes the profile's lock for `command`, or fails naming who holds it. An expired lock (its
 * holder stopped renewing: killed) is taken over, and so is a live one with `breakLock`; both are
 * reported. Renews it until released.
 */
export async function acquireLock(
  kube: Kube,
  report: Reporter,
  opts: { profileName: string; context: string; command: string; breakLock?: boolean },
): Promise<HeldLock> {
  const name = lockName(opts.profileName);
  const identity = `${userInfo().username}@${hostname()} (pid ${process.pid})`;
  const body = (resourceVersion?: string): Lease => ({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name,
      namespace: LOCK_NAMESPACE,
      labels: { [LabelKeys.managedBy]: MANAGED_BY, [LabelKeys.profile]: opts.profileName },
      annotations: { [COMMAND_ANNOTATION]: opts.command },
      ...(resourceVersion ? { resourceVersion } : {}),
    },
    spec: {
      holderIdentity: identity,
      leaseDurationSeconds: LEASE_SECONDS,
      acquireTime: microTime(),
      renewTime: microTime(),
    },
  });

  let lease: Lease;
  const existing = await kube.find('Lease', name, LOCK_NAMESPACE);
  if (!existing) {
    try {
      lease = await kube.create(body());
    } catch (err) {
      // Another runner created it between our read and our write.
      if (err instanceof ApiError && err.status === 409)
        throw heldError(opts, holderOf(await kube.get('Lease', name, LOCK_NAMESPACE), kube.serverNow()));
      throw err;
    }
  } else {
    const holder = holderOf(existing, kube.serverNow());
    if (!holder.expired && !opts.breakLock) throw heldError(opts, holder);
    try {
      lease = await kube.replace(body(existing.metadata.resourceVersion));
    } catch (err) {
      if (err instanceof ApiError && err.status === 409)
        throw heldError(opts, holderOf(await kube.get('Lease', name, LOCK_NAMESPACE), kube.serverNow()));
      throw err;
    }
    report.problem(
      'lock',
      holder.expired
        ? `took over the lock of ${holder.identity} (${holder.command}, last renewed ` +
            `${holder.renewed}): it had expired, its runner is gone`
        : `broke the lock of ${holder.identity} (${holder.command}, since ${holder.since}) as asked (--break-lock)`,
    );
  }

  let current = lease;
  let lost = false;
  const renew = setInterval(() => {
    const next = { ...current, spec: { ...current.spec, renewTime: microTime() } };
    kube.replace(next).then(
      (l) => {
        current = l;
      },
      (err) => {
        if (!lost && err instanceof ApiError && (err.status === 409 || err.status === 404)) {
          lost = true;
          report.problem(
            'lock',
            `lost the lock of profile ${opts.profileName}: another runner broke it (--break-lock); ` +
              `this one goes on, but two runners may now act at once`,
          );
        }
      },
    );
  }, RENEW_SECONDS * 1000);
  renew.unref();
  return {
    async release() {
      clearInterval(renew);
      if (lost) return;
      // Only our own Lease: deleting with a precondition on its uid never removes a successor's.
      await kube
        .delete('Lease', name, LOCK_NAMESPACE, { preconditions: { uid: current.metadata.uid } })
        .catch(() => undefined);
    },
  };
}

function heldError(opts: { profileName: string; context: string; command: string }, holder: LockHolder): LockHeldError {
  return new LockHeldError(
    `profile ${opts.profileName} on ${opts.context} is being changed by another runner: ` +
      `${holder.identity} runs \`${holder.command}\` since ${holder.since}; nothing was changed`,
    [
      `its lock was last renewed ${holder.renewed} (the API server's clock); it expires ` +
        `${holder.leaseSeconds} s after that if the runner is gone`,
      `wait for it to finish, or, if that runner is gone (killed, machine off), run again with --break-lock`,
    ],
  );
}
