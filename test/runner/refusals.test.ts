import fc from 'fast-check';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { listProfiles, loadProfile } from '../../lib/profiles.js';
import { parseProfile, ProfileError, type Profile } from '../../lib/profile.js';
import { rules } from '../../lib/validation.js';
import {
  DEFAULT_PROFILE,
  duration,
  MAX_SINCE_SECONDS,
  MAX_WAIT_SECONDS,
  ruled,
  seconds,
} from '../../lib/runner/commands/command.js';
import { declaredOptions, runRunner } from '../../lib/runner/program.js';
import { loadKubeConfig, resolveTarget, serverProblem, TargetRefusedError } from '../../lib/runner/target.js';
import {
  countingServer,
  kubeconfigText,
  removeTemporaries,
  root,
  runEntry,
  STACK_FRAME,
  writeKubeconfig,
  type CountingServer,
} from '../cli-harness.js';

/**
 * Every refusal before a request exits 2 with one sentence, and sends nothing: proved against an
 * "API server" that counts the connections it gets. Each class of bad input is generated (option
 * values empty or repeated, numbers no timer can hold or that make no sense, names that go into a
 * request, kubeconfigs that are malformed or unsafe); the runner runs in-process for the many
 * generated cases, and as a process (the way a user runs it) for a sample of each class.
 */

/** A client certificate with its key, and a key of another pair (test/runner/fixtures, made with openssl). */
const FIXTURES = join(root, 'test', 'runner', 'fixtures');
const CLIENT_CERT = join(FIXTURES, 'client.crt');
const CLIENT_KEY = join(FIXTURES, 'client.key');
const OTHER_KEY = join(FIXTURES, 'other.key');

let server: CountingServer;
let kubeconfig: string;
let profile: Profile;
beforeAll(async () => {
  server = await countingServer();
  kubeconfig = writeKubeconfig(kubeconfigText(`https://127.0.0.1:${server.port}`));
  profile = await loadProfile('local');
});
afterAll(async () => {
  await server.close();
  removeTemporaries();
});

interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Connections the counting server got during the run. */
  readonly sent: number;
}

/**
 * The runner in-process on `argv`, with only `env` as its environment (KUBECONFIG at the counting
 * server by default).
 */
async function run(argv: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Outcome> {
  const collect = () => {
    const stream = new PassThrough();
    let text = '';
    stream.on('data', (d: Buffer) => {
      text += d.toString();
    });
    return { stream, text: () => text };
  };
  const out = collect();
  const err = collect();
  const before = server.connections();
  const code = await runRunner(argv, {
    env: { KUBECONFIG: kubeconfig, ...env },
    stdout: out.stream,
    stderr: err.stream,
  });
  return { code, stdout: out.text(), stderr: err.text(), sent: server.connections() - before };
}

/**
 * A refusal as the README promises it: exit code 2, one `error:` sentence (no internal error, no
 * stack), nothing sent.
 */
function expectRefused(o: Outcome, ...said: string[]): void {
  expect({ code: o.code, sent: o.sent }).toEqual({ code: 2, sent: 0 });
  expect(o.stderr).toMatch(/^error: /);
  expect(o.stderr).not.toContain('internal error');
  expect(o.stderr).not.toMatch(STACK_FRAME);
  for (const s of said) expect(o.stderr).toContain(s);
}

const valueOptions = declaredOptions().filter((o) => o.takesValue);
/** A value each option accepts, so that only the property under test (emptiness, repetition) is wrong. */
const GOOD_VALUE: Record<string, string> = {
  '--profile': 'local',
  '--context': 'sandstore-local',
  '--timeout': '30',
  '--pod-ready-timeout': '30',
  '--since': '10m',
  '--pod': 'sandstore-0',
  '--container': 'events',
  '--image': 'localhost:5000/sandstore-node:next',
  '--source': '/nonexistent/sandstore',
  '--duration': '3',
  '--warmup': '1',
  '--concurrency': '2',
  '--block-size': '4096',
  '--ops': 'stat',
  '--results-dir': '/nonexistent/results',
  '--out': '/nonexistent/comparison',
  '--profiles': 'local,local-node',
  '--repeat': '2',
  '--resume': '/nonexistent/study',
  '--baseline': 'processes',
  '--ignore-check': 'resources',
  '--user': 'alice',
  '--group': 'devs',
  '--service-account': 'default/alice',
  '--kubectl': '/nonexistent/kubectl',
  '--test-image': 'localhost:5000/sandstore-cluster-tests:next',
  '--run': '^TestOpenSmoke$',
  '--test-timeout': '600',
  '--start-timeout': '60',
};

test("the table of options the properties go through is the runner's own, and every option taking a value has a known good value", () => {
  expect(valueOptions.length).toBeGreaterThanOrEqual(20);
  for (const o of valueOptions) expect(GOOD_VALUE[o.flag]).toBeDefined();
});

describe('option values', () => {
  test('an empty (or blank) value of any option of any command is refused, naming the option', async () => {
    let cases = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...valueOptions),
        fc.constantFrom('', ' ', '\t', '   '),
        fc.boolean(),
        async (o, blank, joined) => {
          cases++;
          const argv = joined ? [o.command, `${o.flag}=${blank}`] : [o.command, o.flag, blank];
          expectRefused(await run(argv), `${o.flag}`, 'is empty');
        },
      ),
      { numRuns: 150 },
    );
    expect(cases).toBe(150);
  });

  test('a single-valued option given twice is refused rather than the last one winning', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...valueOptions), fc.boolean(), async (o, sameTwice) => {
        const first = GOOD_VALUE[o.flag];
        const second = sameTwice ? first : `${first}x`;
        expectRefused(
          await run([o.command, `${o.flag}=${first}`, `${o.flag}=${second}`]),
          `${o.flag} is given more than once (${JSON.stringify(first)}, then ${JSON.stringify(second)}); give it once`,
        );
      }),
      { numRuns: 100 },
    );
  });

  test('a value with surrounding whitespace, of any option of any command, is refused naming the option, never trimmed', async () => {
    const pad = fc.constantFrom(' ', '\t', '\n', '  ', '\u00a0', '\r\n');
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...valueOptions),
        pad,
        fc.constantFrom('before', 'after', 'both'),
        fc.boolean(),
        async (o, p, where, joined) => {
          const value = `${where === 'after' ? '' : p}${GOOD_VALUE[o.flag]}${where === 'before' ? '' : p}`;
          const argv = joined ? [o.command, `${o.flag}=${value}`] : [o.command, o.flag, value];
          expectRefused(await run(argv), `${o.flag}`, `has surrounding whitespace (${JSON.stringify(value)})`);
        },
      ),
      { numRuns: 150 },
    );
  });

  test('a KUBE_CONTEXT with surrounding whitespace is refused, never trimmed', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(' sandstore-local', 'sandstore-local ', '\tsandstore-local', 'sandstore-local\n', ' x '),
        fc.constantFrom('status', 'deploy', 'destroy', 'logs'),
        async (value, command) => {
          expectRefused(
            await run([command, '--profile=local'], { KUBE_CONTEXT: value }),
            `KUBE_CONTEXT has surrounding whitespace (${JSON.stringify(value)})`,
          );
        },
      ),
      { numRuns: 12 },
    );
  });

  test('an empty or blank KUBE_CONTEXT is refused, not taken for "unset"', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('', ' ', '\t'),
        fc.constantFrom('status', 'deploy', 'destroy', 'logs'),
        async (blank, command) => {
          expectRefused(
            await run([command, '--profile=local'], { KUBE_CONTEXT: blank }),
            'KUBE_CONTEXT is set but empty',
          );
        },
      ),
      { numRuns: 12 },
    );
  });
});

