import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { profilesDir } from './paths.js';
import { parseProfile, type Profile } from './profile.js';
import { RefusedError } from './errors.js';

/** Names of the profiles there are: one per profiles/<name>.ts file, sorted. */
export function listProfiles(dir = profilesDir()): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && !f.endsWith('.test.ts'))
    .map((f) => f.slice(0, -'.ts'.length))
    .sort();
}

/** No profiles/<name>.ts (a refusal, exit code 2). */
export class UnknownProfileError extends RefusedError {
  public constructor(public readonly requested: string, public readonly available: readonly string[]) {
    super(`unknown profile "${requested}"; the profiles there are: ${available.join(', ')} (one per file in profiles/)`);
  }
}

/** Loads and validates profiles/<name>.ts; throws UnknownProfileError or ProfileError. */
export async function loadProfile(name: string, dir = profilesDir()): Promise<Profile> {
  const available = listProfiles(dir);
  if (!available.includes(name)) throw new UnknownProfileError(name, available);
  const module = (await importProfile(name, dir)) as { default?: unknown };
  return parseProfile(name, module.default);
}

/**
 * From the project's own profiles/ the import is written relatively, with the name as the only
 * variable part, so that the bundler that runs the entry points (scripts/run-ts.mjs) includes every
 * profile file; another directory (tests' fixtures) is imported by URL.
 */
async function importProfile(name: string, dir: string): Promise<unknown> {
  if (dir === profilesDir()) return import(`../profiles/${name}.ts`);
  return import(pathToFileURL(join(dir, `${name}.ts`)).href);
}
