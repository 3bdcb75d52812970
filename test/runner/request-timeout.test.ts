import { createServer, type Server } from 'node:http';
import { kubeAt } from '../cli-harness.js';

/**
 * A request given its own timeout is a probe of something behind the API server (a pod's metrics
 * through its proxy: the quorum roller's reading of a member that may be frozen). It gives up on
 * time, and keeps the pooled connections, which a stuck pod says nothing against; a request without
 * one waits REQUEST_TIMEOUT_MS and then drops them (a frozen connection, tested in e2e faults).
 */
describe('a request with its own timeout', () => {
  let http: Server;
  let base = '';
  let connections = 0;
  beforeAll(async () => {
    http = createServer((req, res) => {
      if (req.url?.startsWith('/stuck')) return; // never answers
      const answer = () => res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
      if (req.url?.startsWith('/slow')) setTimeout(answer, 400);
      else answer();
    });
    http.on('connection', () => connections++);
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
  });
  afterAll(() => {
    http.closeAllConnections();
    return new Promise<void>((resolve) => http.close(() => resolve()));
  });

  test('gives up after it, in one sentence, and the next request reuses a pooled connection', async () => {
    const kube = kubeAt(base);
    const started = Date.now();
    const [stuck, slow] = await Promise.allSettled([
      kube.request<string>('GET', '/stuck', { raw: true, timeoutMs: 200 }),
      kube.request<string>('GET', '/slow', { raw: true }),
    ]);
    expect(stuck.status).toBe('rejected');
    const reason = (stuck as PromiseRejectedResult).reason as Error;
    expect(reason.name).toBe('ApiUnreachableError');
    expect(reason.message).toContain('no answer within 0.2s');
    expect(slow).toEqual({ status: 'fulfilled', value: 'ok' });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(connections).toBe(2);
    // The slow request's connection went back to the pool and serves the next one.
    expect(await kube.request<string>('GET', '/ok', { raw: true })).toBe('ok');
    expect(connections).toBe(2);
  });
});