/** The accepted form of a number of seconds, as a model: plain decimal, from 1 s to a day. */
const secondsModel = (s: string) =>
  /^\d+(\.\d+)?$/.test(s) && Number(s) >= 1 && Number(s) <= MAX_WAIT_SECONDS ? Number(s) : undefined;
const numberish = fc.oneof(
  fc.double({ min: -1e6, max: 1e12, noNaN: true }).map(String),
  fc.integer({ min: -10, max: 200_000 }).map(String),
  fc.double({ min: 0, max: 2, noNaN: true }).map((n) => n.toFixed(4)),
  fc.constantFrom(
    '0',
    '1',
    '86400',
    '86400.5',
    '2147483.647',
    '3024000',
    '0.0001',
    '1e3',
    '0x10',
    'Infinity',
    'NaN',
    '5s',
    '1,5',
    '+5',
    '.5',
    '5.',
    '-0',
    ' 7 ',
  ),
  fc.string({ maxLength: 6 }),
);

describe('numbers', () => {
  test('--timeout and --pod-ready-timeout take plain seconds from 1 to a day, which a timer holds; anything else is refused with the range', () => {
    fc.assert(
      fc.property(numberish, (s) => {
        const want = secondsModel(s);
        if (want === undefined) {
          expect(() => seconds(s)).toThrow(
            `expected a number of seconds from 1 to ${MAX_WAIT_SECONDS} (one day), such as 300, got "${s}"`,
          );
        } else {
          expect(seconds(s)).toBe(want);
          expect(want * 1000).toBeLessThanOrEqual(2 ** 31 - 1); // setTimeout's limit
        }
      }),
      { numRuns: 2000 },
    );
  });

  test('--since takes 1s to 8760h; anything else is refused with the range', () => {
    const unit = fc.constantFrom('', 's', 'm', 'h', 'd', 'ms', ' s', 'H');
    const durations = fc.oneof(
      fc
        .tuple(
          fc.oneof(fc.nat({ max: 1_000_000 }), fc.constantFrom(0, 8760, 8761, 525600, 525601, 31536000, 31536001)),
          unit,
        )
        .map(([n, u]) => `${n}${u}`),
      fc.string({ maxLength: 6 }),
      fc.constantFrom('1.5m', '-1h', '99999999999h', '1h30m'),
    );
    const model = (s: string) => {
      const m = /^(\d+)(s|m|h)?$/.exec(s);
      const n = m ? Number(m[1]) * { s: 1, m: 60, h: 3600 }[(m[2] ?? 's') as 's' | 'm' | 'h'] : NaN;
      return n >= 1 && n <= MAX_SINCE_SECONDS ? n : undefined;
    };
    fc.assert(
      fc.property(durations, (s) => {
        const want = model(s);
        if (want === undefined)
          expect(() => duration(s)).toThrow(
            `expected a duration from 1s to 8760h (a year) like 30s, 10m or 2h, got "${s}"`,
          );
        else expect(duration(s)).toBe(want);
      }),
      { numRuns: 2000 },
    );
  });

  test('a refused number stops the command before anything is sent', async () => {
    const timers = valueOptions.filter(
      (o) => o.flag === '--timeout' || o.flag === '--pod-ready-timeout' || o.flag === '--since',
    );
    const bad = numberish.filter((s) => secondsModel(s) === undefined && s.trim() !== '');
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...timers), bad, async (o, s) => {
        if (o.flag === '--since') fc.pre(!/^\s*\d+[smh]?\s*$/.test(s) || Number(s) > MAX_SINCE_SECONDS);
        expectRefused(await run([o.command, '--profile=local', `${o.flag}=${s}`]), `option '${o.flag} <`);
      }),
      { numRuns: 100 },
    );
  });

  test('SANDSTORE_WATCH_SECONDS takes whole seconds from 1 to 3600; anything else is refused before anything is sent', async () => {
    const good = (s: string) => /^\d+$/.test(s) && Number(s) >= 1 && Number(s) <= 3600;
    await fc.assert(
      fc.asyncProperty(
        numberish.filter((s) => !good(s)),
        async (s) => {
          expectRefused(
            await run(['status', '--profile=local', '--context=sandstore-local'], { SANDSTORE_WATCH_SECONDS: s }),
            `SANDSTORE_WATCH_SECONDS: expected a whole number of seconds from 1 to 3600, such as 60, got ${JSON.stringify(s)}`,
          );
        },
      ),
      { numRuns: 50 },
    );
  });
});

