import fc from 'fast-check';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { LabelKeys, MANAGED_BY, profileLabels } from '../../lib/labels.js';
import type { Profile } from '../../lib/profile.js';
import { loadProfile } from '../../lib/profiles.js';
import type { CommandContext } from '../../lib/runner/commands/context.js';
import { deploy } from '../../lib/runner/commands/deploy.js';
import { ignoredChecks } from '../../lib/runner/commands/check.js';
import { update } from '../../lib/runner/commands/update.js';
import type { KubeObject } from '../../lib/runner/kube.js';
import { objectsToClaim, TakeoverRefusedError, takeovers } from '../../lib/runner/ownership.js';
import { Reporter } from '../../lib/runner/report.js';
import { renderProfile, type Manifest } from '../../lib/synth.js';
import { kubeAt } from '../cli-harness.js';

/**
 * Deploy and update never take over an object they did not make: a namespace or StorageClass of the
 * same name that exists without the profile's labels (someone else's, another profile's) is refused
 * before the first change, naming it and the field of the profile to change. The decision is checked
 * on generated cluster states against a model; deploy and update against a stand-in API server that
 * records every request, proving that nothing was changed.
 */

/** What the cluster holds under a name dist/ uses. */
type State =
  'absent' | 'ours' | 'unlabelled' | 'other-profile' | 'other-tool' | 'profile-label-only' | 'managed-by-only';
const STATES: readonly State[] = [
  'absent',
  'ours',
  'unlabelled',
  'other-profile',
  'other-tool',
  'profile-label-only',
  'managed-by-only',
];

function liveObject(m: Manifest, state: State, profile: string): KubeObject | undefined {
  const labels: Record<string, Record<string, string>> = {
    ours: profileLabels(profile),
    unlabelled: {},
    'other-profile': profileLabels('someone-else'),
    'other-tool': { [LabelKeys.managedBy]: 'Helm', 'app.kubernetes.io/name': 'prometheus' },
    'profile-label-only': { [LabelKeys.profile]: profile },
    'managed-by-only': { [LabelKeys.managedBy]: MANAGED_BY },
  };
  if (state === 'absent') return undefined;
  return {
    apiVersion: m.apiVersion,
    kind: m.kind,
    metadata: { name: m.metadata.name, uid: `uid-${m.metadata.name}`, labels: labels[state] },
  };
}

let profile: Profile;
let manifests: Manifest[];
beforeAll(async () => {
  profile = await loadProfile('local');
  const { parse } = (await import('yaml')).default;
  manifests = [...renderProfile(profile).values()].map((text) => parse(text) as Manifest);
});

test('the objects looked up are the namespace and the cluster-scoped ones of dist/ (the StorageClass)', () => {
  expect(
    objectsToClaim(manifests)
      .map((m) => `${m.kind}/${m.metadata.name}`)
      .sort(),
  ).toEqual([`Namespace/${profile.namespace}`, `StorageClass/${profile.storage.className}`]);
});

test("an object is refused exactly when it exists without both of the profile's labels, each named with the field to change", () => {
  const wanted = objectsToClaim(manifests);
  fc.assert(
    fc.property(
      fc.array(fc.constantFrom(...STATES), { minLength: wanted.length, maxLength: wanted.length }),
      (states) => {
        const problems = takeovers(
          profile.name,
          wanted,
          wanted.map((m, i) => liveObject(m, states[i], profile.name)),
        );
        const expected = wanted.filter((_, i) => states[i] !== 'absent' && states[i] !== 'ours');
        expect(problems).toHaveLength(expected.length);
        for (const [i, m] of expected.entries()) {
          expect(problems[i]).toContain(`${m.kind} ${m.metadata.name} already exists and `);
          expect(problems[i]).toContain(
            m.kind === 'Namespace'
              ? 'set `namespace` in profiles/local.ts'
              : 'set `storage.className` in profiles/local.ts',
          );
        }
        // Whose it is, when the labels say.
        states.forEach((s, i) => {
          if (s === 'other-profile')
            expect(problems.join('\n')).toContain(
              `${wanted[i].kind} ${wanted[i].metadata.name} already exists and belongs to Sand Store profile someone-else`,
            );
          if (s === 'other-tool')
            expect(problems.join('\n')).toContain(
              `${wanted[i].kind} ${wanted[i].metadata.name} already exists and is managed by Helm`,
            );
        });
      },
    ),
    { numRuns: 200 },
  );
});

