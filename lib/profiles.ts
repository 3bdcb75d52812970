import { accessSync, constants, lstatSync, readdirSync, readlinkSync } from 'node:fs';
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
  public constructor(
    public readonly requested: string,
    public readonly available: readonly string[],
  ) {
    super(
      `unknown profile "${requested}"; the profiles there are: ${available.join(', ')} (one ` +
        `per file in profiles/)`,
    );
  }
}

/**
 * A profile file that cannot be loaded (a refusal, exit code 2): it does not compile, it throws when
 * evaluated, or it exports no profile. Names the file and what is wrong with it.
 */
export class ProfileLoadError extends RefusedError {
  public constructor(
    public readonly profileName: string,
    problem: string,
  ) {
    super(`profile "${profileName}" cannot be loaded: profiles/${profileName}.ts ${problem}`);
  }
}

/** What a profile file must export, for messages. */
const EXPECTED_EXPORT = 'expected `export default defineProfile({...})`';

/**
 * Loads and validates profiles/<name>.ts; throws UnknownProfileError, ProfileLoadError or
 * ProfileError. Only this profile's file is evaluated: another profile's being broken does not
 * matter here (see scripts/run-ts.mjs, which bundles a profile that does not compile as a module
 * that throws, rather than failing every command).
 */
export async function loadProfile(name: string, dir = profilesDir()): Promise<Profile> {
  const available = listProfiles(dir);
  if (!available.includes(name)) throw new UnknownProfileError(name, available);
  const unreadable = unreadableProblem(join(dir, `${name}.ts`));
  if (unreadable !== undefined) throw new ProfileLoadError(name, unreadable);
  let module: { default?: unknown };
  try {
    module = (await importSettled(name, dir)) as { default?: unknown };
  } catch (err) {
    throw new ProfileLoadError(name, describeLoadFailure(name, err));
  }
  if (module.default === undefined) {
    const named = Object.keys(module).filter((k) => k !== 'default');
    throw new ProfileLoadError(
      name,
      `has no default export${named.length > 0 ? ` (it exports ${named.join(', ')})` : ''}; ` + `${EXPECTED_EXPORT}`,
    );
  }
  if (typeof module.default !== 'object' || module.default === null || Array.isArray(module.default)) {
    const what =
      module.default === null ? 'null' : Array.isArray(module.default) ? 'an array' : `a ${typeof module.default}`;
    throw new ProfileLoadError(name, `exports ${what} by default; ${EXPECTED_EXPORT}`);
  }
  try {
    return parseProfile(name, module.default);
  } catch (err) {
    if (err instanceof RefusedError) throw err;
    // The schema's reporting itself failed on an odd value (a BigInt, a cycle, a throwing getter).
    throw new ProfileLoadError(
      name,
      `exports a value the profile schema cannot read: ${(err as Error).message}; ` +
        `${EXPECTED_EXPORT} with plain strings, numbers, booleans, arrays and objects`,
    );
  }
}

/** What keeps a profile file from being read (a link to nothing, say), or undefined. */
function unreadableProblem(file: string): string | undefined {
  try {
    accessSync(file, constants.R_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    const link = lstatSync(file, { throwIfNoEntry: false })?.isSymbolicLink() ? readlinkSync(file) : undefined;
    return link !== undefined && code === 'ENOENT'
      ? `is a link to ${link}, which does not exist; remove the link or point it at a profile file`
      : `cannot be read (${code}); fix its permissions or remove it`;
  }
}

/** A profile's module whose top-level code never settled: nothing was left to run while it was awaited. */
class NeverSettledError extends Error {}

/**
 * Imports a profile's module, or fails with NeverSettledError if its top-level code waits for
 * something that never happens (`await new Promise(() => {})`): Node would otherwise end the
 * process, silently, with exit code 13, once nothing is left to run ('beforeExit').
 */
async function importSettled(name: string, dir: string): Promise<unknown> {
  let onIdle = () => {};
  const idle = new Promise<never>((_, reject) => {
    onIdle = () => reject(new NeverSettledError());
    process.once('beforeExit', onIdle);
  });
  try {
    return await Promise.race([importProfile(name, dir), idle]);
  } finally {
    process.off('beforeExit', onIdle);
  }
}

/** Why importing a profile failed, in one line: the compile error, or what its code threw. */
function describeLoadFailure(name: string, err: unknown): string {
  if (err instanceof NeverSettledError) {
    return (
      'did not finish loading: its top-level code waits for something that never happens (an ' +
      '`await` on a promise nothing settles); a profile file holds data only'
    );
  }
  const e = err as Error & { profileCompileError?: { file: string; problem: string } };
  // Marked by scripts/run-ts.mjs: the file, or a profile it imports, did not compile.
  const compile = e?.profileCompileError;
  if (compile)
    return compile.file === `profiles/${name}.ts`
      ? `does not compile: ${compile.problem}`
      : `imports ${compile.file}, which does not compile: ${compile.problem}`;
  if (e instanceof SyntaxError) return `does not compile: ${e.message}`;
  const message = e instanceof Error ? `${e.name === 'Error' ? '' : `${e.name}: `}${e.message}` : String(err);
  return `threw when loaded: ${message}`;
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
