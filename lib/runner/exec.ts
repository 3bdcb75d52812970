import { Exec } from '@kubernetes/client-node';
import { Writable } from 'node:stream';
import type { Kube } from './kube.js';

/**
 * The part of exec's WebSocket used here. client-node types it with isomorphic-ws, whose types
 * (@types/ws) the project does not install, so it would be unresolved.
 */
interface ErrorEmitter {
  on(event: 'error', listener: (err: Error) => void): unknown;
}

/** What a command run in a container printed, and how it ended by the API server's status. */
export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
}

/** How long one read-only command in a container may take, connection included. */
const EXEC_TIMEOUT_MS = 15_000;

const collector = (sink: string[]) =>
  new Writable({
    write(chunk: Buffer, _encoding, done) {
      sink.push(chunk.toString('utf8'));
      done();
    },
  });

/**
 * Runs `command` in a pod's container through the API server (pods/exec, as `kubectl exec`), with
 * the kube context's own credentials. Resolves with its output once it exits 0; rejects with the
 * API server's or the command's words otherwise, or after EXEC_TIMEOUT_MS.
 */
export function execInPod(
  kube: Kube,
  pod: { namespace: string; name: string; container: string },
  command: readonly string[],
): Promise<ExecResult> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return new Promise<ExecResult>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${EXEC_TIMEOUT_MS / 1000}s`)), EXEC_TIMEOUT_MS);
    const settle = (error?: Error) => {
      clearTimeout(timer);
      if (error) reject(error);
      else resolve({ stdout: stdout.join(''), stderr: stderr.join('') });
    };
    new Exec(kube.config)
      .exec(
        pod.namespace,
        pod.name,
        pod.container,
        [...command],
        collector(stdout),
        collector(stderr),
        null,
        false,
        (status) => {
          const words = status.message ?? stderr.join('').trim();
          settle(
            status.status === 'Success'
              ? undefined
              : new Error(words || `exited with status ${JSON.stringify(status)}`),
          );
        },
      )
      .then((socket: ErrorEmitter) => socket.on('error', (err: Error) => settle(err)))
      .catch((err: unknown) => settle(err instanceof Error ? err : new Error(String(err))));
  });
}
