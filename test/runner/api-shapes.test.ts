import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { runRunner } from '../../lib/runner/program.js';
import { kubeconfigText, removeTemporaries, root, STACK_FRAME, writeKubeconfig } from '../cli-harness.js';

/**
 * Every command against "API servers" that answer well-formed JSON of the wrong shape (a stub, a
 * proxy's JSON error page, a server of something else): found by a generated hunt, which turned up
 * `internal error: Cannot read properties of null` in every command and a `logs` that never ended.
 * Each must end, in one sentence that names the request and says the answer is not Kubernetes'.
 */
const COMMANDS = ['status', 'diff', 'check', 'client', 'logs', 'smoke', 'destroy', 'update', 'deploy'] as const;
const FIXTURES = join(root, 'test', 'runner', 'fixtures');

let answer = '{}';
let server: Server;
let kubeconfig: string;
beforeAll(async () => {
  const tls = { cert: readFileSync(join(FIXTURES, 'client.crt')), key: readFileSync(join(FIXTURES, 'client.key')) };
  server = createServer(tls, (req, res) => {
    req.resume();
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(answer);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  kubeconfig = writeKubeconfig(kubeconfigText(`https://127.0.0.1:${port}`));
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  removeTemporaries();
});

/** The runner in-process; a run that has not ended after 20 s is reported as such, not waited for. */
async function run(argv: readonly string[]): Promise<{ code: number | 'hung'; stderr: string }> {
  const stdout = new PassThrough().resume();
  const stderr = new PassThrough();
  let text = '';
  stderr.on('data', (d: Buffer) => {
    text += d.toString();
  });
  const hung = new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 20_000).unref());
  const code = await Promise.race([runRunner(argv, { env: { KUBECONFIG: kubeconfig }, stdout, stderr }), hung]);
  return { code, stderr: text };
}

const named = (extra: object = {}) => ({ metadata: { name: 'x', namespace: 'y' }, ...extra });
/** JSON a Kubernetes API server never sends for a list, an object or /version. */
const wrongShapes = fc.oneof(
  fc.constantFrom<unknown>(
    {},
    null,
    [],
    'text',
    42,
    { items: null },
    { items: [{}] },
    { items: [null] },
    { items: [{ metadata: {} }] },
    { items: [{ metadata: { name: 7 } }] },
    { metadata: null },
    { major: '1', minor: null },
    { items: {} },
  ),
  fc.jsonValue().filter((v) => !Array.isArray((v as { items?: unknown } | null)?.items)),
  fc.record({ items: fc.array(fc.oneof(fc.jsonValue(), fc.constant(named()))) }, { requiredKeys: ['items'] }),
);

test('well-formed JSON of the wrong shape ends every command in a sentence, never an internal error or a hang', async () => {
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...COMMANDS), wrongShapes, async (command, shape) => {
      answer = JSON.stringify(shape);
      const r = await run([command, '--profile=local', '--context=sandstore-local', '--timeout=2']);
      expect({ command, answer, hung: r.code === 'hung' }).toEqual({ command, answer, hung: false });
      expect(r.stderr).not.toContain('internal error');
      expect(r.stderr).not.toMatch(STACK_FRAME);
      if (r.code !== 0) expect(r.stderr).toMatch(/is not (a|an) .*; is that a Kubernetes API server\?|^error: /m);
    }),
    {
      numRuns: 120,
      // Found by earlier runs of this hunt, kept so that every run tries them: a watch answered
      // with one document and no newline (logs re-listed forever), and a list whose items lack
      // the label its selector asked for (deploy's look for other profiles read undefined).
      examples: [
        ['logs', { items: [] }],
        ['deploy', { items: [named()] }],
      ],
    },
  );
}, 300_000);

test('the sentence names the request, what was expected and the start of what came', async () => {
  answer = JSON.stringify({ items: [{ metadata: {} }] });
  const r = await run(['status', '--profile=local', '--context=sandstore-local']);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(
    /^error: GET \/apis\/apps\/v1\/namespaces\/sandstore-local\/statefulsets: the answer from https:\/\/127\.0\.0\.1:\d+ is not a list of StatefulSet objects \(it begins \{"items":\[\{"metadata":\{\}\}\]\}\); is that a Kubernetes API server\?$/m,
  );
});
