#!/usr/bin/env node
// Runs a TypeScript entry point (main.ts, the runner's CLI, the bench) without type-checking it:
// esbuild bundles the project's own sources (node_modules stay external) into one ES module under
// node_modules/.cache, which Node then imports. The bundle is reused while no source file has
// changed (size and mtime of every .ts file), so a synth costs little more than loading cdk8s,
// where ts-node's type-check of the large Kubernetes API import costs over a second per run.
// Type-checking happens in the tests and in CI (`npm run typecheck`).
import { mkdirSync, readdirSync, rmSync, statSync, existsSync, renameSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const [entry, ...args] = process.argv.slice(2);
if (!entry) {
  console.error('usage: node scripts/run-ts.mjs <entry.ts> [args...]');
  process.exit(2);
}
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const entryPath = resolve(root, entry);
const cacheDir = join(root, 'node_modules', '.cache', 'sandstore-deploy');

/** Every .ts source the bundle may contain, with size and mtime: the cache key. */
function sourceFingerprint() {
  const hash = createHash('sha256');
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) {
        const s = statSync(p);
        hash.update(`${p}\0${s.size}\0${s.mtimeMs}\n`);
      }
    }
  };
  for (const dir of ['lib', 'profiles', 'imports', 'bench']) if (existsSync(join(root, dir))) walk(join(root, dir));
  for (const e of readdirSync(root)) if (e.endsWith('.ts')) hash.update(`${e}\0${statSync(join(root, e)).mtimeMs}\n`);
  hash.update(entryPath);
  return hash.digest('hex').slice(0, 16);
}

const name = basename(entryPath, '.ts');
const bundle = join(cacheDir, `${name}-${sourceFingerprint()}.mjs`);
if (!existsSync(bundle)) {
  const { build } = await import('esbuild');
  mkdirSync(cacheDir, { recursive: true });
  for (const old of readdirSync(cacheDir)) if (old.startsWith(`${name}-`)) rmSync(join(cacheDir, old), { force: true });
  const staging = `${bundle}.${process.pid}.tmp`;
  await build({
    entryPoints: [entryPath],
    outfile: staging,
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'warning',
    sourcemap: 'inline',
  });
  renameSync(staging, bundle); // atomic: a concurrent run never imports a half-written bundle
}
process.argv = [process.argv[0], entryPath, ...args];
await import(pathToFileURL(bundle).href);
