import pRetry from 'p-retry';
import {
  ApiError,
  ApiUnreachableError,
  collectionPath,
  WatchSilentError,
  type Kinds,
  type Kube,
  type KubeObject,
} from './kube.js';
import { CommandError, FailedError } from '../errors.js';

/**
 * The one wait mechanism every command uses: list, then watch from that resourceVersion, keeping a
 * live snapshot of each source, and re-evaluating a predicate on every event until it returns a
 * result, the deadline passes or the user interrupts. Re-lists when a watch ends (server timeout,
 * 410 Gone, a dropped or silent connection), so a long wait costs two requests per source, not one
 * per poll. An API server that stops answering (restarted, briefly unreachable) is asked again, with
 * back-off, for up to API_OUTAGE_SECONDS before the wait gives up on it.
 */

/** How long a wait keeps asking an API server that stopped answering before it fails. */
const API_OUTAGE_SECONDS = 30;

/** The API server stopped answering during a wait and did not come back in time (exit code 1). */
class ApiLostError extends FailedError {}

/** Failures a later attempt may not meet: no connection, no answer, the server overloaded or restarting. */
const isTransient = (err: unknown) =>
  err instanceof ApiUnreachableError || (err instanceof ApiError && (err.status >= 500 || err.status === 429));

/** A watch's end that a new list and watch would only meet again: 4xx but 410 Gone, or not Kubernetes. */
const isFinalWatchEnd = (err: Error | undefined): boolean =>
  err instanceof ApiError
    ? err.status >= 400 && err.status < 500 && err.status !== 410
    : err instanceof FailedError && !isTransient(err);

export interface WatchSource {
  /** Name of this source in the snapshot. */
  readonly key: string;
  readonly kind: string;
  /** Undefined: all namespaces (or a cluster-scoped kind). */
  readonly namespace?: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
}

/** Live objects per source key, by namespace/name. */
export type Snapshot = Record<string, Map<string, KubeObject>>;

/**
 * The objects of source `key`; given `kind`, those of that kind, typed as such (every object in a
 * snapshot has its kind: list() and the watch fill it in).
 */
export function objectsOf(s: Snapshot, key: string): KubeObject[];
export function objectsOf<K extends keyof Kinds>(s: Snapshot, key: string, kind: K): Kinds[K][];
export function objectsOf(s: Snapshot, key: string, kind?: string): KubeObject[] {
  const objects = [...(s[key]?.values() ?? [])];
  return kind === undefined ? objects : objects.filter((o) => o.kind === kind);
}

/** A wait's deadline passed (exit code 1); the waits that know more turn it into a richer failure. */
export class WaitTimeoutError extends FailedError {
  public constructor(
    public readonly what: string,
    public readonly seconds: number,
    public readonly snapshot: Snapshot,
  ) {
    super(`timed out after ${seconds}s waiting for ${what}`);
  }
}

/** Ctrl-C (or SIGTERM) during a wait (exit code 130); the command adds what the cluster now holds. */
export class InterruptedError extends CommandError {
  public constructor(
    public readonly what: string,
    public readonly snapshot?: Snapshot,
  ) {
    super(`interrupted while waiting for ${what}. No request was left half-sent.`, 130);
  }
}

export interface WaitOptions<R> {
  /** What is being waited for, for messages ("etcd to be Ready"). */
  readonly what: string;
  /** Returns the result once the wait is over, else undefined. May throw to fail fast. */
  readonly check: (snapshot: Snapshot) => R | undefined;
  /**
   * Called on every change (to report pod problems as they happen): each watch event, and each
   * difference a list (the first, or one after a watch ended) shows from the snapshot before it.
   */
  readonly onChange?: (key: string, type: string, obj: KubeObject, snapshot: Snapshot) => void;
  readonly timeoutSeconds: number;
  readonly signal?: AbortSignal;
  /**
   * Re-evaluates the predicate on the snapshot this often even without events, for predicates that
   * depend on time (a pod's Ready deadline). Costs no request: the snapshot is local.
   */
  readonly recheckSeconds?: number;
  /** Told when the connection to the API server fails and is being re-established (for a progress line). */
  readonly onConnectionProblem?: (text: string) => void;
}

const keyOf = (o: KubeObject) => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;

