import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectCopy, treeOf } from './cli-harness.js';

/**
 * The synth when the machine says no, on real file systems (root: CI and the e2e suite run as
 * root): a tiny tmpfs that fills up half way through a write (ENOSPC), a read-only bind mount
 * (EROFS), and a directory an unprivileged user may not write (EACCES: root bypasses mode bits, so
 * the synth runs as nobody there). Each is one sentence naming the path and the cause, and leaves
 * the previous output whole; each has its control, the same synth succeeding once the cause is gone.
 */
let work: string;
const mounts: string[] = [];

beforeEach(() => {
  work = projectCopy();
});
afterEach(() => {
  while (mounts.length > 0) execFileSync('umount', [mounts.pop()!]);
  rmSync(work, { recursive: true, force: true });
});

const synth = (args: string[], asUser?: string[]) =>
  spawnSync(
    asUser?.[0] ?? 'node',
    [...(asUser?.slice(1) ?? []), ...(asUser ? ['node'] : []), 'scripts/run-ts.mjs', 'main.ts', ...args],
    {
      cwd: work,
      encoding: 'utf8',
    },
  );

/** Mounts what `args` say on a new directory `name` in the copy; unmounted after the test. */
function mountAt(name: string, ...args: string[]): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', [...args, dir]);
  mounts.push(dir);
  return dir;
}

test('a disk that fills up half way through a synth: exit 1, one sentence naming the path and ENOSPC, the previous output whole', () => {
  const disk = mountAt('small', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs');
  const out = join(disk, 'out');
  expect(synth(['--profile=local-node', `--outdir=${out}`]).status).toBe(0);
  const before = treeOf(out);
  // Fill the file system, then free 8 KiB: the synth starts, writes a file or two, and runs out.
  const filler = join(disk, 'filler');
  try {
    writeFileSync(filler, Buffer.alloc(2 ** 20));
  } catch (err) {
    expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
  }
  truncateSync(filler, Math.max(0, Number(execFileSync('stat', ['-c', '%s', filler], { encoding: 'utf8' })) - 8192));

  const r = synth(['--profile=local-node', `--outdir=${out}`]);
  expect({ status: r.status, lines: r.stderr.trim().split('\n').length }).toEqual({ status: 1, lines: 1 });
  expect(r.stderr).toMatch(
    new RegExp(
      `^synth: cannot \\w+ ${out}/\\S+: no space left on the device \\(ENOSPC\\); ` +
        `the previous output in ${out}/local-node is unchanged\\n$`,
    ),
  );
  expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
  expect(treeOf(out)).toEqual(before);

  // The control: with the space back, the same synth writes.
  rmSync(filler);
  expect(synth(['--profile=local-node', `--outdir=${out}`]).status).toBe(0);
  expect(treeOf(out)).toEqual(before);
});

test('a read-only file system under the output: refused (exit 2) naming the path and EROFS, nothing changed', () => {
  const out = join(work, 'ro-out');
  expect(synth(['--profile=local-node', `--outdir=${out}`]).status).toBe(0);
  const before = treeOf(out);
  mountAt('ro-out', '--bind', out);
  execFileSync('mount', ['-o', 'remount,bind,ro', out]);

  const r = synth(['--profile=local-node', `--outdir=${out}`]);
  expect(r.status).toBe(2);
  expect(r.stderr).toContain(`output path ${out} cannot be used: a read-only file system (EROFS)`);
  expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
  expect(treeOf(out)).toEqual(before);

  execFileSync('mount', ['-o', 'remount,bind,rw', out]);
  expect(synth(['--profile=local-node', `--outdir=${out}`]).status).toBe(0);
});

test('a directory the user may not write: refused (exit 2) naming the path and EACCES, nothing changed', () => {
  const out = join(work, 'locked');
  expect(synth(['--profile=local-node', `--outdir=${out}`]).status).toBe(0);
  const before = treeOf(out);
  // Root passes mode bits by: the synth runs as nobody, in a copy it may read.
  chmodSync(work, 0o755);
  execFileSync('chmod', ['-R', 'a+rX', work]);
  execFileSync('chmod', ['-R', 'a-w', out]);
  const nobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

  const r = synth(['--profile=local-node', `--outdir=${out}`], nobody);
  expect(r.status).toBe(2);
  expect(r.stderr).toContain(`output path ${out} cannot be used: permission denied (EACCES)`);
  expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
  expect(treeOf(out)).toEqual(before);

  // The control: the same user, the directory writable again.
  execFileSync('chmod', ['-R', 'a+w', out]);
  const again = synth(['--profile=local-node', `--outdir=${out}`], nobody);
  expect({ status: again.status, stderr: again.stderr }).toEqual({ status: 0, stderr: '' });
});
