import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { projectRoot } from '../../../lib/paths.js';

/** Building sandstore-files (main.go here), for the e2e suite and bench/stale-read.ts. */

const root = projectRoot();

/**
 * Sand Store's source (read-only input): SANDSTORE_SOURCE, else shared/sandstore in an ancestor of
 * the project, else this workplace's /work/shared/sandstore; the rule images.sh follows.
 */
export function sandstoreSource(): string {
  const candidates = process.env.SANDSTORE_SOURCE ? [process.env.SANDSTORE_SOURCE] : [];
  for (let dir = dirname(root); dirname(dir) !== dir; dir = dirname(dir))
    candidates.push(join(dir, 'shared', 'sandstore'));
  candidates.push('/work/shared/sandstore');
  const found = candidates.find((d) => existsSync(join(d, 'go.mod')));
  if (!found) throw new Error(`Sand Store's source not found (tried ${candidates.join(', ')}); set SANDSTORE_SOURCE`);
  return found;
}

/**
 * test/e2e/sandstore-files/main.go built inside Sand Store's module with `go build -overlay` (it
 * needs Sand Store's internal packages); nothing is written into the checkout.
 */
export function buildSandstoreFiles(): string {
  const out = mkdtempSync(join(tmpdir(), 'sandstore-files-'));
  const source = sandstoreSource();
  const overlay = join(out, 'overlay.json');
  writeFileSync(
    overlay,
    JSON.stringify({
      Replace: {
        [join(source, 'clients', 'sandstore_deploy_files', 'main.go')]: join(
          root,
          'test',
          'e2e',
          'sandstore-files',
          'main.go',
        ),
      },
    }),
  );
  const r = spawnSync(
    'go',
    [
      'build',
      '-buildvcs=false',
      '-trimpath',
      '-overlay',
      overlay,
      '-o',
      join(out, 'sandstore-files'),
      './clients/sandstore_deploy_files',
    ],
    { cwd: source, encoding: 'utf8', env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=readonly' } },
  );
  if (r.status !== 0) throw new Error(`building sandstore-files failed: ${r.stderr}`);
  return join(out, 'sandstore-files');
}
