import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectCopy, root, treeOf } from './cli-harness.js';

/**
 * The real `cdk8s synth` (cdk8s-cli, as `npx cdk8s synth` runs it) with the project's cdk8s.yaml, in
 * a throwaway copy of the project. cdk8s-cli removes its output directory whole (rm -rf) before it
 * starts the app, so cdk8s.yaml points it at a scratch directory, cdk8s.out/, never at dist/.
 */
let work: string;

beforeEach(() => {
  work = projectCopy();
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

/** `cdk8s synth <args>` in the copy; --no-check-upgrade: no look-up of cdk8s-cli's latest version on npm. */
const cdk8sSynth = (...args: string[]) =>
  spawnSync(join(root, 'node_modules', '.bin', 'cdk8s'), ['synth', '--no-check-upgrade', ...args], {
    cwd: work,
    encoding: 'utf8',
  });

/** The committed dist/: what `npm run synth` writes and git holds (every file in it is tracked). */
function committedDist(): Record<string, string> {
  const tracked = spawnSync('git', ['ls-files', 'dist'], { cwd: root, encoding: 'utf8' })
    .stdout.trim()
    .split('\n')
    .map((f) => f.slice('dist/'.length));
  const tree = treeOf(join(root, 'dist'));
  expect(Object.keys(tree).sort()).toEqual(tracked.sort());
  return tree;
}

/** A file of someone else's in dist/, where the old cdk8s.yaml (output: dist) had cdk8s-cli delete it. */
function plantStray(): string {
  const stray = join(work, 'dist', 'ssd-raft', 'notes.txt');
  writeFileSync(stray, 'my review notes, in no commit\n');
  return stray;
}

test('cdk8s synth writes exactly the committed dist/ into cdk8s.out/, validates it, and leaves dist/ as it was', () => {
  plantStray();
  const before = treeOf(join(work, 'dist'));
  const r = cdk8sSynth();
  expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
  expect(treeOf(join(work, 'cdk8s.out'))).toEqual(committedDist());
  expect(treeOf(join(work, 'dist'))).toEqual(before);
  // The plugin ran every check on every profile, the installed checkers included, and passed.
  expect(r.stdout).toMatch(/Status\s+│ success/);
  expect(r.stdout).toMatch(/profiles\s+│ local, local-node, local-node-ext4, local-node-xfs, raft5-etcd3, ssd-raft/);
  expect(r.stdout).toMatch(/kube-score, checkov\s+│ (passed|not installed)/);
  expect(r.stdout).toContain('Validations ended succesfully');
});

test('the guard: with output: dist (the old cdk8s.yaml) the file in dist/ is lost; with cdk8s.out/ it survives', () => {
  // Validation comes after the deletion and is the other tests' subject.
  const stray = plantStray();
  expect(cdk8sSynth('--no-validate').status).toBe(0);
  expect(readFileSync(stray, 'utf8')).toBe('my review notes, in no commit\n');

  const config = readFileSync(join(work, 'cdk8s.yaml'), 'utf8');
  expect(config).toMatch(/^output: cdk8s\.out$/m);
  writeFileSync(join(work, 'cdk8s.yaml'), config.replace(/^output: cdk8s\.out$/m, 'output: dist'));
  expect(cdk8sSynth('--no-validate').status).toBe(0);
  expect(existsSync(stray)).toBe(false);
  // What git restores came back; the file git never had did not.
  expect(treeOf(join(work, 'dist'))).toEqual(committedDist());
});

test('--stdout prints every committed manifest and deletes only the scratch directory', () => {
  plantStray();
  const before = treeOf(join(work, 'dist'));
  mkdirSync(join(work, 'cdk8s.out'));
  writeFileSync(join(work, 'cdk8s.out', 'previous-run.yaml'), 'x: 1\n');
  const r = cdk8sSynth('--stdout', '--no-validate');
  expect(r.status).toBe(0);
  const manifests = Object.entries(committedDist()).filter(([f]) => f.endsWith('.yaml'));
  for (const [file, text] of manifests)
    expect({ file, printed: r.stdout.includes(text) }).toEqual({ file, printed: true });
  expect(r.stdout.length).toBe(manifests.reduce((n, [, text]) => n + text.length, 0));
  expect(treeOf(join(work, 'dist'))).toEqual(before);
  expect(existsSync(join(work, 'cdk8s.out'))).toBe(false);
});

test("-o <dir> is cdk8s-cli's own: it deletes <dir> whole before the app runs (why the docs say never to pass it)", () => {
  // Nothing in cdk8s.yaml or the app runs before that deletion, so nothing of ours can prevent it;
  // this pins the behaviour docs/profiles.md describes, so that a cdk8s-cli upgrade changing it is noticed.
  const elsewhere = mkdtempSync(join(tmpdir(), 'cdk8s-o-'));
  try {
    writeFileSync(join(elsewhere, 'todo.txt'), 'todo\n');
    expect(cdk8sSynth('--no-validate', '-o', elsewhere).status).toBe(0);
    expect(existsSync(join(elsewhere, 'todo.txt'))).toBe(false);
    expect(treeOf(elsewhere)).toEqual(committedDist());
  } finally {
    rmSync(elsewhere, { recursive: true, force: true });
  }
});

test("a privileged container fails cdk8s synth with the check's message (exit 2); without the plugin the same output passes", () => {
  const security = join(work, 'lib', 'constructs', 'security.ts');
  const source = readFileSync(security, 'utf8');
  expect(source).toContain('    allowPrivilegeEscalation: false,\n');
  writeFileSync(
    security,
    source.replace(
      '    allowPrivilegeEscalation: false,\n',
      '    allowPrivilegeEscalation: false,\n    privileged: true,\n',
    ),
  );
  const r = cdk8sSynth();
  expect(r.status).toBe(2);
  expect(r.stderr).toContain('Validation failed');
  expect(r.stdout).toMatch(/Status\s+│ failure/);
  expect(r.stdout).toContain('sandstore-deploy manifest checks: profile ssd-raft');
  expect(r.stdout).toContain('StatefulSet/sandstore: sandstore: privileged');
  expect(r.stdout).toContain('StatefulSet/etcd: etcd: privileged');
  // kube-score and checkov, where scripts/lint-manifests.sh installed them, say it too.
  if (!/kube-score, checkov\s+│ not installed/.test(r.stdout))
    expect(r.stdout).toContain('[CRITICAL] container-security-context-privileged');
  // The synth itself wrote the privileged pods: the plugin is what refused them.
  const unchecked = cdk8sSynth('--no-validate');
  expect(unchecked.status).toBe(0);
  expect(readFileSync(join(work, 'cdk8s.out', 'ssd-raft', 'statefulset-sandstore.yaml'), 'utf8')).toContain(
    'privileged: true',
  );
});
