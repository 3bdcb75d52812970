#!/usr/bin/env node
// Runs a TypeScript entry point (main.ts, the runner's CLI, the bench) without type-checking it:
// esbuild bundles it with its dependencies into ES modules under node_modules/.cache, which Node
// then imports. The bundle is reused while no source file has changed (size and mtime of every .ts
// file, and this script's own contents), so a synth costs little more than loading cdk8s,
// where ts-node's type-check of the large Kubernetes API import costs over a second per run.
// Type-checking happens in the tests and in CI (`npm run typecheck`).
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** Any failure of this script (a cache it cannot write, a bundle it cannot load) in one line, never a stack trace. */
function fail(err) {
  process.stderr.write(
    `error: ${process.argv[2] ?? 'run-ts'}: ${err?.message ?? String(err)}${process.env.SANDSTORE_DEBUG ? `\n${err?.stack ?? ''}` : ''}\n`,
  );
  process.exit(1);
}
process.on('uncaughtException', fail);

const [entry, ...args] = process.argv.slice(2);
if (!entry) {
  console.error('usage: node scripts/run-ts.mjs <entry.ts> [args...]');
  process.exit(2);
}
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const entryPath = resolve(root, entry);
if (!existsSync(entryPath)) {
  console.error(
    `error: no entry point ${entryPath}; expected a .ts file of the project such as main.ts or lib/runner/cli.ts`,
  );
  process.exit(2);
}
const cacheDir = join(root, 'node_modules', '.cache', 'sandstore-deploy');

/** Every .ts source the bundle may contain, with size and mtime: the cache key. */
function sourceFingerprint() {
  const hash = createHash('sha256');
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) {
        // A link to nothing (an old profile's) is a state of the sources too; loading it says what is wrong.
        const s = statSync(p, { throwIfNoEntry: false }) ?? lstatSync(p);
        hash.update(`${p}\0${s.size}\0${s.mtimeMs}\n`);
      }
    }
  };
  for (const dir of ['lib', 'profiles', 'imports', 'bench']) if (existsSync(join(root, dir))) walk(join(root, dir));
  for (const e of readdirSync(root)) if (e.endsWith('.ts')) hash.update(`${e}\0${statSync(join(root, e)).mtimeMs}\n`);
  hash.update(entryPath);
  // The recipe is part of the key: a change to this file (its build options) rebuilds too.
  hash.update(readFileSync(fileURLToPath(import.meta.url)));
  return hash.digest('hex').slice(0, 16);
}

/**
 * How long a bundle nobody started is kept beside a newer one: a command imports its lazy chunks
 * (cdk8s, yaml, diff) as it starts, well within this (see the clean-up below).
 */
const BUNDLE_KEPT_MS = 2 * 60 * 1000;