describe('deploy and update against a stand-in API server', () => {
  let http: Server;
  let base = '';
  let dist: string;
  let states: Record<string, State> = {};
  const requests: string[] = [];
  beforeAll(async () => {
    dist = mkdtempSync(join(tmpdir(), 'dist-'));
    mkdirSync(join(dist, 'local'));
    for (const [file, text] of renderProfile(profile)) writeFileSync(join(dist, 'local', file), text);
    http = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0];
      requests.push(`${req.method} ${path}`);
      const json = (status: number, body: unknown) => {
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const claimed = objectsToClaim(manifests).find(
        (m) =>
          path.endsWith(`/${m.metadata.name}`) &&
          path.includes(m.kind === 'Namespace' ? '/api/v1/namespaces/' : '/storageclasses/'),
      );
      if (req.method === 'GET' && claimed) {
        const live = liveObject(claimed, states[claimed.kind], profile.name);
        return live
          ? json(200, live)
          : json(404, { kind: 'Status', reason: 'NotFound', code: 404, message: 'not found' });
      }
      if (req.method === 'GET' && path === '/version') return json(200, { gitVersion: 'v1.28.15' });
      // The pre-flight's lists (the checks' reads, other profiles' objects and locks): nothing there.
      if (
        req.method === 'GET' &&
        /\/(leases|statefulsets|jobs|pods|persistentvolumeclaims|nodes|services|storageclasses|endpoints|csinodes|persistentvolumes)$/.test(
          path,
        )
      )
        return json(200, { metadata: { resourceVersion: '1' }, items: [] });
      // Anything past the check: a failure that ends the command, so that the test sees it got there.
      return json(503, {
        kind: 'Status',
        reason: 'ServiceUnavailable',
        code: 503,
        message: 'past the ownership check',
      });
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    rmSync(dist, { recursive: true, force: true });
    await new Promise<void>((resolve) => http.close(() => resolve()));
  });

  const context = (): CommandContext => {
    const quiet = new PassThrough();
    quiet.resume();
    return {
      profile,
      kube: kubeAt(base),
      report: new Reporter(quiet, quiet),
      distDir: dist,
      namespace: profile.namespace,
      timeoutSeconds: 5,
      signal: new AbortController().signal,
      target: { context: 'stand-in', source: 'profile', server: base },
      holdLock: async () => {},
    } as unknown as CommandContext;
  };

  test.each([
    [
      'deploy',
      (ctx: CommandContext) => deploy(ctx, { phase: 'start', applied: [] }, { ignoreChecks: ignoredChecks('all') }),
    ],
    ['update', (ctx: CommandContext) => update(ctx, { podReadySeconds: 120 })],
  ] as const)(
    "%s refuses (exit 1) before its first change when the namespace or StorageClass is someone else's, and sends only reads",
    async (command, run) => {
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...STATES), fc.constantFrom(...STATES), async (ns, sc) => {
          states = { Namespace: ns, StorageClass: sc };
          requests.length = 0;
          const err = await run(context()).catch((e: unknown) => e);
          const foreign = [ns, sc].some((s) => s !== 'absent' && s !== 'ours');
          if (foreign) {
            expect(err).toBeInstanceOf(TakeoverRefusedError);
            expect((err as TakeoverRefusedError).exitCode).toBe(1);
            expect((err as Error).message).toContain(
              `stand-in already has ${[ns, sc].filter((s) => s !== 'absent' && s !== 'ours').length === 1 ? 'an object' : 'objects'} that profile local would take over`,
            );
            expect((err as Error).message).toContain(
              `profile local was not ${command === 'deploy' ? 'deployed' : 'updated'} and nothing was changed`,
            );
            if (ns !== 'absent' && ns !== 'ours')
              expect((err as TakeoverRefusedError).details.join('\n')).toContain(
                `Namespace ${profile.namespace} already exists`,
              );
            if (sc !== 'absent' && sc !== 'ours')
              expect((err as TakeoverRefusedError).details.join('\n')).toContain(
                `StorageClass ${profile.storage.className} already exists`,
              );
            expect(requests.filter((r) => !r.startsWith('GET '))).toEqual([]);
          } else {
            // Past the check: the command went on to its next request.
            expect(err).not.toBeInstanceOf(TakeoverRefusedError);
            expect((err as Error).message).toContain('past the ownership check');
          }
        }),
        { numRuns: 30 },
      );
    },
  );
});
