import fc from 'fast-check';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FailedError, RefusedError } from '../../lib/errors.js';
import { generatedHeader } from '../../lib/output-dir.js';
import type { Profile } from '../../lib/profile.js';
import { loadProfile } from '../../lib/profiles.js';
import { smoke } from '../../lib/runner/commands/smoke.js';
import type { CommandContext } from '../../lib/runner/commands/context.js';
import { ApiUnreachableError } from '../../lib/runner/kube.js';
import { ManifestsRefusedError, readManifests } from '../../lib/runner/manifests.js';
import { Reporter } from '../../lib/runner/report.js';
import { objectsOf, waitFor } from '../../lib/runner/watch.js';
import { renderProfile } from '../../lib/synth.js';
import { kubeAt, withCountingServer } from '../cli-harness.js';

/**
 * Failures that come from what the runner is given rather than from its arguments: answers that
 * are not the API server's, credentials that cannot be used, a dist/ the runner cannot apply. Each
 * is a sentence with its exit code, never an internal error or a crash in a stream's callback.
 */

describe("answers that are not an API server's", () => {
  let http: Server;
  let body = '';
  let base = '';
  beforeAll(async () => {
    http = createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(body);
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => http.close(() => resolve())));

  const notJson = fc
    .oneof(
      fc.string({ minLength: 1, maxLength: 40 }),
      fc.constantFrom('<html>login</html>', '{"items": [', 'OK', '\u0000'),
    )
    .filter((t) => {
      try {
        JSON.parse(t);
        return false;
      } catch {
        return true;
      }
    });

  test("a 2xx answer that is not JSON (a proxy's login page) fails the request in words (exit 1)", async () => {
    const kube = kubeAt(base);
    await fc.assert(
      fc.asyncProperty(notJson, async (text) => {
        body = text;
        const err = await kube.list('Pod', { namespace: 'x' }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(FailedError);
        expect((err as FailedError).exitCode).toBe(1);
        expect((err as Error).message).toContain('is not JSON');
      }),
      { numRuns: 50 },
    );
  });

  test('a watch line that is not JSON ends the watch with an error (the caller lists again), no crash', async () => {
    const kube = kubeAt(base);
    await fc.assert(
      fc.asyncProperty(
        notJson.filter((t) => !t.includes('\n') && t.trim() !== ''),
        async (text) => {
          body = `${text}\n`;
          const ended = await new Promise<Error | undefined>((resolve) => {
            kube.watch('/api/v1/pods', { resourceVersion: '1' }, () => undefined, resolve);
          });
          expect(ended?.message).toContain('an event that is not JSON');
        },
      ),
      { numRuns: 30 },
    );
  });
});

test('credentials that cannot be produced (an exec plugin that is not there) are a refusal: nothing was sent', () =>
  withCountingServer(async (server) => {
    const kube = kubeAt(`https://127.0.0.1:${server.port}`, {
      name: 'u',
      exec: { apiVersion: 'client.authentication.k8s.io/v1', command: '/nonexistent/credential-plugin' },
    });
    const err = await kube.list('Pod').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RefusedError);
    expect((err as Error).message).toContain('the credentials of kube context "ctx" cannot be used');
    expect(server.connections()).toBe(0);
  }));

describe('a dist/ the runner cannot act on', () => {
  let profile: Profile;
  let dir: string;
  beforeAll(async () => {
    profile = await loadProfile('local');
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'dist-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('an object of a kind the runner has no address for is refused before the first request', async () => {
    mkdirSync(join(dir, 'local'));
    for (const [file, text] of renderProfile(profile)) writeFileSync(join(dir, 'local', file), text);
    writeFileSync(
      join(dir, 'local', 'ingress-sandstore.yaml'),
      `${generatedHeader('local')}apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: sandstore\n`,
    );
    const err = await readManifests(dir, profile, { allowStale: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ManifestsRefusedError);
    expect((err as Error).message).toContain(
      'dist/local/ingress-sandstore.yaml holds an object of kind Ingress, which the runner cannot apply',
    );
  });

  test('smoke on a profile without the smoke-test Job is refused (exit 2) before anything is sent', () =>
    withCountingServer(async (server) => {
      const noSmoke = { ...profile, smokeTest: false };
      mkdirSync(join(dir, 'local'));
      for (const [file, text] of renderProfile(noSmoke)) writeFileSync(join(dir, 'local', file), text);
      const kube = kubeAt(`https://127.0.0.1:${server.port}`);
      const report = new Reporter();
      const ctx = {
        profile: noSmoke,
        kube,
        report,
        distDir: dir,
        namespace: noSmoke.namespace,
        timeoutSeconds: 10,
      } as unknown as CommandContext;
      const err = await smoke(ctx).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RefusedError);
      expect((err as Error).message).toContain('has no smoke-test Job');
      expect(server.connections()).toBe(0);
    }));
});

