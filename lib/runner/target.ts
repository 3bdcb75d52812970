import { KubeConfig } from '@kubernetes/client-node';
import type { Profile } from '../profile.js';
import { RefusedError } from '../errors.js';

/** Where the runner acts, and why that context was chosen. */
export interface Target {
  readonly context: string;
  readonly source: 'flag --context' | 'KUBE_CONTEXT' | 'profile';
  readonly server: string;
  /** A KubeConfig whose current context is the target, in memory only: the file is never changed. */
  readonly kubeConfig: KubeConfig;
}

/** The context cannot be acted on; nothing was sent (exit code 2). */
export class TargetRefusedError extends RefusedError {}

/**
 * The context to act on: --context, else KUBE_CONTEXT, else the profile's pinned one. Never the
 * kubeconfig's current-context: that is whatever the user last switched to, possibly production.
 */
export function chooseContext(profile: Profile, flag: string | undefined, env: NodeJS.ProcessEnv): { context: string; source: Target['source'] } {
  if (flag !== undefined && flag !== '') return { context: flag, source: 'flag --context' };
  if (env.KUBE_CONTEXT) return { context: env.KUBE_CONTEXT, source: 'KUBE_CONTEXT' };
  return { context: profile.kube.context, source: 'profile' };
}

/** Normalizes an API server URL for comparison (case of host, trailing slash, default port). */
function sameServer(a: string, b: string): boolean {
  const norm = (u: string) => {
    const url = new URL(u);
    const port = url.port || (url.protocol === 'https:' ? '443' : '80');
    return `${url.protocol}//${url.hostname.toLowerCase()}:${port}${url.pathname.replace(/\/+$/, '')}`;
  };
  try {
    return norm(a) === norm(b);
  } catch {
    return a === b;
  }
}

/**
 * Resolves the target from the kubeconfig (KUBECONFIG, else ~/.kube/config) without sending any
 * request; refuses a context that is not there, or whose server differs from the profile's pin.
 */
export function resolveTarget(profile: Profile, flag: string | undefined, env: NodeJS.ProcessEnv = process.env, kubeConfig?: KubeConfig): Target {
  const { context, source } = chooseContext(profile, flag, env);
  kubeConfig ??= loadKubeConfig(env);
  const known = kubeConfig.getContexts().map((c) => c.name);
  const ctx = kubeConfig.getContextObject(context);
  if (!ctx) {
    throw new TargetRefusedError(
      `kube context "${context}" (from ${source}) is not in the kubeconfig (${env.KUBECONFIG ?? '~/.kube/config'}); ` +
        `contexts there: ${known.length > 0 ? known.join(', ') : 'none'}. Nothing was sent.` +
        (source === 'profile' ? ` Create it, or pass --context=<name> to act on another cluster on purpose.` : ''),
    );
  }
  const cluster = kubeConfig.getCluster(ctx.cluster);
  if (!cluster) throw new TargetRefusedError(`kube context "${context}" names cluster "${ctx.cluster}", which the kubeconfig does not define. Nothing was sent.`);
  if (profile.kube.apiServer !== undefined && !sameServer(profile.kube.apiServer, cluster.server)) {
    throw new TargetRefusedError(
      `kube context "${context}" points at ${cluster.server}, but profile "${profile.name}" is pinned to ${profile.kube.apiServer}. ` +
        `Nothing was sent. Fix the kubeconfig or the profile's kube.apiServer.`,
    );
  }
  kubeConfig.setCurrentContext(context);
  return { context, source, server: cluster.server, kubeConfig };
}

/** Reads the kubeconfig (KUBECONFIG, else ~/.kube/config); an unreadable one is a refusal. */
function loadKubeConfig(env: NodeJS.ProcessEnv = process.env): KubeConfig {
  const kc = new KubeConfig();
  try {
    kc.loadFromDefault();
  } catch (err) {
    throw new TargetRefusedError(`cannot read the kubeconfig (${env.KUBECONFIG ?? '~/.kube/config'}): ${(err as Error).message}. Nothing was sent.`);
  }
  return kc;
}

export function describeTarget(t: Target): string {
  return `context ${t.context} (from ${t.source}), API server ${t.server}`;
}
