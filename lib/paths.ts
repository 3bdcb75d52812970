import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { RefusedError } from './errors.js';

/**
 * The project's root: the nearest directory at or above the working directory whose package.json
 * is this project's. Found from the working directory rather than from this file's URL because the
 * entry points run bundled (see scripts/run-ts.mjs), from a cache directory.
 */
export function projectRoot(start: string = process.cwd()): string {
  for (let dir = start; ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'sandstore-deploy')
      return dir;
    if (dirname(dir) === dir) {
      throw new RefusedError(
        `cannot find the sandstore-deploy project at or above ${start}; run the command from ` +
          `the project's directory`,
      );
    }
  }
}

export const profilesDir = (root = projectRoot()) => join(root, 'profiles');
export const distDir = (root = projectRoot()) => join(root, 'dist');

/**
 * The Sand Store checkout a project next to the shared folder uses: shared/sandstore beside the
 * project or beside one of its ancestors (../shared/sandstore), the rule the local cluster's images
 * follow; else ../shared/sandstore, which whoever uses it reports as missing.
 */
export function defaultSandstoreSource(root = projectRoot()): string {
  for (let dir = dirname(root); dirname(dir) !== dir; dir = dirname(dir)) {
    if (existsSync(join(dir, 'shared', 'sandstore', 'go.mod'))) return join(dir, 'shared', 'sandstore');
  }
  return join(dirname(root), 'shared', 'sandstore');
}