describe('names that go into a request', () => {
  const NAMED: [flag: string, command: string, rule: (v: string) => string | undefined][] = [
    ['--image', 'update', rules.imageReference],
    ['--pod', 'logs', rules.dnsSubdomain],
    ['--container', 'logs', rules.dnsLabel],
  ];
  /** Strings near the accepted forms (image references, pod names) as well as arbitrary ones. */
  const nearly = fc
    .oneof(
      fc
        .tuple(
          fc.constantFrom('localhost:5000', 'docker.io/me', 'Registry.io', 'host:port', ''),
          fc.constantFrom('sandstore-node', 'Sandstore', 'a..b', ''),
          fc.constantFrom('next', 'v1.2', '', '-x', 'a'.repeat(129)),
        )
        .map(([r, n, t]) => `${r}/${n}:${t}`),
      fc.constantFrom(
        'sandstore-0',
        'Sandstore-0',
        'sandstore_0',
        'sandstore-0.',
        '-sandstore',
        'a'.repeat(64),
        '../etc',
        'x/y',
        'x?y=1',
        'x#y',
        '%2e%2e',
        'events',
        'sandstore',
        'busybox',
      ),
      fc.string({ minLength: 1, maxLength: 20 }),
    )
    .filter((s) => s.trim() !== '');

  test('each is checked by its rule of lib/validation.ts when parsed: accepted as is, or refused with the accepted form', () => {
    fc.assert(
      fc.property(fc.constantFrom(...NAMED), nearly, ([, , rule], s) => {
        const accepted = rule(s);
        if (accepted === undefined) expect(ruled(rule)(s)).toBe(s);
        else expect(() => ruled(rule)(s)).toThrow(`expected ${accepted}, got ${JSON.stringify(s)}`);
      }),
      { numRuns: 1000 },
    );
  });

  test('a refused name stops the command before anything is sent', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...NAMED), nearly, async ([flag, command, rule], s) => {
        fc.pre(rule(s) !== undefined);
        // Surrounding whitespace is refused as such, before the rule looks at the value.
        expectRefused(
          await run([command, '--profile=local', `${flag}=${s}`]),
          s.trim() === s ? `expected ${rule(s)}` : 'has surrounding whitespace',
        );
      }),
      { numRuns: 100 },
    );
  });
});

describe('what a command is asked to run', () => {
  test('client with a program that is not there is refused before the leader is looked up', async () => {
    const program = fc.oneof(
      fc.stringMatching(/^[a-z][a-z0-9_-]{0,12}$/).map((n) => `no-such-${n}`),
      fc.stringMatching(/^[a-z][a-z0-9_-]{0,12}$/).map((n) => `./no-such-${n}`),
      // A directory, and a file that is not executable (mode 0644).
      fc.constantFrom('/nonexistent/open_smoke', './', writeKubeconfig('not a program\n')),
    );
    await fc.assert(
      fc.asyncProperty(program, async (p) => {
        expectRefused(
          await run(['client', '--profile=local', '--', p, '--flag']),
          `cannot run ${p}: `,
          'Nothing was sent.',
        );
      }),
      { numRuns: 40 },
    );
  });

  test('a command that deletes or replaces what runs needs --profile; read-only ones keep a default', async () => {
    const listed = `Profiles: ${listProfiles().join(', ')}. Nothing was sent.`;
    for (const command of ['deploy', 'destroy', 'update', 'resume']) {
      expectRefused(
        await run([command, '--context=sandstore-local']),
        `${command} deletes or replaces what the cluster runs`,
        '--profile=<name>',
        listed,
      );
    }
    expectRefused(await run(['benchmark', '--fresh']), 'benchmark with these options deletes or replaces', listed);
    // The defaults themselves: what these would have acted on, had the guard not been there.
    const help = await run(['deploy', '--help']);
    expect(help.stdout).toMatch(/--profile <name> +profile to act on \(a file in profiles\/\)\n/);
    expect((await run(['status', '--help'])).stdout.replace(/\s+/g, ' ')).toContain(
      `(a file in profiles/) (default: "${DEFAULT_PROFILE}")`,
    );
  });

  test('update --build with --image is refused: which image to roll out would be a guess', async () => {
    expectRefused(
      await run(['update', '--profile=local', '--build', '--image=localhost:5000/sandstore-node:next']),
      "--build builds and pushes the profile's image, --image runs another",
    );
  });
});