export async function waitFor<R>(kube: Kube, sources: readonly WatchSource[], opts: WaitOptions<R>): Promise<R> {
  const snapshot: Snapshot = Object.fromEntries(sources.map((s) => [s.key, new Map()]));
  const aborts: { abort(): void }[] = [];
  let settled = false;

  return new Promise<R>((resolve, reject) => {
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearInterval(recheck);
      opts.signal?.removeEventListener('abort', onAbort);
      for (const a of aborts) a.abort();
      fn();
    };
    // Until every source has been listed once, an empty source means "not read yet", not "none".
    const unlisted = new Set(sources.map((s) => s.key));
    const evaluate = () => {
      if (settled || unlisted.size > 0) return;
      try {
        const result = opts.check(snapshot);
        if (result !== undefined) finish(() => resolve(result));
      } catch (err) {
        finish(() => reject(err));
      }
    };
    // An infinite wait (logs --follow) has no timer: it ends on its predicate or on interrupt.
    const timer = Number.isFinite(opts.timeoutSeconds)
      ? setTimeout(
          () => finish(() => reject(new WaitTimeoutError(opts.what, opts.timeoutSeconds, snapshot))),
          opts.timeoutSeconds * 1000,
        )
      : undefined;
    const recheck = opts.recheckSeconds ? setInterval(evaluate, opts.recheckSeconds * 1000) : undefined;
    const onAbort = () => finish(() => reject(new InterruptedError(opts.what, snapshot)));
    if (opts.signal?.aborted) return onAbort();
    opts.signal?.addEventListener('abort', onAbort);

    // Ends the retries of a list once the wait is over.
    const over = new AbortController();
    aborts.push(over);
    const list = async (source: WatchSource) => {
      let failedAt: number | undefined;
      try {
        const listed = await pRetry(() => kube.list(source.kind, source), {
          retries: Infinity,
          minTimeout: 250,
          factor: 2,
          maxTimeout: 4000,
          maxRetryTime: API_OUTAGE_SECONDS * 1000,
          signal: over.signal,
          shouldRetry: ({ error }) => isTransient(error),
          onFailedAttempt: ({ error, attemptNumber }) => {
            if (attemptNumber === 1 && isTransient(error)) {
              failedAt = Date.now();
              opts.onConnectionProblem?.(
                `no answer while waiting for ${opts.what} (${error.message}); asking again for up to ` +
                  `${API_OUTAGE_SECONDS}s`,
              );
            }
          },
        });
        if (failedAt !== undefined)
          opts.onConnectionProblem?.(
            `the API server answers again after ${((Date.now() - failedAt) / 1000).toFixed(1)}s; ` +
              `still waiting for ${opts.what}`,
          );
        return listed;
      } catch (err) {
        if (!isTransient(err)) throw err;
        throw new ApiLostError(
          `lost the API server while waiting for ${opts.what}: ${(err as Error).message}; it did ` +
            `not answer again within ${API_OUTAGE_SECONDS}s`,
          [
            'what was requested before stays requested: Kubernetes goes on converging without the ' +
              'runner; once the API server is back, `npm run status` shows where it got',
          ],
        );
      }
    };
    const start = async (source: WatchSource): Promise<void> => {
      const listed = await list(source);
      if (settled) return;
      const objects = snapshot[source.key];
      const before = new Map(objects);
      objects.clear();
      for (const o of listed.items) objects.set(keyOf(o), o);
      unlisted.delete(source.key);
      // What the list shows that the snapshot did not hold is a change like any watch event: an
      // object already in trouble when the wait begins (a pod the scheduler has already refused)
      // is reported as one that gets there later would be.
      for (const [key, o] of objects) {
        const old = before.get(key);
        if (old === undefined || old.metadata.resourceVersion !== o.metadata.resourceVersion)
          opts.onChange?.(source.key, old ? 'MODIFIED' : 'ADDED', o, snapshot);
      }
      for (const [key, o] of before) if (!objects.has(key)) opts.onChange?.(source.key, 'DELETED', o, snapshot);
      evaluate();
      if (settled) return;
      const watch = kube.watch(
        collectionPath(source.kind, source.namespace),
        {
          labelSelector: source.labelSelector,
          fieldSelector: source.fieldSelector,
          resourceVersion: listed.resourceVersion,
        },
        (type, obj) => {
          if (settled || type === 'BOOKMARK' || type === 'ERROR') return;
          obj.kind ??= source.kind;
          if (type === 'DELETED') objects.delete(keyOf(obj));
          else objects.set(keyOf(obj), obj);
          opts.onChange?.(source.key, type, obj, snapshot);
          evaluate();
        },
        // The watch ended (server-side timeout, expired resourceVersion, dropped or silent
        // connection): start over from a fresh list rather than trusting a snapshot that may have
        // missed events. A refusal that a new list would only meet again (forbidden, not found, an
        // answer that is not Kubernetes') ends the wait instead of re-listing in a loop.
        (err) => {
          if (settled) return;
          if (err && isFinalWatchEnd(err)) return finish(() => reject(err));
          if (err instanceof WatchSilentError)
            opts.onConnectionProblem?.(`${err.message}; listing again on a new connection`);
          start(source).catch((e: unknown) => finish(() => reject(e)));
        },
      );
      if (settled) watch.abort();
      else aborts.push(watch);
    };
    for (const source of sources) start(source).catch((err: unknown) => finish(() => reject(err)));
  });
}