describe('a watch the API server refuses', () => {
  let http: Server;
  let base = '';
  const seen = { lists: 0, watches: 0 };
  beforeAll(async () => {
    // Lists are allowed, watches forbidden (an RBAC role with list but not watch).
    http = createServer((req, res) => {
      const watching = /[?&]watch=true/.test(req.url ?? '');
      if (watching) seen.watches++;
      else seen.lists++;
      res.writeHead(watching ? 403 : 200, { 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify(
          watching
            ? {
                kind: 'Status',
                apiVersion: 'v1',
                status: 'Failure',
                reason: 'Forbidden',
                code: 403,
                message: 'pods is forbidden: User "u" cannot watch resource "pods"',
              }
            : { kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: '7' }, items: [] },
        ),
      );
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => http.close(() => resolve())));

  test("ends the wait at once with the server's words (exit 1), instead of listing and watching again in a loop", async () => {
    const err = await waitFor(kubeAt(base), [{ key: 'pods', kind: 'Pod', namespace: 'x' }], {
      what: 'pods to appear',
      timeoutSeconds: 30,
      check: (s) => (objectsOf(s, 'pods').length > 0 ? true : undefined),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FailedError);
    expect((err as FailedError).message).toBe(
      'the API server refused WATCH /api/v1/namespaces/x/pods: 403 pods is forbidden: User "u" cannot watch resource "pods"',
    );
    // Forbidden: the line under it says where the permissions each command needs are written down.
    expect((err as FailedError).details.join('\n')).toMatch(/docs\/commands\.md#permissions.*npm run rbac/);
    expect(seen).toEqual({ lists: 1, watches: 1 });
  });
});

describe('an API server that dies in the middle of its answer', () => {
  let http: Server;
  let base = '';
  let broken = 0;
  beforeAll(async () => {
    // The first `broken` lists get their headers and half a body, then the connection is cut (as
    // when the API server process is killed mid-reply); after that, a proper list.
    http = createServer((req, res) => {
      const watching = /[?&]watch=true/.test(req.url ?? '');
      res.writeHead(200, { 'Content-Type': 'application/json' });
      if (!watching && broken > 0) {
        broken--;
        res.write('{"kind":"PodList","items":[');
        setTimeout(() => res.socket?.destroy(), 20);
        return;
      }
      if (watching) return; // a watch that stays open (the wait ends before it matters)
      res.end(
        JSON.stringify({
          kind: 'PodList',
          apiVersion: 'v1',
          metadata: { resourceVersion: '7' },
          items: [{ metadata: { name: 'p', namespace: 'x' } }],
        }),
      );
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
  });
  afterAll(
    () =>
      new Promise<void>((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  );

  test('a request cut mid-answer fails as an unreachable server (exit 1, in words), not as an internal error', async () => {
    broken = 1;
    const err = await kubeAt(base)
      .list('Pod', { namespace: 'x' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiUnreachableError);
    expect((err as FailedError).exitCode).toBe(1);
    expect((err as Error).message).toMatch(
      /^GET \/api\/v1\/namespaces\/x\/pods: the connection to the API server at http:\/\/127\.0\.0\.1:\d+ broke while its answer was arriving: /,
    );
  });

  test('a wait asks again and carries on (seen in CI: the killed API server ended a deploy with "internal error: aborted")', async () => {
    broken = 2;
    const problems: string[] = [];
    const found = await waitFor(kubeAt(base), [{ key: 'pods', kind: 'Pod', namespace: 'x' }], {
      what: 'pod p',
      timeoutSeconds: 30,
      check: (s) => objectsOf(s, 'pods').map((p) => p.metadata.name)[0],
      onConnectionProblem: (t) => problems.push(t),
    });
    expect(found).toBe('p');
    expect(broken).toBe(0);
    expect(problems).toEqual([
      expect.stringMatching(
        /^no answer while waiting for pod p \(.*broke while its answer was arriving.*\); asking again/,
      ),
      expect.stringMatching(/^the API server answers again after/),
    ]);
  });
});