describe('conformance: the checkout and the kubectl the test image is built from', () => {
  /** A checkout with Sand Store's go.mod, and with its cluster tests when `tests`. */
  const checkout = (tests: boolean, module = 'github.com/AnishMulay/sandstore') => {
    const dir = mkdtempSync(join(tmpdir(), 'conformance-checkout-'));
    writeFileSync(join(dir, 'go.mod'), `module ${module}\n\ngo 1.24\n`);
    if (tests) {
      mkdirSync(join(dir, 'integration', 'cluster'), { recursive: true });
      writeFileSync(join(dir, 'integration', 'cluster', 'cluster_test.go'), 'package cluster\n');
    }
    return dir;
  };
  /** The smallest file the kubectl check takes for a static linux/amd64 program: an ELF header, no program headers. */
  const staticAmd64 = () => {
    const elf = Buffer.alloc(64);
    Buffer.from('7f454c46', 'hex').copy(elf);
    elf.writeUInt16LE(62, 18);
    const file = join(mkdtempSync(join(tmpdir(), 'conformance-kubectl-')), 'kubectl');
    writeFileSync(file, elf, { mode: 0o755 });
    return file;
  };
  const conformance = (...args: string[]) => run(['conformance', '--profile=local', ...args]);

  test('a checkout without integration/cluster is refused naming the path and the accepted form; nothing is built or sent', async () => {
    const dir = checkout(false);
    expectRefused(
      await conformance(`--source=${dir}`, `--kubectl=${staticAmd64()}`),
      `--source: ${dir} has no integration/cluster (Sand Store's cluster tests); expected a Sand Store checkout`,
      'Nothing was built or sent.',
    );
    rmSync(dir, { recursive: true });
  });

  test('a directory that is not Sand Store, or is not there, is refused the same way', async () => {
    for (const dir of [checkout(true, 'example.com/other'), '/nonexistent/sandstore']) {
      expectRefused(
        await conformance(`--source=${dir}`, `--kubectl=${staticAmd64()}`),
        `--source: ${dir} is not Sand Store (no go.mod of module github.com/AnishMulay/sandstore)`,
      );
    }
  });

  test('a kubectl that is missing, or no static linux/amd64 executable, is refused naming it', async () => {
    const source = checkout(true);
    expectRefused(
      await conformance(`--source=${source}`, '--kubectl=/nonexistent/kubectl'),
      '--kubectl: /nonexistent/kubectl does not exist; expected a static linux/amd64 kubectl',
    );
    const script = writeKubeconfig('#!/bin/sh\n');
    expectRefused(
      await conformance(`--source=${source}`, `--kubectl=${script}`),
      `--kubectl: ${script} is not a static linux/amd64 executable`,
    );
  });

  test('with both right, the command goes on to the cluster: the guards above are what stopped it', async () => {
    const o = await conformance(`--source=${checkout(true)}`, `--kubectl=${staticAmd64()}`, '--timeout=5');
    // The counting server drops every connection: the first request fails (exit 1), but it was sent.
    expect(o.sent).toBeGreaterThan(0);
    expect(o.code).toBe(1);
  });

  test('--profile must be named (the tests scale the StatefulSet to zero); --test-image must be a tagged reference', async () => {
    expectRefused(await run(['conformance', '--context=sandstore-local']), 'conformance deletes or replaces');
    expectRefused(await conformance('--test-image=not an image'), '--test-image', 'an image reference with a tag');
  });
});

