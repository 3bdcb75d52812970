import { Log } from '@kubernetes/client-node';
import { Writable } from 'node:stream';
import { ApiError, objectPath, type Kube, type KubeObject } from './kube.js';
import { WaitFailedError } from './waits.js';
import type { Reporter } from './report.js';
import { waitFor } from './watch.js';

/** Flow 5: logs of every Sand Store pod at once, or one crashed container's previous logs. */

const PALETTE = ['cyan', 'magenta', 'green', 'yellow', 'blue', 'red'] as const;

/** A writable that prefixes each complete line with `prefix` and hands it to `emit`. */
export function linePrefixer(prefix: string, emit: (line: string) => void): Writable {
  let partial = '';
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) emit(`${prefix}${line}`);
      done();
    },
    final(done) {
      if (partial) emit(`${prefix}${partial}`);
      done();
    },
  });
}

export interface FollowOptions {
  readonly namespace: string;
  readonly labelSelector: string;
  readonly container: string;
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
  const colours = new Map<string, (typeof PALETTE)[number]>();
  const start = async (pod: KubeObject) => {
    const key = `${pod.metadata.name}/${pod.metadata.uid}`;
    const running = (pod.status?.containerStatuses ?? []).some((c: any) => c.name === opts.container && c.state?.running);
    if (streams.has(key) || !running) return;
    const colour = colours.get(pod.metadata.name) ?? PALETTE[colours.size % PALETTE.length];
    colours.set(pod.metadata.name, colour);
    const prefix = report.paint(colour, `${pod.metadata.name.padEnd(12)} | `);
    const out = linePrefixer(prefix, (line) => report.info(line));
    streams.set(key, new AbortController());
    try {
      const abort = await log.log(opts.namespace, pod.metadata.name, opts.container, out, { follow: true, sinceSeconds: opts.sinceSeconds, pretty: false, timestamps: false });
      streams.set(key, abort);
    } catch (err) {
      streams.delete(key);
      report.problem(`pod ${pod.metadata.name}`, `cannot stream logs: ${(err as Error).message}`);
    }
  };
  await waitFor(kube, [{ key: 'pods', kind: 'Pod', namespace: opts.namespace, labelSelector: opts.labelSelector }], {
    what: 'logs (Ctrl-C to stop)',
    timeoutSeconds: Infinity,
    signal: opts.signal,
    onChange: (_key, type, pod) => {
      if (type !== 'DELETED') void start(pod);
    },
    check: (s) => {
      for (const pod of s.pods.values()) void start(pod);
      return undefined;
    },
  }).catch((err) => {
    for (const a of streams.values()) a.abort();
    if ((err as Error).name !== 'InterruptedError') throw err;
  });
}

/**
 * Prints one container's logs once: the previous (crashed) instance with `previous`. A plain GET
 * through the runner's client, so that the API server's own words ("previous terminated container
 * not found") reach the user when there is nothing to show.
 */
export async function printLogs(kube: Kube, report: Reporter, opts: { namespace: string; pod: string; container: string; previous: boolean; sinceSeconds?: number }): Promise<void> {
  let text: string;
  try {
    text = await kube.request<string>('GET', `${objectPath('Pod', opts.pod, opts.namespace)}/log`, {
      query: { container: opts.container, previous: opts.previous || undefined, sinceSeconds: opts.sinceSeconds },
      raw: true,
    });
  } catch (err) {
    const reason = err instanceof ApiError ? (err.body?.message ?? err.message) : (err as Error).message;
    throw new WaitFailedError(`no ${opts.previous ? 'previous ' : ''}logs for container ${opts.container} of pod ${opts.pod}: ${reason}`);
  }
  if (text.length > 0) report.info(text.replace(/\n$/, ''));
}
