import type { KubeConfig, V1Status } from '@kubernetes/client-node';
import http from 'node:http';
import https from 'node:https';
import { mark, markLast } from './trace.js';
import { FailedError, RefusedError } from '../errors.js';
import type { BodyOf, Json, KindName } from '../k8s-types.js';

/**
 * A small JSON client for the API server, on the target's credentials (client-node's KubeConfig
 * supplies TLS and auth). The runner only needs a handful of verbs on a fixed set of kinds, so
 * paths come from a static table: no discovery round-trips. Requests and watches go through here,
 * on one keep-alive connection pool; only the log streams of `logs` use client-node's own client.
 */

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    finalizers?: string[];
    deletionTimestamp?: string;
    creationTimestamp?: string;
    resourceVersion?: string;
    generation?: number;
    ownerReferences?: { kind: string; name: string; uid: string }[];
    [key: string]: unknown;
  };
  spec?: unknown;
  status?: unknown;
  [key: string]: unknown;
}

/**
 * The objects of the kinds the runner handles: their spec, status and other fields typed, their
 * metadata the runner's.
 */
export type Kinds = { [K in KindName]: KubeObject & BodyOf<K> };

/** The object of `kind`: typed when the kind is known where it is named, a plain KubeObject otherwise. */
export type ObjectOf<K extends string> = K extends keyof Kinds ? Kinds[K] : KubeObject;

/** A list answer: its items lack kind, which list() fills in. */
interface ObjectList<K extends string> {
  items?: ObjectOf<K>[];
  metadata?: { resourceVersion?: string };
}

/** Whether `o` is of `kind`: objects from list(), get() and the watches all say their kind. */
export function isKind<K extends keyof Kinds>(o: KubeObject, kind: K): o is Kinds[K] {
  return o.kind === kind;
}

export type Pod = Kinds['Pod'];
export type Job = Kinds['Job'];
export type StatefulSet = Kinds['StatefulSet'];
export type Service = Kinds['Service'];
export type Node = Kinds['Node'];
export type PersistentVolume = Kinds['PersistentVolume'];
export type Lease = Kinds['Lease'];

/** A Status, as the API server's error answers carry it (reason, message), or undefined when the text is none. */
function parseStatus(text: string): Json<V1Status> | undefined {
  try {
    return JSON.parse(text) as Json<V1Status>;
  } catch {
    return undefined;
  }
}

/** Whether `o` is an object as the API server sends each: metadata with a name. */
const isNamedObject = (o: unknown): o is KubeObject => {
  const metadata = (o as { metadata?: unknown } | null)?.metadata;
  return typeof metadata === 'object' && metadata !== null && typeof (metadata as { name?: unknown }).name === 'string';
};

/** A short sample of an answer, for the message that says it is not what a Kubernetes API server sends. */
const sample = (value: unknown) => JSON.stringify(value)?.slice(0, 80) ?? String(value);

interface Resource {
  readonly group: string; // '' for the core group
  readonly version: string;
  readonly plural: string;
  readonly namespaced: boolean;
}