describe('kubeconfigs', () => {
  let dir: string;
  let serial = 0;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'kubeconfigs-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const plant = (text: string) => {
    const file = join(dir, `config-${serial++}`);
    writeFileSync(file, text);
    return file;
  };

  /** A server address from parts, with the model's verdict: only https, a host, no credentials, query or fragment. */
  const server = fc
    .record({
      scheme: fc.constantFrom('https://', 'HTTPS://', 'http://', 'ftp://', 'tcp://', '', '//', 'https:/'),
      userinfo: fc.constantFrom('', '', 'admin@', 'u:p@'),
      host: fc.constantFrom('127.0.0.1', 'localhost', 'kube.example.com', '[::1]', ''),
      port: fc.constantFrom('', ':6443', ':443', ':99999', ':abc'),
      path: fc.constantFrom('', '/k8s/clusters/c-1'),
      suffix: fc.constantFrom('', '', '?x=1', '#frag'),
      // Whitespace the URL parser would drop silently, around or inside.
      before: fc.constantFrom('', '', '', ' ', '\t', '\n'),
      after: fc.constantFrom('', '', '', ' ', '\r\n', '\t'),
    })
    // "https:/" + no host + "/k8s/..." is "https://k8s/...": a valid URL the parts do not describe.
    .filter((p) => !(p.scheme === 'https:/' && p.host === '' && p.path !== ''))
    .map((p) => ({
      text: `${p.before}${p.scheme}${p.userinfo}${p.host}${p.port}${p.path}${p.suffix}${p.after}`,
      ok:
        p.scheme.toLowerCase() === 'https://' &&
        p.userinfo === '' &&
        p.host !== '' &&
        !/99999|abc/.test(p.port) &&
        p.suffix === '' &&
        p.before === '' &&
        p.after === '',
    }));

  test("one rule: a profile's kube.apiServer is accepted exactly when the runner accepts it as a kubeconfig's server", () => {
    fc.assert(
      fc.property(server, ({ text }) => {
        let pinned = true;
        try {
          parseProfile('local', { ...profile, kube: { ...profile.kube, apiServer: text } });
        } catch (err) {
          expect(err).toBeInstanceOf(ProfileError);
          pinned = false;
        }
        let reached = true;
        try {
          resolveTarget(profile, undefined, { KUBECONFIG: plant(kubeconfigText(text)) });
        } catch (err) {
          expect(err).toBeInstanceOf(TargetRefusedError);
          reached = false;
        }
        expect(pinned).toBe(reached);
      }),
      { numRuns: 500 },
    );
  });

  test('the server rule agrees with the model on every combination of parts', () => {
    fc.assert(
      fc.property(server, ({ text, ok }) => {
        expect(serverProblem(text) === undefined).toBe(ok);
      }),
      { numRuns: 3000 },
    );
  });

  test('a server that is not an https URL with a host is refused before any request, naming the file, the context and the accepted form', async () => {
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(server, async ({ text, ok }) => {
        const file = plant(kubeconfigText(text));
        const env = { KUBECONFIG: file };
        if (ok) {
          expect(resolveTarget(profile, undefined, env).server).toBe(text.replace(/\/$/, ''));
          return;
        }
        refused++;
        expect(() => resolveTarget(profile, undefined, env)).toThrow(TargetRefusedError);
        if (text === '') {
          expectRefused(
            await run(['status', '--profile=local'], env),
            `kubeconfig ${file} is not a valid kubeconfig: clusters[0].cluster.server is missing`,
          );
          return;
        }
        expectRefused(
          await run(['status', '--profile=local'], env), // client-node drops a trailing slash.
          `the server ${JSON.stringify(text.replace(/\/$/, ''))} of cluster "counting" of kube context "sandstore-local" (in ${file}) `,
          'expected an https URL with a host and an optional port and path, e.g. "https://192.168.49.2:8443". Nothing was sent.',
        );
        // Where plain http is the only thing wrong, that is what is said.
        if (text.startsWith('http://') && serverProblem(text.replace('http://', 'https://')) === undefined) {
          expect((await run(['status', '--profile=local'], env)).stderr).toContain(
            'uses plain http, so the credentials of every request would travel unencrypted',
          );
        }
      }),
      { numRuns: 150 },
    );
    expect(refused).toBeGreaterThan(50);
  });

  /** A well-formed kubeconfig whose context is wrong in one or more of the ways the runner checks. */
  const contextShape = fc.record({
    user: fc.constantFrom('defined', 'undefined', 'none'),
    cluster: fc.constantFrom('defined', 'undefined'),
    proxy: fc.boolean(),
    caFile: fc.constantFrom('none', 'present', 'missing'),
    certFile: fc.constantFrom('none', 'present', 'missing'),
  });

  test('a context without a usable cluster, user or credential file, or behind a proxy, is refused naming what', async () => {
    const present = CLIENT_CERT;
    await fc.assert(
      fc.asyncProperty(contextShape, async (shape) => {
        const fileFor = (kind: string) => (kind === 'present' ? present : join(dir, 'no-such-file.pem'));
        const text = [
          'clusters:',
          `- name: c`,
          `  cluster:`,
          `    server: https://127.0.0.1:${serverPort()}`,
          ...(shape.proxy ? ['    proxy-url: http://proxy.example:3128'] : []),
          ...(shape.caFile !== 'none' ? [`    certificate-authority: ${fileFor(shape.caFile)}`] : []),
          'users:',
          '- name: u',
          '  user:',
          '    token: t',
          ...(shape.certFile !== 'none'
            ? [`    client-certificate: ${fileFor(shape.certFile)}`, `    client-key: ${CLIENT_KEY}`]
            : []),
          'contexts:',
          '- name: sandstore-local',
          '  context:',
          `    cluster: ${shape.cluster === 'defined' ? 'c' : 'gone'}`,
          ...(shape.user === 'none' ? [] : [`    user: ${shape.user === 'defined' ? 'u' : 'nobody'}`]),
          '',
        ].join('\n');
        const file = plant(text);
        const problems = [
          shape.cluster === 'undefined' && 'names cluster "gone", which the kubeconfig does not define',
          shape.proxy && 'goes through the proxy http://proxy.example:3128, which the runner does not support',
          shape.user === 'none' && 'names no user',
          shape.user === 'undefined' && 'names user "nobody", which the kubeconfig does not define',
          shape.caFile === 'missing' && 'the certificate-authority of cluster "c"',
          shape.certFile === 'missing' && 'the client-certificate of user "u"',
        ].filter((p): p is string => typeof p === 'string');
        if (problems.length === 0) {
          expect(resolveTarget(profile, undefined, { KUBECONFIG: file }).context).toBe('sandstore-local');
          return;
        }
        const o = await run(['status', '--profile=local'], { KUBECONFIG: file });
        expectRefused(o, 'kube context "sandstore-local"', file);
        // The first problem in the order the runner checks is the one named.
        expect(o.stderr).toContain(problems[0]);
      }),
      { numRuns: 120 },
    );
  });

  /** Kubeconfig texts that are not one: arbitrary YAML/JSON values, and valid ones with a line cut or garbled. */
  const malformed = fc.oneof(
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
    fc
      .jsonValue({ maxDepth: 2 })
      .map((v) => `clusters: ${JSON.stringify(v)}\nusers: ${JSON.stringify(v)}\ncontexts: ${JSON.stringify(v)}\n`),
    fc.tuple(fc.nat(), fc.constantFrom(':', '- ', '[', '{', '\t', '"', '&a', '*a', '!!int ', '')).map(([at, junk]) => {
      const lines = kubeconfigText(`https://127.0.0.1:${serverPort()}`).split('\n');
      const i = at % lines.length;
      lines[i] = junk === '' ? '' : `${junk}${lines[i]}`;
      return lines.join('\n');
    }),
    fc.constantFrom(
      '',
      '   \n',
      '---\n---\n',
      'clusters:\n- null\n',
      'clusters:\n- name: c\n  cluster: { server: 6443 }\n',
      'apiVersion: v1\nkind: Config\n',
    ),
  );

  test('a malformed kubeconfig is refused naming the file, or, if still valid, works: never an internal error', async () => {
    await fc.assert(
      fc.asyncProperty(malformed, async (text) => {
        const file = plant(text);
        let valid = true;
        try {
          resolveTarget(profile, undefined, { KUBECONFIG: file });
        } catch (err) {
          expect(err).toBeInstanceOf(TargetRefusedError);
          valid = false;
        }
        fc.pre(!valid);
        expectRefused(await run(['status', '--profile=local'], { KUBECONFIG: file }), 'Nothing was sent.');
      }),
      { numRuns: 150 },
    );
  });

  test('a document that is no mapping, or whose clusters, users or contexts are no list, is "not a valid kubeconfig", naming the file', async () => {
    const notAList = fc.oneof(
      fc.integer(),
      fc.string({ maxLength: 5 }),
      fc.boolean(),
      fc.dictionary(fc.constantFrom('a', 'name'), fc.integer(), { minKeys: 1 }),
    );
    const doc = fc.oneof(
      fc
        .array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 })
        .map((v) => ({ text: JSON.stringify(v), said: 'the document is a list, not a mapping' })),
      fc
        .oneof(
          fc.integer(),
          fc
            .string({ minLength: 1, maxLength: 8 })
            .filter(
              (t) =>
                !/[:#\-[{&*!|>'"%@`?,\]}]/.test(t) &&
                t.trim() === t &&
                t.trim() !== '' &&
                !/^(true|false|null|~|yes|no|on|off|y|n|[-+.\d].*)$/i.test(t),
            ),
          fc.boolean(),
        )
        .map((v) => ({
          text: `${JSON.stringify(v)}\n`,
          said: v
            ? `the document is a ${typeof v}, not a mapping`
            : 'the document is empty (or null, false or 0), not a mapping',
        })),
      fc.tuple(fc.constantFrom('clusters', 'users', 'contexts'), notAList).map(([list, v]) => ({
        text: kubeconfigText(`https://127.0.0.1:${serverPort()}`).replace(
          new RegExp(`^${list}:\n(- .*\n(  .*\n)*)+`, 'm'),
          `${list}: ${JSON.stringify(v)}\n`,
        ),
        said: `${list} is a ${typeof v === 'object' ? 'mapping' : typeof v}, not a list`,
      })),
    );
    await fc.assert(
      fc.asyncProperty(doc, async ({ text, said }) => {
        const file = plant(text);
        expectRefused(
          await run(['status', '--profile=local'], { KUBECONFIG: file }),
          `kubeconfig ${file} is not a valid kubeconfig: ${said}`,
        );
      }),
      { numRuns: 60 },
    );
  });

  /** Credentials as a kubeconfig states them, each usable or malformed in one of the ways seen. */
  const credentials = fc.record({
    ca: fc.constantFrom('none', 'file', 'data', 'junk-data', 'junk-file', 'text-file'),
    cert: fc.constantFrom('none', 'file', 'data', 'junk-data', 'text-file'),
    key: fc.constantFrom('none', 'file', 'data', 'junk-data', 'other'),
    token: fc.constantFrom('none', 'ok', 'newline', 'cr', 'nul', 'tab-inside'),
    as: fc.constantFrom('none', 'ok', 'newline'),
  });

  test('malformed credentials (certificate, key, token) are refused before any request, naming the file, the user and the field', async () => {
    const base64 = (file: string) => readFileSync(file).toString('base64');
    const junk = Buffer.from('not a cert').toString('base64');
    const textFile = plant('sandstore-host\n');
    const tokens: Record<string, string> = {
      ok: 't0k3n.abc',
      newline: 'abc\ndef',
      cr: 'abc\r',
      nul: 'a\u0000b',
      'tab-inside': 'a\tb',
    };
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(credentials, async (c) => {
        const pem = (kind: string, field: string, file: string) =>
          (
            ({
              file: [`${field}: ${JSON.stringify(file)}`],
              data: [`${field}-data: ${base64(file)}`],
              'junk-data': [`${field}-data: ${junk}`],
              'junk-file': [`${field}: ${JSON.stringify(textFile)}`],
              'text-file': [`${field}: ${JSON.stringify(textFile)}`],
              other: [`${field}: ${JSON.stringify(OTHER_KEY)}`],
              none: [],
            }) as Record<string, string[]>
          )[kind];
        const user = [
          ...pem(c.cert, 'client-certificate', CLIENT_CERT),
          ...pem(c.key, 'client-key', CLIENT_KEY),
          ...(c.token === 'none' ? [] : [`token: ${JSON.stringify(tokens[c.token])}`]),
          ...(c.as === 'none' ? [] : [`as: ${JSON.stringify(c.as === 'ok' ? 'jane' : 'jane\nadmin')}`]),
        ];
        const text = [
          'clusters:',
          '- name: c',
          '  cluster:',
          `    server: https://127.0.0.1:${serverPort()}`,
          ...pem(c.ca, 'certificate-authority', CLIENT_CERT).map((l) => `    ${l}`),
          'users:',
          '- name: u',
          `  user: ${user.length === 0 ? '{}' : ''}`,
          ...user.map((l) => `    ${l}`),
          'contexts:',
          '- name: sandstore-local',
          '  context: { cluster: c, user: u }',
          '',
        ].join('\n');
        // The model: the first problem in the order the runner checks, as [field, words].
        const certProblem = ['junk-data', 'text-file'].includes(c.cert);
        const problems: [string, string][] = [
          ...(['junk-data', 'junk-file', 'text-file'].includes(c.ca)
            ? [
                [
                  c.ca === 'junk-data' ? 'certificate-authority-data' : `certificate-authority (${textFile})`,
                  'holds no PEM certificate',
                ] as [string, string],
              ]
            : []),
          ...(c.cert !== 'none' && c.key === 'none'
            ? [
                [
                  c.cert.includes('file') ? 'client-certificate (' : 'client-certificate-data',
                  'is given without a client-key',
                ] as [string, string],
              ]
            : []),
          ...(c.key !== 'none' && c.cert === 'none'
            ? [
                [
                  c.key === 'data' || c.key === 'junk-data' ? 'client-key-data' : 'client-key (',
                  'is given without a client-certificate',
                ] as [string, string],
              ]
            : []),
          ...(c.cert !== 'none' && c.key !== 'none' && certProblem
            ? [
                [
                  c.cert === 'junk-data' ? 'client-certificate-data' : 'client-certificate (',
                  'is not a PEM certificate',
                ] as [string, string],
              ]
            : []),
          ...(c.cert !== 'none' && c.key === 'junk-data'
            ? [['client-key-data', 'is not a PEM private key'] as [string, string]]
            : []),
          ...(c.cert !== 'none' && !certProblem && c.key === 'other'
            ? [[`client-key (${OTHER_KEY})`, 'does not belong to the client-certificate'] as [string, string]]
            : []),
          ...(['newline', 'cr', 'nul'].includes(c.token)
            ? [['token (or the contents of its token-file)', 'cannot be sent in an HTTP header'] as [string, string]]
            : []),
          ...(c.as === 'newline'
            ? [['as (the user to impersonate)', 'cannot be sent in an HTTP header'] as [string, string]]
            : []),
        ];
        const file = plant(text);
        if (problems.length === 0) {
          expect(resolveTarget(profile, undefined, { KUBECONFIG: file }).context).toBe('sandstore-local');
          return;
        }
        refused++;
        const [field, words] = problems[0];
        const o = await run(['status', '--profile=local'], { KUBECONFIG: file });
        expectRefused(o, `the ${field}`, words, `kube context "sandstore-local" (in ${file})`, 'Nothing was sent.');
        if (!field.startsWith('certificate-authority')) expect(o.stderr).toContain('of user "u"');
      }),
      { numRuns: 200 },
    );
    expect(refused).toBeGreaterThan(60);
  });

  test('KUBECONFIG naming no file, a missing file or a directory is refused naming it', async () => {
    const missing = join(dir, 'missing');
    const directory = join(dir, 'a-directory');
    mkdirSync(directory);
    for (const [value, said] of [
      [':', 'names no file'],
      [missing, `kubeconfig ${missing} (from KUBECONFIG) does not exist`],
      [directory, `kubeconfig ${directory} (from KUBECONFIG) is not a file`],
    ]) {
      expect(() => loadKubeConfig({ KUBECONFIG: value })).toThrow(said);
      expectRefused(await run(['status', '--profile=local'], { KUBECONFIG: value }), said);
    }
  });

  test('several files merge as with kubectl: the first to define a name wins, and messages name the file that defined it', async () => {
    const first = plant(kubeconfigText('http://127.0.0.1:1'));
    const second = plant(kubeconfigText(`https://127.0.0.1:${serverPort()}`));
    expectRefused(
      await run(['status', '--profile=local'], { KUBECONFIG: `${first}:${second}` }),
      `(in ${first})`,
      'uses plain http',
    );
    expect(resolveTarget(profile, undefined, { KUBECONFIG: `${second}:${first}` }).server).toBe(
      `https://127.0.0.1:${serverPort()}`,
    );
  });
});

