import { transformSync } from 'esbuild';
import fc from 'fast-check';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProfileError } from '../lib/profile.js';
import { loadProfile, ProfileLoadError } from '../lib/profiles.js';
import {
  countingServer,
  kubeconfigText,
  projectCopy,
  removeTemporaries,
  root,
  runEntry,
  STACK_FRAME,
  writeKubeconfig,
} from './cli-harness.js';

/**
 * A profile file that cannot be loaded is refused (exit code 2) naming the file and what is wrong,
 * and does not stop work on the others: generated default exports that are no profile, generated
 * errors thrown at load, and generated syntax errors (which the bundler meets, in a project copy).
 */

/** A profile's source as the shipped `local` one, under another name (defineProfile is the identity). */
const validSource = (name: string) =>
  readFileSync(join(root, 'profiles', 'local.ts'), 'utf8')
    .replace(/^import .*\n/m, '')
    .replace('export default defineProfile(', 'export default (')
    .replace("name: 'local'", `name: '${name}'`);

describe('profile files loaded in-process', () => {
  let dir: string;
  let serial = 0;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'profiles-'));
    // ES modules, as in the project (ts-jest reads the nearest package.json).
    writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  /** A new file each time: an ES module is evaluated once per path. */
  const plant = (source: (name: string) => string) => {
    const name = `generated-${serial++}`;
    writeFileSync(join(dir, `${name}.ts`), source(name));
    return name;
  };

  /** What a default export can be instead of a profile object, with what the refusal says about it. */
  const notAProfile = fc.oneof(
    fc
      .constantFrom('other', 'settings', 'profile')
      .map((n) => [`export const ${n} = {};`, `has no default export (it exports ${n})`] as const),
    fc.constant(['export {};', 'has no default export;'] as const),
    fc.integer().map((n) => [`export default ${n};`, 'exports a number by default'] as const),
    fc
      .string({ maxLength: 20 })
      .map((s) => [`export default ${JSON.stringify(s)};`, 'exports a string by default'] as const),
    fc.constant(['export default null;', 'exports null by default'] as const),
    fc
      .array(fc.integer(), { maxLength: 3 })
      .map((a) => [`export default ${JSON.stringify(a)};`, 'exports an array by default'] as const),
    fc.constant(['export default () => ({});', 'exports a function by default'] as const),
  );

  test('a default export that is no profile object is named with what it is', async () => {
    await fc.assert(
      fc.asyncProperty(notAProfile, async ([source, said]) => {
        const name = plant(() => source);
        const err = await loadProfile(name, dir).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ProfileLoadError);
        expect((err as ProfileLoadError).exitCode).toBe(2);
        expect((err as Error).message).toContain(`profile "${name}" cannot be loaded: profiles/${name}.ts ${said}`);
        expect((err as Error).message).toContain('expected `export default defineProfile({...})`');
      }),
      { numRuns: 40 },
    );
  });

  test('an error thrown while the file is evaluated is named with its message', async () => {
    const thrown = fc.oneof(
      fc
        .string({ minLength: 1, maxLength: 30 })
        .map((m) => [`throw new Error(${JSON.stringify(m)});`, `threw when loaded: ${m}`] as const),
      fc
        .string({ minLength: 1, maxLength: 30 })
        .map((m) => [`throw new RangeError(${JSON.stringify(m)});`, `threw when loaded: RangeError: ${m}`] as const),
      fc
        .string({ minLength: 1, maxLength: 30 })
        .map((m) => [`throw ${JSON.stringify(m)};`, `threw when loaded: ${m}`] as const),
      fc.constant([
        'const s: any = undefined;\nexport default { name: s.name };',
        'threw when loaded: TypeError: Cannot read properties of undefined',
      ] as const),
    );
    await fc.assert(
      fc.asyncProperty(thrown, async ([source, said]) => {
        const name = plant(() => `${source}\nexport const unreachable = 1;\n`);
        const err = await loadProfile(name, dir).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ProfileLoadError);
        expect((err as Error).message).toContain(`profiles/${name}.ts ${said}`);
      }),
      { numRuns: 30 },
    );
  });

  test('values the schema cannot even describe (a BigInt, a cycle) are a refusal, not a crash', async () => {
    const odd = fc.constantFrom(
      ['raft: { replicas: 3n }', 'raft: { replicas: 3 }'],
      ['clientAccess: { nodePortBase: 30280n }', 'clientAccess: { nodePortBase: 30280 }'],
      [
        'nodeSelection: (() => { const o: any = { nodeSelector: {} }; o.nodeSelector.self = o; return o; })()',
        "nodeSelection: {\n    nodeSelector: { 'node.sandstore.io/disk': 'ssd' },\n    ssdTaint: { key: 'node.sandstore.io/disk', value: 'ssd' },\n  }",
      ],
    );
    await fc.assert(
      fc.asyncProperty(odd, async ([replacement, original]) => {
        const name = plant((n) => validSource(n).replace(original, replacement));
        const err = await loadProfile(name, dir).catch((e: unknown) => e);
        // Either the schema names the field, or the loader says it cannot read the value: a refusal either way.
        expect(err instanceof ProfileLoadError || err instanceof ProfileError).toBe(true);
        expect((err as ProfileLoadError).exitCode).toBe(2);
        expect((err as Error).message).toContain(`profile "${name}"`);
      }),
      { numRuns: 6 },
    );
  });

  test('a valid profile file outside profiles/ still loads (the control)', async () => {
    const name = plant(validSource);
    expect((await loadProfile(name, dir)).name).toBe(name);
  });
});

