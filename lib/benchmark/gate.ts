/**
 * The gate before measuring: a number measured on a cluster that is still settling (a pod not yet
 * Ready, an election under way, a node port kube-proxy has not written yet) measures the settling.
 * The gate passes when every Sand Store pod is Ready with no restart since the gate began, exactly
 * one node leads, no node changed its role in the last QUIET_SECONDS (by the node's own clock), and
 * every node port accepts a connection from this machine. It also reads what the run is later
 * compared against (stability.ts): the pods' identities, the leader and the Raft term.
 */
import pRetry from 'p-retry';
import { Component, componentSelector } from '../labels.js';
import { FailedError } from '../errors.js';
import { clientEndpoints, refusedWithin, type ClientEndpoint, type RefusedEndpoint } from '../runner/client-access.js';
import type { CommandContext } from '../runner/commands/context.js';
import { leaderFirst } from '../runner/commands/client.js';
import type { Pod } from '../runner/kube.js';
import { readLeadership, readRoleChanges } from '../runner/leader.js';
import type { Manifest } from '../synth.js';
import { isPodReady, lastTermination, restarts } from '../runner/pods.js';
import { InterruptedError, objectsOf, waitFor } from '../runner/watch.js';

/** No role change for this long before measuring: Sand Store's elections settle within it. */
export const QUIET_SECONDS = 5;

/** How long the node ports may take to accept connections (kube-proxy writing fresh rules). */
const ACCEPT_SECONDS = 30;

/** A Sand Store pod as the run compares it before and after: a new uid is a replaced pod. */
export interface PodIdentity {
  readonly name: string;
  readonly uid: string;
  readonly restarts: number;
  /** How its last restarted container ended ("sandstore exited 137 (OOMKilled)"), when one did. */
  readonly lastExit?: string;
}

/** What the gate found: the run's starting point. */
export interface GatePassed {
  readonly pods: readonly PodIdentity[];
  readonly leader: string;
  readonly term: number;
  /** Where the driver reaches each pod from this machine, the leader's first. */
  readonly endpoints: readonly ClientEndpoint[];
}

export function identityOf(pod: Pod): PodIdentity {
  const t = lastTermination(pod);
  const lastExit = t ? `${t.container} exited ${t.exitCode}${t.reason ? ` (${t.reason})` : ''}` : undefined;
  return { name: pod.metadata.name, uid: pod.metadata.uid ?? '', restarts: restarts(pod), lastExit };
}

export async function passGate(
  ctx: CommandContext,
  manifests: readonly Manifest[],
  replicas: number,
): Promise<GatePassed> {
  const deadline = Date.now() + ctx.timeoutSeconds * 1000;
  const seconds = () => Math.max(1, Math.round((deadline - Date.now()) / 1000));
  await requireDeployed(ctx);
  for (;;) {
    const pods = await allReady(ctx, replicas, seconds());
    ctx.report.step('gate', `${pods.length} Sand Store pods Ready`);
    const { leader, term } = await settledLeader(ctx, deadline);
    const now = await allReady(ctx, replicas, seconds());
    const changed = describeChanges(pods, now);
    if (changed.length > 0) {
      ctx.report.problem('gate', `${changed.join('; ')} while the gate waited; it starts over`);
      if (Date.now() >= deadline)
        throw new FailedError(
          `the data plane did not hold still for the gate within ${ctx.timeoutSeconds}s: ` + `${changed.join('; ')}`,
        );
      continue;
    }
    ctx.report.step('gate', `leader ${leader} (term ${term}), no role change in the last ${QUIET_SECONDS}s`);
    const endpoints = leaderFirst(await clientEndpoints(ctx, manifests), leader);
    await nodePortsAccept(ctx, endpoints);
    ctx.report.step('gate', `node ports accept connections: ${endpoints.map((e) => e.address).join(', ')}`);
    return { pods: now, leader, term, endpoints };
  }
}

/** Nothing to measure without the data plane: said before any wait. */
async function requireDeployed(ctx: CommandContext): Promise<void> {
  const pods = await ctx.kube.list('Pod', {
    namespace: ctx.namespace,
    labelSelector: componentSelector(ctx.profile.name, Component.dataPlane),
  });
  if (pods.items.length > 0) return;
  throw new FailedError(
    `profile ${ctx.profile.name} is not deployed on ${ctx.target.context}: no Sand Store ` +
      `pod in namespace ${ctx.namespace}. Nothing was measured.`,
    [
      `Deploy it first (\`npm run deploy -- --profile=${ctx.profile.name}\`), or add --fresh ` +
        `to deploy from a clean slate before measuring.`,
    ],
  );
}

/** Waits (by watch) until `replicas` data-plane pods are Ready; returns their identities in ordinal order. */
async function allReady(ctx: CommandContext, replicas: number, timeoutSeconds: number): Promise<PodIdentity[]> {
  const selector = componentSelector(ctx.profile.name, Component.dataPlane);
  const pods = await waitFor(
    ctx.kube,
    [{ key: 'pods', kind: 'Pod', namespace: ctx.namespace, labelSelector: selector }],
    {
      what: `all ${replicas} Sand Store pods to be Ready`,
      timeoutSeconds,
      signal: ctx.signal,
      onConnectionProblem: (text) => ctx.report.problem('api server', text),
      check: (s) => {
        const all = objectsOf(s, 'pods', 'Pod');
        return all.length === replicas && all.every(isPodReady) ? all : undefined;
      },
    },
  );
  return pods.map(identityOf).sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
}