const name = basename(entryPath, '.ts');
const bundleDir = join(cacheDir, `${name}-${sourceFingerprint()}`);
const bundle = join(bundleDir, `${name}.mjs`);
if (!existsSync(bundle)) {
  const { build, formatMessages } = await import('esbuild');
  mkdirSync(cacheDir, { recursive: true });
  // Other builds of this entry point go once nobody has started them for a while: a process that
  // just started from one (another checkout sharing node_modules, a test's copy of the project)
  // may still be importing its lazy chunks, and removing them under it would fail that process.
  const unusedSince = Date.now() - BUNDLE_KEPT_MS;
  for (const old of readdirSync(cacheDir)) {
    if (old.startsWith(`${name}-`) && statSync(join(cacheDir, old)).mtimeMs < unusedSince)
      rmSync(join(cacheDir, old), { recursive: true, force: true });
  }
  const staging = `${bundleDir}.${process.pid}.tmp`;
  // A profile that does not compile must not stop work on the others: it is bundled as a module
  // that throws, naming the file and the compiler's words, when (and only when) it is loaded.
  const brokenProfiles = new Map();
  for (;;) {
    try {
      const result = await build({
        entryPoints: { [name]: entryPath },
        absWorkingDir: root,
        outdir: staging,
        outExtension: { '.js': '.mjs' },
        bundle: true,
        // Dependencies go into the bundle too: Node then reads a few files instead of resolving and
        // parsing hundreds of modules (client-node alone: 0.77 s as modules, 0.16 s bundled).
        // Splitting keeps a dynamic import() lazy: the runner loads cdk8s only when it must render.
        splitting: true,
        banner: {
          js: "import { createRequire as __sandstoreCreateRequire } from 'node:module'; const require = __sandstoreCreateRequire(import.meta.url);",
        },
        plugins: [sideEffectFree(['@kubernetes/client-node']), compileErrorModules(brokenProfiles)],
        // resvg-js loads a native .node binary by a computed path, which only Node itself can
        // resolve: it is imported from node_modules at run time (the bundle lives under it).
        external: ['@resvg/resvg-js'],
        platform: 'node',
        format: 'esm',
        target: 'node20',
        // Errors are reported below (a broken profile's are not errors of the bundle at all).
        logLevel: 'silent',
        sourcemap: 'external',
      });
      if (result.warnings.length > 0)
        process.stderr.write((await formatMessages(result.warnings, { kind: 'warning' })).join(''));
      break;
    } catch (failure) {
      const errors = failure.errors ?? [];
      const inProfiles = errors.filter((e) => e.location && isProfileFile(resolve(root, e.location.file)));
      const newlyBroken = inProfiles.filter((e) => !brokenProfiles.has(resolve(root, e.location.file)));
      if (errors.length === 0 || newlyBroken.length === 0 || inProfiles.length < errors.length) {
        // A source of the project itself does not compile: a bug, said once, without a stack trace.
        rmSync(staging, { recursive: true, force: true });
        const text =
          errors.length > 0 ? (await formatMessages(errors, { kind: 'error' })).join('') : `${failure.message}\n`;
        process.stderr.write(`error: ${entry} cannot be bundled (the project's own sources do not compile):\n${text}`);
        process.exit(1);
      }
      for (const e of newlyBroken) {
        const file = resolve(root, e.location.file);
        const problems = inProfiles
          .filter((x) => resolve(root, x.location.file) === file)
          .map(
            (x) =>
              `line ${x.location.line}:${x.location.column + 1}: ${x.text}${x.location.lineText ? ` (\`${x.location.lineText.trim()}\`)` : ''}`,
          );
        brokenProfiles.set(file, problems.join('; '));
      }
      rmSync(staging, { recursive: true, force: true });
    }
  }
  renameSync(staging, bundleDir); // atomic: a concurrent run never imports a half-written bundle
} else {
  // Marks the bundle as in use, so that a build for another state of the sources keeps it a while.
  try {
    const now = new Date();
    utimesSync(bundleDir, now, now);
  } catch {
    // A read-only cache only loses this mark.
  }
}

/**
 * A source file under profiles/ (a profile, or a helper in a subfolder that profiles import): the
 * only files whose compile errors are contained, so that one broken profile stops only the profiles
 * that import what is broken.
 */
function isProfileFile(file) {
  return file.startsWith(join(root, 'profiles') + sep) && file.endsWith('.ts');
}

/**
 * Bundles each profile file in `broken` (path -> the compiler's words) as a module that throws an
 * error lib/profiles.ts recognizes, so that loading that profile (or one that imports it) says what
 * is wrong with which file, and every other profile loads as usual.
 */
function compileErrorModules(broken) {
  /** The module's text: it throws the compile error; as CommonJS, it exports whatever an importer asks for. */
  const stub = (path, commonJs) => {
    const file = relative(root, path).split(sep).join('/');
    const problem = broken.get(path);
    return (
      `const error = new Error(${JSON.stringify(`${file} does not compile: ${problem}`)});\n` +
      `error.profileCompileError = ${JSON.stringify({ file, problem })};\nthrow error;\n${commonJs ? 'module.exports = {};' : 'export default undefined;'}\n`
    );
  };
  return {
    name: 'compile-error-modules',
    setup(b) {
      const profilesDir = join(root, 'profiles');
      const filter = new RegExp(`^${profilesDir.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}[\\\\/].+\\.ts$`);
      // A profile loaded by name (lib/profiles.ts imports them by pattern, which esbuild does not
      // resolve through plugins).
      b.onLoad({ filter, namespace: 'file' }, (args) =>
        broken.has(args.path) ? { contents: stub(args.path, false), loader: 'js' } : undefined,
      );
      // A broken file imported by another file under profiles/ (a helper in a subfolder): bundled as
      // CommonJS, outside the file namespace (where package.json's "type" would make it an ES module),
      // so that the importer's names still link and it fails only when loaded, with the compile error.
      b.onResolve({ filter: /^\.\.?\// }, async (args) => {
        if (broken.size === 0 || !isProfileFile(args.importer) || args.pluginData === 'resolving') return undefined;
        const resolved = await b.resolve(args.path, {
          kind: args.kind,
          resolveDir: args.resolveDir,
          importer: args.importer,
          pluginData: 'resolving',
        });
        return broken.has(resolved.path) ? { path: resolved.path, namespace: 'compile-error' } : undefined;
      });
      b.onLoad({ filter: /.*/, namespace: 'compile-error' }, (args) => ({
        contents: stub(args.path, true),
        loader: 'js',
      }));
    },
  };
}

/**
 * Lets esbuild drop the modules of `packages` that nothing imports. client-node's index re-exports
 * its ~700 generated API modules, and its package.json does not declare them free of side effects
 * (they are: classes and enums), so without this the bundle would evaluate all of them.
 */
function sideEffectFree(packages) {
  const escaped = packages.map((p) => p.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'));
  const bare = new RegExp(`^(${escaped.join('|')})(/|$)`);
  const inside = (file) => packages.some((name) => file.includes(`/node_modules/${name}/`));
  return {
    name: 'side-effect-free',
    setup(build) {
      build.onResolve({ filter: bare }, async (args) => {
        if (args.pluginData === 'resolving') return undefined;
        const resolved = await build.resolve(args.path, {
          kind: args.kind,
          resolveDir: args.resolveDir,
          pluginData: 'resolving',
        });
        return resolved.errors.length > 0 ? undefined : { path: resolved.path, sideEffects: false };
      });
      // The packages' own relative imports (ES modules, written with their file extension).
      // Resolved here rather than through build.resolve: a call back into esbuild per import
      // would cost seconds per build.
      build.onResolve({ filter: /^\.\.?\// }, (args) => {
        if (!inside(args.importer)) return undefined;
        const file = resolve(args.resolveDir, args.path);
        return existsSync(file) && statSync(file).isFile() ? { path: file, sideEffects: false } : undefined;
      });
    },
  };
}

process.argv = [process.argv[0], entryPath, ...args];
// From here on the entry point says what fails, with its own exit codes.
process.off('uncaughtException', fail);
try {
  await import(pathToFileURL(bundle).href);
} catch (err) {
  fail(err);
}
