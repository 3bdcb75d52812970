import { connect } from 'node:net';
import pRetry from 'p-retry';
import { DeployPhase, POD_NAME_LABEL } from '../labels.js';
import { isManifestOf, type ManifestOf } from '../k8s-types.js';
import type { Manifest } from '../synth.js';
import type { CommandContext } from './commands/context.js';
import { manifestsOfPhase } from './manifests.js';

/** One Sand Store pod as a client outside the cluster reaches it. */
export interface ClientEndpoint {
  readonly pod: string;
  readonly address: string;
}

/**
 * Where a client outside the cluster reaches each Sand Store pod: `<host>:<node port>`, the host
 * being the profile's `clientAccess.advertiseHost`, else the InternalIP of the node the pod runs on
 * (what Sand Store itself advertises from HOST_IP for leader redirects). Read from the node-port
 * Services in dist/ and from the live pods and nodes, so the addresses are the ones that work now.
 */
export async function clientEndpoints(ctx: CommandContext, manifests: readonly Manifest[]): Promise<ClientEndpoint[]> {
  // In ordinal order (node port = base + ordinal); dist/'s file order puts sandstore-10 before sandstore-2.
  const nodePort = (svc: ManifestOf<'Service'>) => svc.spec?.ports?.[0]?.nodePort ?? 0;
  // Each pod's own node port; the leader's (no pod name in its selector) is leaderAddress's.
  const services = manifestsOfPhase(manifests, DeployPhase.clientAccess)
    .filter((m) => isManifestOf(m, 'Service'))
    .filter((svc) => svc.spec?.selector?.[POD_NAME_LABEL] !== undefined)
    .sort((a, b) => nodePort(a) - nodePort(b));
  const advertised = ctx.profile.clientAccess.advertiseHost;
  const nodeIps = new Map<string, string>();
  if (!advertised) {
    for (const node of (await ctx.kube.list('Node')).items) {
      const ip = (node.status?.addresses ?? []).find((a) => a.type === 'InternalIP')?.address;
      if (ip) nodeIps.set(node.metadata.name, ip);
    }
  }
  const pods = advertised ? [] : (await ctx.kube.list('Pod', { namespace: ctx.namespace })).items;
  return services.map((svc) => {
    const pod = svc.spec?.selector?.[POD_NAME_LABEL] ?? '';
    const nodeName = pods.find((p) => p.metadata.name === pod)?.spec?.nodeName;
    const host = advertised ?? (nodeName ? nodeIps.get(nodeName) : undefined) ?? '<node address>';
    return { pod, address: `${host}:${nodePort(svc)}` };
  });
}

/**
 * The one address at which a client outside the cluster reaches the leader, whichever pod leads
 * (the profile's `clientAccess.leader`, docs/leader-access.md): `<host>:<leader node port>`, the
 * host as for clientEndpoints (a node port opens on every node: the first pod's). Undefined without.
 */
export async function leaderAddress(ctx: CommandContext, manifests: readonly Manifest[]): Promise<string | undefined> {
  const leader = ctx.profile.clientAccess.leader;
  if (!leader) return undefined;
  const [first] = await clientEndpoints(ctx, manifests);
  const host = first?.address.slice(0, first.address.lastIndexOf(':')) ?? '<node address>';
  return `${host}:${leader.nodePort}`;
}

/** Resolves once `host:port` accepts a TCP connection (closed at once), rejects otherwise. */
export function accepts(address: string): Promise<void> {
  const at = address.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const socket = connect({ host: address.slice(0, at), port: Number(address.slice(at + 1)), timeout: 1000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.once('timeout', () => {
      socket.destroy();
      reject(new Error(`${address}: no answer within 1s`));
    });
    socket.once('error', (err) => {
      socket.destroy();
      reject(err);
    });
  });
}

/** An address that did not accept a connection in time, and the last reason. */
export interface RefusedEndpoint {
  readonly endpoint: ClientEndpoint;
  readonly reason: string;
}

/**
 * Tries every address until it accepts a TCP connection (right after a deploy kube-proxy may not yet
 * have written a new node port's rules), with back-off, for up to `seconds`; returns those that never
 * did. `onFirstRefusal` is told once, for a line saying why the command waits.
 */
export async function refusedWithin(
  endpoints: readonly ClientEndpoint[],
  seconds: number,
  signal?: AbortSignal,
  onFirstRefusal?: () => void,
): Promise<RefusedEndpoint[]> {
  let said = false;
  const results = await Promise.allSettled(
    endpoints.map((e) =>
      pRetry(() => accepts(e.address), {
        retries: Infinity,
        minTimeout: 100,
        factor: 1.5,
        maxTimeout: 1000,
        maxRetryTime: seconds * 1000,
        signal,
        onFailedAttempt: () => {
          if (!said) onFirstRefusal?.();
          said = true;
        },
      }),
    ),
  );
  return endpoints.flatMap((endpoint, i) => {
    const r = results[i];
    return r.status === 'rejected' ? [{ endpoint, reason: (r.reason as Error).message }] : [];
  });
}