/** Every kind the runner reads, writes or watches. */
export const RESOURCES: Readonly<Record<string, Resource>> = {
  Namespace: { group: '', version: 'v1', plural: 'namespaces', namespaced: false },
  Node: { group: '', version: 'v1', plural: 'nodes', namespaced: false },
  ConfigMap: { group: '', version: 'v1', plural: 'configmaps', namespaced: true },
  Service: { group: '', version: 'v1', plural: 'services', namespaced: true },
  Pod: { group: '', version: 'v1', plural: 'pods', namespaced: true },
  PersistentVolumeClaim: { group: '', version: 'v1', plural: 'persistentvolumeclaims', namespaced: true },
  PersistentVolume: { group: '', version: 'v1', plural: 'persistentvolumes', namespaced: false },
  StatefulSet: { group: 'apps', version: 'v1', plural: 'statefulsets', namespaced: true },
  Job: { group: 'batch', version: 'v1', plural: 'jobs', namespaced: true },
  PodDisruptionBudget: { group: 'policy', version: 'v1', plural: 'poddisruptionbudgets', namespaced: true },
  NetworkPolicy: { group: 'networking.k8s.io', version: 'v1', plural: 'networkpolicies', namespaced: true },
  // The role sidecar's identity and its one permission (LeaderRouting).
  ServiceAccount: { group: '', version: 'v1', plural: 'serviceaccounts', namespaced: true },
  Role: { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'roles', namespaced: true },
  RoleBinding: { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'rolebindings', namespaced: true },
  StorageClass: { group: 'storage.k8s.io', version: 'v1', plural: 'storageclasses', namespaced: false },
  Lease: { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', namespaced: true },
  // Read by check only: older provisioners' leader locks, and the CSI drivers registered on nodes.
  Endpoints: { group: '', version: 'v1', plural: 'endpoints', namespaced: true },
  CSINode: { group: 'storage.k8s.io', version: 'v1', plural: 'csinodes', namespaced: false },
};

function resourceOf(kind: string): Resource {
  const r = RESOURCES[kind];
  if (!r) throw new Error(`the runner does not handle kind ${kind}; known kinds: ${Object.keys(RESOURCES).join(', ')}`);
  return r;
}

/** The collection path of `kind`, in `namespace` when namespaced (all namespaces when undefined). */
export function collectionPath(kind: string, namespace?: string): string {
  const r = resourceOf(kind);
  const base = r.group === '' ? `/api/${r.version}` : `/apis/${r.group}/${r.version}`;
  return r.namespaced && namespace !== undefined
    ? `${base}/namespaces/${namespace}/${r.plural}`
    : `${base}/${r.plural}`;
}

export function objectPath(kind: string, name: string, namespace?: string): string {
  return `${collectionPath(kind, resourceOf(kind).namespaced ? (namespace ?? 'default') : undefined)}/${encodeURIComponent(name)}`;
}

/** The API server answered a request with an error (exit code 1): its own words say why. */
export class ApiError extends FailedError {
  public constructor(
    public readonly status: number,
    public readonly reason: string,
    message: string,
    public readonly body?: Json<V1Status>,
  ) {
    super(
      `the API server refused ${message}`,
      // Forbidden: the context's user lacks a permission; say where the permissions are written down.
      status === 403
        ? [
            "the kube context's user may not do this: docs/commands.md#permissions lists what each command " +
              'needs, and `npm run rbac -- --profile=<p> --user=<name>` prints the roles an admin applies to grant it',
          ]
        : [],
    );
  }
}

/** The API server could not be reached at all (down, wrong address, TLS trouble, no answer). */
export class ApiUnreachableError extends FailedError {
  public constructor(
    public readonly server: string,
    message: string,
  ) {
    super(message, [
      'Is the cluster up? For the local profile: npm run cluster:up. Otherwise check the ' +
        "context's server in your kubeconfig.",
    ]);
  }
}

const isNotFound = (err: unknown) => err instanceof ApiError && err.status === 404;

const FIELD_MANAGER = 'sandstore-deploy';
const REQUEST_TIMEOUT_MS = 30_000;
/** A watch is asked to end after this long (unless told otherwise); the caller then lists and watches again. */
export const DEFAULT_WATCH_SECONDS = 60;
/**
 * A watch silent for this much longer than it was asked to last is taken for dead. The server
 * ends each watch on time and sends bookmarks, so silence beyond it is a connection that stays
 * open with nothing behind it (a proxy that lost its upstream, a frozen API server).
 */
const WATCH_SILENCE_FACTOR = 1.25;

/** A watch that stayed open but silent past its deadline: its connection is dead. */
export class WatchSilentError extends Error {}
const USER_AGENT = 'sandstore-deploy';

/** What a DELETE may say besides the object. */
export interface DeleteOptions {
  /** @default 'Background' */
  readonly propagationPolicy?: 'Background' | 'Foreground';
  /** `uid`: only that very object, not a namesake created since. */
  readonly preconditions?: { readonly uid?: string };
  /** A pod's time to stop, instead of its own `terminationGracePeriodSeconds`. */
  readonly gracePeriodSeconds?: number;
}

export class Kube {
  /**
   * Requests sent by this client, by verb (watches as WATCH): printed with
   * SANDSTORE_REQUEST_COUNT=1, for the bench.
   */
  public readonly requestCount: Record<string, number> = {};
  private options?: Promise<https.RequestOptions>;
  /** The API server's clock minus ours, at most: from the Date header of its latest answer. */
  private serverClockAhead?: number;

  /**
   * @param watchSeconds how long each watch is asked to last (server-side timeoutSeconds); a watch
   *   silent for 1.25 times that is taken for dead. Default 60 s (SANDSTORE_WATCH_SECONDS).
   */
  public constructor(
    public readonly config: KubeConfig,
    private readonly watchSeconds = DEFAULT_WATCH_SECONDS,
  ) {}

  /**
   * New connections for every request from now on. Called when a watch went silent: the idle
   * keep-alive connections went the same way (through the same proxy, to the same frozen server),
   * and a request sent on one of them would hang until its own timeout.
   */
  private dropConnections(): void {
    const old = this.options;
    this.options = undefined;
    old?.then(
      (o) => {
        const agent = o.agent as http.Agent;
        for (const sockets of Object.values(agent.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
      },
      () => undefined,
    );
  }

  private connection(): Promise<https.RequestOptions> {
    this.options ??= (async () => {
      const opts: https.RequestOptions = {};
      try {
        await this.config.applyToHTTPSOptions(opts);
      } catch (err) {
        // Computed before the first request goes out (an exec plugin that fails, a token file that
        // cannot be read): nothing was sent.
        throw new RefusedError(
          `the credentials of kube context "${this.config.getCurrentContext()}" cannot be used: ` +
            `${(err as Error).message}. Nothing was sent.`,
        );
      }
      const server = new URL(this.config.getCurrentCluster()!.server);
      const secure = server.protocol === 'https:';
      // One keep-alive agent for the whole command instead of a connection per request.
      const agent = secure
        ? new https.Agent({
            keepAlive: true,
            ca: opts.ca,
            cert: opts.cert,
            key: opts.key,
            rejectUnauthorized: opts.rejectUnauthorized,
            servername: opts.servername,
          })
        : new http.Agent({ keepAlive: true });
      return {
        ...opts,
        agent,
        protocol: server.protocol,
        hostname: server.hostname,
        port: server.port || (secure ? 443 : 80),
        basePath: server.pathname.replace(/\/$/, ''),
      } as https.RequestOptions;
    })();
    return this.options;
  }

  /**
   * The API server's time now, never later than its real clock: its Date header (whole seconds,
   * rounded down) against our clock when the answer arrived. Our own clock where it sent none yet.
   * Times the server stamps (managedFields) compared with this are on one clock, whatever ours says.
   */
  public serverNow(): number {
    return Date.now() + (this.serverClockAhead ?? 0);
  }

  private observeServerClock(res: http.IncomingMessage): void {
    const date = Date.parse(res.headers.date ?? '');
    if (Number.isFinite(date)) this.serverClockAhead = date - Date.now();
  }

  /**
   * Something answered that is not a Kubernetes API server (a proxy, a login page, a stub): the
   * answer is well-formed JSON, just not of the shape every API server gives.
   */
  private notKubernetes(method: string, path: string, expected: string, got: unknown): FailedError {
    const server = this.config.getCurrentCluster()?.server ?? 'the API server';
    return new FailedError(
      `${method} ${path}: the answer from ${server} is not ${expected} (it begins ${sample(got)}); ` +
        'is that a Kubernetes API server?',
    );
  }

  /** The server's version (GET /version): its gitVersion, such as "v1.28.15". */
  public async version(): Promise<string> {
    const v = await this.request<{ gitVersion?: unknown } | null>('GET', '/version');
    if (typeof v?.gitVersion !== 'string') throw this.notKubernetes('GET', '/version', 'a version', v);
    return v.gitVersion;
  }

  public async request<T = unknown>(
    method: string,
    path: string,
    opts: {
      query?: Record<string, string | number | boolean | undefined>;
      body?: unknown;
      contentType?: string;
      raw?: boolean;
      /**
       * Gives up on an answer after this long (default REQUEST_TIMEOUT_MS). Set, it is a probe of
       * something behind the API server (a pod's port through its proxy): a slow answer says that
       * pod is stuck, not that the connection is, so the pooled connections are kept.
       */
      timeoutMs?: number;
    } = {},
  ): Promise<T> {
    const conn = await this.connection();
    const body =
      opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
    this.requestCount[method] = (this.requestCount[method] ?? 0) + 1;
    mark('first request');
    const server = this.config.getCurrentCluster()?.server ?? '(unknown)';
    return new Promise<T>((resolve, reject) => {
      const headers: Record<string, string | number> =
        body !== undefined
          ? { 'Content-Type': opts.contentType ?? 'application/json', 'Content-Length': Buffer.byteLength(body) }
          : {};
      const req = this.send(conn, method, path, opts.query ?? {}, headers, (res) => {
        this.observeServerClock(res);
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          markLast('last response');
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) {
            if (opts.raw || !text) {
              resolve((opts.raw ? text : undefined) as T);
              return;
            }
            try {
              resolve(JSON.parse(text) as T);
            } catch {
              // Something between us and the API server (a proxy, a login page) answered instead.
              reject(
                new FailedError(
                  `${method} ${path}: the answer from ` +
                    `${this.config.getCurrentCluster()?.server ?? 'the API server'} is not JSON (status ` +
                    `${status}, begins ${JSON.stringify(text.slice(0, 80))}); is that a Kubernetes API server?`,
                ),
              );
            }
            return;
          }
          const parsed = parseStatus(text);
          reject(
            new ApiError(
              status,
              parsed?.reason ?? res.statusMessage ?? '',
              `${method} ${path}: ${status} ${parsed?.message ?? text.slice(0, 300)}`,
              parsed,
            ),
          );
        });
        // The connection broke while the answer was arriving (the API server died mid-reply): as
        // unreachable as no answer at all, and a wait asks again.
        res.on('error', (err) =>
          reject(
            new ApiUnreachableError(
              server,
              `${method} ${path}: the connection to the API server at ${server} broke while its ` +
                `answer was arriving: ${err.message}`,
            ),
          ),
        );
      });
      req.on('error', (err) =>
        reject(
          new ApiUnreachableError(
            server,
            `${method} ${path}: cannot reach the API server at ${server}: ${err.message}`,
          ),
        ),
      );
      // A request the server never answers must fail, not hang a wait forever.
      const timeoutMs = opts.timeoutMs ?? REQUEST_TIMEOUT_MS;
      req.setTimeout(timeoutMs, () => {
        // The idle connections are suspect too (same proxy, same frozen server): a retry gets a new one.
        if (opts.timeoutMs === undefined) this.dropConnections();
        req.destroy(new Error(`no answer within ${timeoutMs / 1000}s`));
      });
      if (body !== undefined) req.write(body);
      req.end();
    });
  }

  /** Sends one request on the command's connection pool: request() and watch() both go out here. */
  private send(
    conn: https.RequestOptions,
    method: string,
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    headers: Record<string, string | number>,
    onResponse: (res: http.IncomingMessage) => void,
  ): http.ClientRequest {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') qs.set(k, String(v));
    const search = qs.toString();
    const lib = conn.protocol === 'https:' ? https : http;
    return lib.request(
      {
        ...conn,
        method,
        path: `${(conn as { basePath?: string }).basePath ?? ''}${path}${search ? `?${search}` : ''}`,
        headers: {
          ...(conn.headers ?? {}),
          Accept: 'application/json',
          // Names the runner in the API server's audit log (the bench counts requests there).
          'User-Agent': USER_AGENT,
          ...headers,
        },
      },
      onResponse,
    );
  }

  /**
   * Watches a collection from `resourceVersion`, on the same keep-alive agent as every other
   * request (so the TLS session is reused rather than negotiated again). Calls `onEvent` per event
   * and `onEnd` once when the watch ends for any reason other than `abort()`: the server closed it
   * (it is asked to after watchSeconds), the connection dropped, or nothing at all arrived for
   * 1.25 × watchSeconds (a connection that stays open but silent, e.g. through a proxy that lost its
   * upstream: WatchSilentError, and the idle connections are dropped too). The caller re-lists and
   * watches again, so a stuck watch costs a bounded delay, never a hang.
   */
  public watch(
    path: string,
    query: { labelSelector?: string; fieldSelector?: string; resourceVersion: string },
    onEvent: (type: string, obj: KubeObject) => void,
    onEnd: (err?: Error) => void,
  ): { abort(): void } {
    let ended = false;
    let req: http.ClientRequest | undefined;
    const end = (err?: Error) => {
      if (ended) return;
      ended = true;
      req?.destroy();
      onEnd(err);
    };
    this.requestCount.WATCH = (this.requestCount.WATCH ?? 0) + 1;
    mark('first request');
    this.connection().then((conn) => {
      if (ended) return;
      const watchQuery = { watch: true, allowWatchBookmarks: true, timeoutSeconds: this.watchSeconds, ...query };
      req = this.send(conn, 'GET', path, watchQuery, {}, (res) => {
        if ((res.statusCode ?? 0) >= 300) {
          // The server's own words (a Status object), as for any other request.
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const status = parseStatus(Buffer.concat(chunks).toString('utf8'));
            end(
              new ApiError(
                res.statusCode ?? 0,
                status?.reason ?? res.statusMessage ?? '',
                `WATCH ${path}: ${res.statusCode} ${status?.message ?? res.statusMessage ?? ''}`,
                status,
              ),
            );
          });
          return;
        }
        let buffered = '';
        const handle = (line: string): void => {
          if (!line || ended) return;
          let event: { type: string; object: KubeObject };
          try {
            event = JSON.parse(line) as { type: string; object: KubeObject };
          } catch {
            // Not a watch event: end this watch; the caller lists and watches again.
            end(new Error(`watch of ${path}: an event that is not JSON (${JSON.stringify(line.slice(0, 80))})`));
            return;
          }
          const changesObject = ['ADDED', 'MODIFIED', 'DELETED'].includes(event?.type);
          if (
            typeof event?.type !== 'string' ||
            typeof event.object !== 'object' ||
            event.object === null ||
            (changesObject && !isNamedObject(event.object))
          ) {
            end(this.notKubernetes('WATCH', path, 'a watch event', event));
            return;
          }
          onEvent(event.type, event.object);
        };
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffered += chunk;
          for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
            const line = buffered.slice(0, nl).trim();
            buffered = buffered.slice(nl + 1);
            handle(line);
          }
        });
        // The server ends every event with a newline; an answer that ends without one (a stub's
        // single JSON document) is judged too, else it would be taken for an empty watch, forever.
        res.on('end', () => {
          handle(buffered.trim());
          end();
        });
        res.on('error', end);
      });
      req.on('error', (err) => end(err));
      const silence = this.watchSeconds * WATCH_SILENCE_FACTOR;
      req.setTimeout(silence * 1000, () => {
        this.dropConnections();
        end(
          new WatchSilentError(
            `the watch of ${path} stayed silent for ${silence}s (asked to end after ${this.watchSeconds}s)`,
          ),
        );
      });
      req.end();
    }, end);
    return {
      abort: () => {
        ended = true;
        req?.destroy();
      },
    };
  }

  /** Server-side apply with the runner's fixed field manager; `force` takes over fields others own. */
  public apply<T extends KubeObject>(m: T, opts: { dryRun?: boolean } = {}): Promise<T> {
    return this.request('PATCH', objectPath(m.kind!, m.metadata.name, m.metadata.namespace), {
      query: { fieldManager: FIELD_MANAGER, force: true, dryRun: opts.dryRun ? 'All' : undefined },
      body: m,
      contentType: 'application/apply-patch+yaml',
    });
  }

  public mergePatch(kind: string, name: string, namespace: string | undefined, patch: unknown): Promise<KubeObject> {
    return this.request('PATCH', objectPath(kind, name, namespace), {
      query: { fieldManager: FIELD_MANAGER },
      body: patch,
      contentType: 'application/merge-patch+json',
    });
  }

  public async get<K extends string>(kind: K, name: string, namespace?: string): Promise<ObjectOf<K>> {
    const path = objectPath(kind, name, namespace);
    const res = await this.request<ObjectOf<K> | null>('GET', path);
    if (!isNamedObject(res)) throw this.notKubernetes('GET', path, `a ${kind} object`, res);
    return res;
  }

  /** The object, or undefined when it does not exist. */
  public async find<K extends string>(kind: K, name: string, namespace?: string): Promise<ObjectOf<K> | undefined> {
    try {
      return await this.get(kind, name, namespace);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  public async list<K extends string>(
    kind: K,
    opts: { namespace?: string; labelSelector?: string; fieldSelector?: string } = {},
  ): Promise<{ items: ObjectOf<K>[]; resourceVersion: string }> {
    const query = { labelSelector: opts.labelSelector, fieldSelector: opts.fieldSelector };
    const path = collectionPath(kind, opts.namespace);
    const res = await this.request<ObjectList<K> | null>('GET', path, { query });
    if (!Array.isArray(res?.items) || !res.items.every(isNamedObject))
      throw this.notKubernetes('GET', path, `a list of ${kind} objects`, res);
    const items = res.items;
    for (const item of items) item.kind ??= kind;
    return { items, resourceVersion: res.metadata?.resourceVersion ?? '' };
  }

  /** Creates `o`; fails with 409 when it exists (the runner's lock relies on that). */
  public create<T extends KubeObject>(o: T): Promise<T> {
    return this.request('POST', collectionPath(o.kind!, o.metadata.namespace), { body: o });
  }

  /** Replaces `o` if its resourceVersion is still the live one; fails with 409 otherwise. */
  public replace<T extends KubeObject>(o: T): Promise<T> {
    return this.request('PUT', objectPath(o.kind!, o.metadata.name, o.metadata.namespace), { body: o });
  }

  /** Deletes; a NotFound counts as done (returns false). */
  public async delete(kind: string, name: string, namespace?: string, opts: DeleteOptions = {}): Promise<boolean> {
    const { propagationPolicy = 'Background', preconditions, gracePeriodSeconds } = opts;
    try {
      await this.request('DELETE', objectPath(kind, name, namespace), {
        body: {
          kind: 'DeleteOptions',
          apiVersion: 'v1',
          propagationPolicy,
          ...(preconditions ? { preconditions } : {}),
          ...(gracePeriodSeconds !== undefined ? { gracePeriodSeconds } : {}),
        },
      });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }
}
