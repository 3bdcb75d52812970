import { Log } from '@kubernetes/client-node';
import { Writable } from 'node:stream';
import { lineSplitter } from '../lines.js';
import { ApiError, isKind, objectPath, type Kube, type Pod } from './kube.js';
import { FailedError } from '../errors.js';
import type { Reporter } from './report.js';
import { objectsOf, waitFor } from './watch.js';

/** Flow 5: logs of every Sand Store pod at once, or one crashed container's previous logs. */

const PALETTE = ['cyan', 'magenta', 'green', 'yellow', 'blue', 'red'] as const;

/** A writable that prefixes each complete line with `prefix` and hands it to `emit`. */
export function linePrefixer(prefix: string, emit: (line: string) => void): Writable {
  const lines = lineSplitter((line) => emit(`${prefix}${line}`));
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
    final(done) {
      lines.end();
      done();
    },
  });
}

export interface FollowOptions {
  readonly namespace: string;
  readonly labelSelector: string;
  /** Containers to follow in every pod; lines of the first are prefixed by the pod alone. */
  readonly containers: readonly string[];
  readonly sinceSeconds?: number;
  readonly signal: AbortSignal;
}

/**
 * Follows the logs of every pod matching the selector, prefixing each line with its pod (coloured
 * on a terminal), and starts following pods that appear later (a restarted or re-created pod).
 * Runs until the signal aborts.
 */
export async function followLogs(kube: Kube, report: Reporter, opts: FollowOptions): Promise<void> {
  const log = new Log(kube.config);
  const streams = new Map<string, AbortController>();
  let stopped = false;
  const colours = new Map<string, (typeof PALETTE)[number]>();
  const start = (pod: Pod) => Promise.all(opts.containers.map((container, i) => startOne(pod, container, i === 0)));
  const startOne = async (pod: Pod, container: string, primary: boolean) => {
    // A restarted container is a new instance: follow it again (its uid stays, its restart count not).
    const status = (pod.status?.containerStatuses ?? []).find((c) => c.name === container);
    const key = `${pod.metadata.name}/${pod.metadata.uid}/${container}/${status?.restartCount ?? 0}`;
    if (streams.has(key) || !status?.state?.running) return;
    const colour = colours.get(pod.metadata.name) ?? PALETTE[colours.size % PALETTE.length];
    colours.set(pod.metadata.name, colour);
    const label = primary ? pod.metadata.name : `${pod.metadata.name}/${container}`;
    const prefix = report.paint(colour, `${label.padEnd(12)} | `);
    const out = linePrefixer(prefix, (line) => report.info(line));
    streams.set(key, new AbortController());
    try {
      const abort = await log.log(opts.namespace, pod.metadata.name, container, out, {
        follow: true,
        sinceSeconds: opts.sinceSeconds,
        pretty: false,
        timestamps: false,
      });
      // Stopped while this stream was being opened: close it at once, or it would keep the process
      // running after the command ended (seen: Ctrl-C, then no exit until a second signal).
      if (stopped) abort.abort();
      else streams.set(key, abort);
    } catch (err) {
      streams.delete(key);
      report.problem(
        `pod ${pod.metadata.name}`,
        `cannot stream logs of container ${container}: ${(err as Error).message}`,
      );
    }
  };
  await waitFor(kube, [{ key: 'pods', kind: 'Pod', namespace: opts.namespace, labelSelector: opts.labelSelector }], {
    what: 'logs (Ctrl-C to stop)',
    timeoutSeconds: Infinity,
    signal: opts.signal,
    onConnectionProblem: (text) => report.problem('api server', text),
    onChange: (_key, type, pod) => {
      if (type !== 'DELETED' && isKind(pod, 'Pod')) void start(pod);
    },
    check: (s) => {
      for (const pod of objectsOf(s, 'pods', 'Pod')) void start(pod);
      return undefined;
    },
  }).catch((err) => {
    stopped = true;
    for (const a of streams.values()) a.abort();
    if ((err as Error).name !== 'InterruptedError') throw err;
  });
}

/**
 * Prints one container's logs once: the previous (crashed) instance with `previous`. A plain GET
 * through the runner's client, so that the API server's own words ("previous terminated container
 * not found") reach the user when there is nothing to show. Returns what it printed, for a caller
 * that reads the logs for a known failure (smoke).
 */
export async function printLogs(
  kube: Kube,
  report: Reporter,
  opts: { namespace: string; pod: string; container: string; previous: boolean; sinceSeconds?: number },
): Promise<string> {
  const fetch = async (previous: boolean): Promise<string> => {
    try {
      return await kube.request<string>('GET', `${objectPath('Pod', opts.pod, opts.namespace)}/log`, {
        query: { container: opts.container, previous: previous || undefined, sinceSeconds: opts.sinceSeconds },
        raw: true,
      });
    } catch (err) {
      const reason = err instanceof ApiError ? (err.body?.message ?? err.message) : (err as Error).message;
      throw new FailedError(
        `no ${previous ? 'previous ' : ''}logs for container ${opts.container} of pod ` + `${opts.pod}: ${reason}`,
        // A refusal's own hint (a 403: where the permissions are written down) goes along.
        err instanceof ApiError ? err.details : [],
      );
    }
  };
  let text = await fetch(opts.previous);
  // The kubelet keeps one dead instance per container and answers 200 with this line when the
  // previous one's log is gone. That happens to a crash-looping container while it is itself
  // terminated between restarts (seen on the real node): then the latest instance is the one that
  // crashed, and its log is the post-mortem asked for.
  if (opts.previous && /^unable to retrieve container logs for \S+\s*$/.test(text)) {
    const pod = await kube.get('Pod', opts.pod, opts.namespace);
    const status = [...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? [])].find(
      (c) => c.name === opts.container,
    );
    const crashed = status?.state?.terminated;
    if (!crashed)
      throw new FailedError(
        `no previous logs for container ${opts.container} of pod ${opts.pod}: the kubelet no ` +
          `longer has them (${text.trim()})`,
      );
    report.detail(
      `the kubelet has already removed the previous instance of ${opts.container}; showing ` +
        `the latest one, which also ended (exit ${crashed.exitCode}, ` +
        `${crashed.reason ?? 'terminated'} at ${crashed.finishedAt})`,
    );
    text = await fetch(false);
  }
  if (text.length > 0) report.info(text.replace(/\n$/, ''));
  return text;
}