const serverPort = () => server.port;

describe('as a process, the way a user runs it (a generated sample of each class)', () => {
  const sample = <T>(arb: fc.Arbitrary<T>): T => fc.sample(arb, 1)[0];
  const cases: [string, () => { argv: string[]; env?: NodeJS.ProcessEnv; said: string }][] = [
    [
      'empty value',
      () => {
        const o = sample(fc.constantFrom(...valueOptions));
        return { argv: [o.command, `${o.flag}=`], said: `${o.flag}` };
      },
    ],
    [
      'repeated option',
      () => {
        const o = sample(fc.constantFrom(...valueOptions));
        return {
          argv: [o.command, `${o.flag}=${GOOD_VALUE[o.flag]}`, `${o.flag}=${GOOD_VALUE[o.flag]}`],
          said: 'is given more than once',
        };
      },
    ],
    [
      'timer out of range',
      () => ({
        argv: [
          'deploy',
          '--profile=local',
          `--timeout=${sample(fc.oneof(fc.constantFrom('0.0001', '3024000'), fc.integer({ min: 86_401 }).map(String)))}`,
        ],
        said: 'from 1 to 86400',
      }),
    ],
    [
      'pod-ready-timeout out of range',
      () => ({
        argv: [
          'update',
          '--profile=local',
          `--pod-ready-timeout=${sample(fc.double({ min: 0, max: 0.99, noNaN: true }).map((n) => n.toFixed(3)))}`,
        ],
        said: 'from 1 to 86400',
      }),
    ],
    [
      'since out of range',
      () => ({
        argv: ['logs', '--profile=local', `--since=${sample(fc.constantFrom('0', '0s', '8761h', '10d'))}`],
        said: 'from 1s to 8760h',
      }),
    ],
    [
      'image reference',
      () => ({
        argv: [
          'update',
          '--profile=local',
          `--image=${sample(fc.constantFrom('busybox', 'UPPER/case:tag', 'localhost:5000/x', 'a/b:c d'))}`,
        ],
        said: 'expected an image reference with a tag',
      }),
    ],
    [
      'empty KUBE_CONTEXT',
      () => ({ argv: ['status', '--profile=local'], env: { KUBE_CONTEXT: '' }, said: 'KUBE_CONTEXT is set but empty' }),
    ],
    [
      'http server',
      () => ({
        argv: ['status', '--profile=local'],
        env: { KUBECONFIG: writeKubeconfig(kubeconfigText(`http://127.0.0.1:${server.port}`)) },
        said: 'uses plain http',
      }),
    ],
    [
      'server without a scheme',
      () => ({
        argv: ['destroy', '--profile=local'],
        env: { KUBECONFIG: writeKubeconfig(kubeconfigText(`127.0.0.1:${server.port}`)) },
        said: 'has no scheme',
      }),
    ],
    [
      'malformed kubeconfig',
      () => ({
        argv: ['deploy', '--profile=local'],
        env: { KUBECONFIG: writeKubeconfig('clusters: [\n') },
        said: 'is not valid YAML',
      }),
    ],
    [
      'kubeconfig that is a list',
      () => ({
        argv: ['status', '--profile=local'],
        env: { KUBECONFIG: writeKubeconfig('- a\n- b\n') },
        said: 'is not a valid kubeconfig: the document is a list, not a mapping',
      }),
    ],
    [
      'token with a line break',
      () => ({
        argv: ['deploy', '--profile=local'],
        env: {
          KUBECONFIG: writeKubeconfig(
            kubeconfigText(`https://127.0.0.1:${server.port}`).replace('token: t', 'token: "abc\\ndef"'),
          ),
        },
        said: 'the token (or the contents of its token-file) of user "u"',
      }),
    ],
    [
      'client certificate that is not one',
      () => {
        const hostname = writeKubeconfig('sandstore-host\n'); // a text file, as /etc/hostname
        return {
          argv: ['destroy', '--profile=local'],
          env: {
            KUBECONFIG: writeKubeconfig(
              kubeconfigText(`https://127.0.0.1:${server.port}`).replace(
                'token: t',
                `client-certificate: ${hostname}, client-key: ${CLIENT_KEY}`,
              ),
            ),
          },
          said: `the client-certificate (${hostname}) of user "u"`,
        };
      },
    ],
    [
      'server with surrounding whitespace',
      () => ({
        argv: ['status', '--profile=local'],
        env: { KUBECONFIG: writeKubeconfig(kubeconfigText(`https://127.0.0.1:${server.port} `)) },
        said: 'holds whitespace or a control character',
      }),
    ],
  ];

  test.each(cases)('%s: exit 2, one sentence, nothing sent', async (_name, make) => {
    const { argv, env, said } = make();
    const before = server.connections();
    const r = await runEntry('lib/runner/cli.ts', argv, { env: { KUBECONFIG: kubeconfig, ...env } });
    expect({ code: r.code, sent: server.connections() - before }).toEqual({ code: 2, sent: 0 });
    expect(r.stderr.split('\n')[0]).toMatch(/^error: \S/);
    expect(r.stderr).toContain(said);
    expect(r.stderr).not.toMatch(STACK_FRAME);
  });
});

test.each([
  ['status', '--profile=local'],
  ['status', '--context=sandstore-local'],
  ['destroy', '--profile=local'],
])(
  'the control: with everything valid the runner does send, so "nothing sent" above is a real observation (%s %s)',
  async (...argv) => {
    // Last in the file: status sends its lists in parallel, and the ones still connecting when the
    // first fails would count against whatever ran next.
    const o = await run(argv);
    expect(o.code).toBe(1);
    expect(o.sent).toBeGreaterThan(0);
    expect(o.stderr).toContain(`cannot reach the API server at https://127.0.0.1:${server.port}`);
  },
);