/** What differs between two readings of the pods: replaced, restarted, gone or new pods. */
export function describeChanges(before: readonly PodIdentity[], after: readonly PodIdentity[]): string[] {
  const changes: string[] = [];
  for (const b of before) {
    const a = after.find((p) => p.name === b.name);
    if (!a) changes.push(`pod ${b.name} is gone`);
    else if (a.uid !== b.uid) changes.push(`pod ${b.name} was replaced (deleted and created again)`);
    else if (a.restarts !== b.restarts)
      changes.push(
        `pod ${b.name} restarted (${b.restarts} → ${a.restarts} ` + `restarts${a.lastExit ? `; ${a.lastExit}` : ''})`,
      );
  }
  for (const a of after) if (!before.some((b) => b.name === a.name)) changes.push(`pod ${a.name} appeared`);
  return changes;
}

/** Thrown to wait again: no single leader yet, or a role change too recent. */
class NotSettled extends Error {}

/**
 * Exactly one leader, and no role change within QUIET_SECONDS. Sand Store offers nothing to watch
 * for either, so its event logs are read again with back-off until the deadline.
 */
async function settledLeader(ctx: CommandContext, deadline: number): Promise<{ leader: string; term: number }> {
  let last = '';
  try {
    return await pRetry(
      async () => {
        const { leader, term, electing } = await readLeadership(ctx);
        if (!leader || term === undefined)
          throw new NotSettled(electing ? 'an election is under way' : 'no node has logged a role change yet');
        const recent = await readRoleChanges(ctx, QUIET_SECONDS);
        if (recent.length > 0)
          throw new NotSettled(
            `a role change in the last ${QUIET_SECONDS}s ` +
              `(${recent.map((c) => `${c.pod} became ${c.role} in term ${c.term}`).join(', ')})`,
          );
        return { leader, term };
      },
      {
        retries: Infinity,
        minTimeout: 500,
        factor: 1.5,
        maxTimeout: 2000,
        maxRetryTime: Math.max(0, deadline - Date.now()),
        signal: ctx.signal,
        shouldRetry: ({ error }) => error instanceof NotSettled,
        onFailedAttempt: ({ error }) => {
          if (error.message !== last) ctx.report.problem('gate', `waiting for a settled leader: ${error.message}`);
          last = error.message;
        },
      },
    );
  } catch (err) {
    if (ctx.signal?.aborted) throw new InterruptedError('a settled Sand Store leader');
    if (err instanceof NotSettled) {
      throw new FailedError(
        `no settled Sand Store leader within ${ctx.timeoutSeconds}s: ${err.message}. Nothing was measured.`,
        [`\`npm run logs -- --profile=${ctx.profile.name}\` shows the nodes' events; --timeout gives the gate longer.`],
      );
    }
    throw err;
  }
}

/** Every node port accepts a TCP connection from this machine, or the run stops naming what to check. */
async function nodePortsAccept(ctx: CommandContext, endpoints: readonly ClientEndpoint[]): Promise<void> {
  const refused = await refusedWithin(endpoints, ACCEPT_SECONDS, ctx.signal);
  if (ctx.signal?.aborted) throw new InterruptedError('the node ports to accept connections');
  if (refused.length === 0) return;
  const access = ctx.profile.clientAccess;
  const advertised = access.advertiseHost
    ? `, advertiseHost ${access.advertiseHost}`
    : " (no advertiseHost: the address is the node's InternalIP)";
  const why = ({ endpoint: e, reason }: RefusedEndpoint) => `${e.address} (${e.pod}): ${reason}`;
  throw new FailedError(
    `node port${refused.length === 1 ? '' : 's'} not reachable from this machine within ` +
      `${ACCEPT_SECONDS}s: ${refused.map(why).join('; ')}. Nothing was measured.`,
    [
      `The profile's clientAccess: nodePortBase ${access.nodePortBase}${advertised}; the pods ` +
        `run on ${await nodeAddresses(ctx)}.`,
      "Check that this machine can reach the node's address (a firewall, a VPN, minikube's " +
        'own network), or set clientAccess.advertiseHost to an address that reaches it.',
    ],
  );
}

/** "node n1 (InternalIP 10.0.0.2)" for each node a Sand Store pod runs on: what the operator checks. */
async function nodeAddresses(ctx: CommandContext): Promise<string> {
  const pods = await ctx.kube.list('Pod', {
    namespace: ctx.namespace,
    labelSelector: componentSelector(ctx.profile.name, Component.dataPlane),
  });
  const names = [...new Set(pods.items.map((p) => p.spec?.nodeName).filter((n): n is string => Boolean(n)))];
  const described = await Promise.all(
    names.map(async (name) => {
      const node = await ctx.kube.get('Node', name);
      const addresses: { type: string; address: string }[] = node.status?.addresses ?? [];
      const ip = addresses.find((a) => a.type === 'InternalIP')?.address;
      return `node ${name} (InternalIP ${ip ?? 'unknown'})`;
    }),
  );
  return described.join(', ') || 'no node yet';
}
