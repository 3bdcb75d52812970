import { createServer, type Server } from 'node:http';
import type { KubeObject } from '../../lib/runner/kube.js';
import { waitFor } from '../../lib/runner/watch.js';
import { kubeAt } from '../cli-harness.js';

/**
 * The wait mechanism's change notifications against a stand-in API server: what a list shows is
 * reported like a watch event, so an object that is already in trouble when a wait begins is
 * reported too (seen in CI: a pod the scheduler had refused before the first list was never
 * named as it happened, only in the timeout's summary).
 */

const pod = (name: string, resourceVersion: string): KubeObject => ({
  metadata: { name, namespace: 'x', resourceVersion },
});

describe("a wait's changes", () => {
  let http: Server;
  let base = '';
  /**
   * The lists the server answers, in order; the last one is repeated. Every watch ends at once, so
   * each list is followed by another.
   */
  let lists: KubeObject[][] = [];
  let served = 0;
  beforeAll(async () => {
    http = createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      if (/[?&]watch=true/.test(req.url ?? '')) {
        res.end();
        return;
      }
      const items = lists[Math.min(served, lists.length - 1)];
      served++;
      res.end(
        JSON.stringify({ kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: String(served) }, items }),
      );
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => http.close(() => resolve())));

  test("the first list's objects are ADDED, a re-list's differences MODIFIED or DELETED, and what did not change is not told again", async () => {
    lists = [[pod('a', '1'), pod('b', '1')], [pod('a', '1'), pod('b', '2')], [pod('b', '2')]];
    served = 0;
    const changes: string[] = [];
    await waitFor(kubeAt(base), [{ key: 'pods', kind: 'Pod', namespace: 'x' }], {
      what: 'three lists',
      timeoutSeconds: 30,
      onChange: (key, type, obj) => changes.push(`${key} ${type} ${obj.metadata.name}@${obj.metadata.resourceVersion}`),
      check: () => (served >= 3 ? true : undefined),
    });
    expect(changes).toEqual(['pods ADDED a@1', 'pods ADDED b@1', 'pods MODIFIED b@2', 'pods DELETED a@1']);
  });
});