/** Text inserted into a valid profile that esbuild cannot parse, and where it reports the error. */
const TOKENS = [',,', ')', '{', '@', '}}', '=>', '"', '`', 'const', ';;{'];
function corruption(source: string) {
  return fc
    .record({ at: fc.nat({ max: source.length - 1 }), token: fc.constantFrom(...TOKENS) })
    .map(({ at, token }) => {
      const text = `${source.slice(0, at)}${token}${source.slice(at)}`;
      try {
        transformSync(text, { loader: 'ts' });
        return undefined;
      } catch (err) {
        const e = (err as { errors: { text: string; location: { line: number; column: number } }[] }).errors[0];
        return { text, error: `line ${e.location.line}:${e.location.column + 1}: ${e.text}` };
      }
    })
    .filter((c): c is { text: string; error: string } => c !== undefined);
}

describe('profile files that do not compile (the bundler, in a project copy)', () => {
  test("each is named with the compiler's words; every other profile synthesizes and runs; nothing is sent", async () => {
    const work = projectCopy();
    const server = await countingServer();
    try {
      const source = readFileSync(join(work, 'profiles', 'local.ts'), 'utf8');
      const broken = fc.sample(fc.array(corruption(source), { minLength: 2, maxLength: 2 }), 1)[0];
      broken.forEach((b, i) => writeFileSync(join(work, 'profiles', `broken-${i}.ts`), b.text));
      const kubeconfig = writeKubeconfig(kubeconfigText(`https://127.0.0.1:${server.port}`));
      const env = { KUBECONFIG: kubeconfig };

      for (const [i, b] of broken.entries()) {
        const synth = await runEntry('main.ts', [`--profile=broken-${i}`], { cwd: work });
        expect(synth.code).toBe(2);
        expect(synth.stderr).toContain(
          `profile "broken-${i}" cannot be loaded: profiles/broken-${i}.ts does not compile: ${b.error}`,
        );
        expect(synth.stderr).not.toMatch(STACK_FRAME);
        const status = await runEntry('lib/runner/cli.ts', ['status', `--profile=broken-${i}`], { cwd: work, env });
        expect(status.code).toBe(2);
        expect(status.stderr).toContain(
          `error: profile "broken-${i}" cannot be loaded: profiles/broken-${i}.ts does not compile: ${b.error}`,
        );
      }
      const good = await runEntry('main.ts', ['--profile=local', '--check'], { cwd: work });
      expect(good.code).toBe(0);
      // The runner on a good profile gets past loading it: the refusal is about the context, not a profile.
      const runner = await runEntry('lib/runner/cli.ts', ['status', '--profile=local', '--context=nowhere'], {
        cwd: work,
        env,
      });
      expect(runner.code).toBe(2);
      expect(runner.stderr).toContain('kube context "nowhere" (from flag --context) is not in the kubeconfig');
      expect(server.connections()).toBe(0);
    } finally {
      await server.close();
      removeTemporaries();
      rmSync(work, { recursive: true, force: true });
    }
  });
});

