import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { projectRoot } from './paths.js';
import type { Profile } from './profile.js';

/**
 * Remembers which synthesized output a given set of inputs produces, so that the runner can tell
 * that dist/<profile>/ is fresh without loading cdk8s and rendering the chart again (that costs
 * ~0.3 s of every command's start-up; reading and hashing the sources costs a few milliseconds).
 *
 * The inputs are everything a render depends on: the validated profile, the project's TypeScript
 * under lib/ and imports/, and the locked dependency versions (package-lock.json). A record maps
 * their digest to the digest of the files the render produced. A miss (any input changed, or never
 * rendered on this machine) is not an answer: the caller renders and compares, then records.
 * Records live in the project's own cache directory, never in dist/.
 */

/** Digest of every input of `renderProfile(profile)`. */
export function inputDigest(profile: Profile, root = projectRoot()): string {
  const hash = createHash('sha256');
  const files: string[] = [];
  const walk = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) files.push(p);
    }
  };
  walk(join(root, 'lib'));
  walk(join(root, 'imports'));
  files.push(join(root, 'package-lock.json'));
  for (const f of files.sort()) {
    hash.update(`${relative(root, f)}\0`);
    if (existsSync(f)) hash.update(readFileSync(f));
    hash.update('\0');
  }
  hash.update(JSON.stringify(profile));
  return hash.digest('hex');
}

/** Digest of a profile's output: every file's name and contents, in name order. */
export function outputDigest(files: ReadonlyMap<string, string>): string {
  const hash = createHash('sha256');
  for (const [name, text] of [...files].sort(([a], [b]) => a.localeCompare(b))) hash.update(`${name}\0${text}\0`);
  return hash.digest('hex');
}

/** The YAML files of dist/<profile>/ as they are on disk (empty when the directory is missing). */
export function filesOnDisk(outDir: string, profileName: string): Map<string, string> {
  const dir = join(outDir, profileName);
  if (!existsSync(dir)) return new Map();
  return new Map(
    readdirSync(dir)
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => [f, readFileSync(join(dir, f), 'utf8')]),
  );
}

const cacheDir = (root: string) => join(root, 'node_modules', '.cache', 'sandstore-deploy');
const recordsFile = (root: string, profileName: string) => join(cacheDir(root), 'freshness', `${profileName}.json`);
/** Records kept per profile: enough for switching between a few branches. */
const RECORDS_KEPT = 16;

function readRecords(root: string, profileName: string): [string, string][] {
  try {
    const parsed = JSON.parse(readFileSync(recordsFile(root, profileName), 'utf8')) as unknown;
    return Array.isArray(parsed)
      ? (parsed.filter((r) => Array.isArray(r) && r.length === 2) as [string, string][])
      : [];
  } catch {
    return []; // no record yet, or a damaged one: a miss
  }
}

/** True when the inputs are known to produce exactly the files whose digest is `onDisk`. */
export function knownFresh(profile: Profile, onDisk: string, root = projectRoot()): boolean {
  const input = inputDigest(profile, root);
  return readRecords(root, profile.name).some(([i, o]) => i === input && o === onDisk);
}

const parsedFile = (root: string, digest: string) => join(cacheDir(root), 'parsed', `${digest}.json`);

/**
 * The objects of the files whose digest is `digest`, if they were parsed on this machine before:
 * the YAML parser costs ~50 ms for one profile's files, JSON.parse well under one.
 */
export function parsedBefore<T>(digest: string, root = projectRoot()): T[] | undefined {
  try {
    const parsed = JSON.parse(readFileSync(parsedFile(root, digest), 'utf8')) as unknown;
    return Array.isArray(parsed) ? (parsed as T[]) : undefined;
  } catch {
    return undefined; // never parsed here, or a damaged entry
  }
}

/** Keeps the objects parsed from the files whose digest is `digest`, for parsedBefore. */
export function keepParsed(digest: string, objects: readonly unknown[], root = projectRoot()): void {
  writeAtomically(parsedFile(root, digest), JSON.stringify(objects));
}

/** Best effort: a cache that cannot be written is only a miss next time (read-only checkout, full disk). */
function writeAtomically(file: string, text: string): void {
  try {
    mkdirSync(join(file, '..'), { recursive: true });
    const staging = `${file}.${process.pid}.tmp`;
    writeFileSync(staging, text);
    renameSync(staging, file); // atomic: concurrent runners never read half an entry
  } catch {
    // see above
  }
}

/** Records that the current inputs render `files`. */
export function recordRender(profile: Profile, files: ReadonlyMap<string, string>, root = projectRoot()): void {
  const input = inputDigest(profile, root);
  const records = [
    [input, outputDigest(files)] as [string, string],
    ...readRecords(root, profile.name).filter(([i]) => i !== input),
  ].slice(0, RECORDS_KEPT);
  writeAtomically(recordsFile(root, profile.name), `${JSON.stringify(records)}\n`);
}