describe('files in profiles/ that break only themselves (the bundler, in a project copy)', () => {
  /** Top-level code that waits for something that never happens, in a few shapes. */
  const NEVER = [
    'await new Promise(() => {});',
    'await new Promise<void>((resolve) => { if (Date.now() < 0) resolve(); });',
    'for await (const _ of (async function* () { await new Promise(() => {}); })()) { void _; }',
  ];

  test('a link to nothing, a broken helper in a subfolder, a module that never finishes loading: each named, the others work, nothing sent', async () => {
    const work = projectCopy();
    const server = await countingServer();
    try {
      const source = readFileSync(join(work, 'profiles', 'local.ts'), 'utf8');
      // A helper in a subfolder that does not compile, imported by one profile only.
      const helper = fc.sample(corruption("export const replicas = 3;\nexport const shared = { tag: 'x' };\n"), 1)[0];
      mkdirSync(join(work, 'profiles', 'shared'));
      writeFileSync(join(work, 'profiles', 'shared', 'base.ts'), helper.text);
      writeFileSync(
        join(work, 'profiles', 'uses-helper.ts'),
        `import { replicas } from './shared/base.js';\n${source.replace("name: 'local'", "name: 'uses-helper'").replace('replicas: 3', 'replicas')}`,
      );
      symlinkSync(join(work, 'no-such-profile.ts'), join(work, 'profiles', 'old.ts'));
      const never = fc.sample(fc.constantFrom(...NEVER), 1)[0];
      writeFileSync(
        join(work, 'profiles', 'hangs.ts'),
        `${never}\n${source.replace("name: 'local'", "name: 'hangs'")}`,
      );
      const env = { KUBECONFIG: writeKubeconfig(kubeconfigText(`https://127.0.0.1:${server.port}`)) };

      const expected: [string, string][] = [
        [
          'old',
          `profile "old" cannot be loaded: profiles/old.ts is a link to ${join(work, 'no-such-profile.ts')}, which does not exist`,
        ],
        [
          'uses-helper',
          `profile "uses-helper" cannot be loaded: profiles/uses-helper.ts imports profiles/shared/base.ts, which does not compile: ${helper.error}`,
        ],
        [
          'hangs',
          'profile "hangs" cannot be loaded: profiles/hangs.ts did not finish loading: its top-level code waits for something that never happens',
        ],
      ];
      for (const [name, said] of expected) {
        const synth = await runEntry('main.ts', [`--profile=${name}`], { cwd: work });
        expect({ code: synth.code, said: synth.stderr.includes(said) }).toEqual({ code: 2, said: true });
        expect(synth.stderr).not.toMatch(STACK_FRAME);
        expect(synth.stderr).not.toContain('WARNING');
        const status = await runEntry('lib/runner/cli.ts', ['status', `--profile=${name}`], { cwd: work, env });
        expect({ code: status.code, said: status.stderr.includes(`error: ${said}`) }).toEqual({ code: 2, said: true });
      }
      const good = await runEntry('main.ts', ['--profile=local', '--check'], { cwd: work });
      expect({ code: good.code, stderr: good.stderr }).toEqual({ code: 0, stderr: '' });
      const runner = await runEntry('lib/runner/cli.ts', ['status', '--profile=local', '--context=nowhere'], {
        cwd: work,
        env,
      });
      expect(runner.code).toBe(2);
      expect(runner.stderr).toContain('kube context "nowhere" (from flag --context) is not in the kubeconfig');
      // A synth of every profile refuses as a whole, naming each broken one.
      const all = await runEntry('main.ts', [], { cwd: work });
      expect(all.code).toBe(2);
      for (const [, said] of expected) expect(all.stderr).toContain(said);
      expect(server.connections()).toBe(0);
    } finally {
      await server.close();
      removeTemporaries();
      rmSync(work, { recursive: true, force: true });
    }
  });
});
