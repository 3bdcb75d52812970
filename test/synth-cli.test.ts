import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generatedHeader, OUTPUT_MARKER } from '../lib/output-dir.js';
import { projectCopy, root, treeOf } from './cli-harness.js';

/**
 * The synth command as a user runs it, in a throwaway copy of the project (so that broken profiles
 * and stale output can be planted without touching the real ones).
 */
let work: string;

beforeEach(() => {
  work = projectCopy();
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

const synth = (...args: string[]) =>
  spawnSync('node', ['scripts/run-ts.mjs', 'main.ts', ...args], { cwd: work, encoding: 'utf8' });

/** Every file under dist/ with its contents: what "untouched" is checked against. */
const snapshotDist = () => treeOf(join(work, 'dist'));

const BROKEN = `import { defineProfile } from '../lib/profile.js';
import base from './ssd-raft.js';
export default defineProfile({ ...base, name: 'broken', kube: { context: '' },
  raft: { ...base.raft, replicas: 4 }, storage: { ...base.storage, sizePerPod: '20GB' },
  clientAccess: { nodePortBase: 40000 }, image: { ...base.image, tag: '' } });
`;

test('an unknown profile exits 2, lists the profiles there are and writes nothing', () => {
  const before = snapshotDist();
  const r = synth('--profile=ssd-rift');
  expect(r.status).toBe(2);
  expect(r.stderr).toContain(
    'unknown profile "ssd-rift"; the profiles there are: local, local-node, local-node-ext4, local-node-xfs, raft5-etcd3, ssd-raft',
  );
  expect(snapshotDist()).toEqual(before);
});

/** A synthesized file's contents other than what the synth writes now (a stale or hand-edited one, header kept). */
const edited = (profileName: string, text: string) => `${generatedHeader(profileName)}${text}`;

test('an invalid profile is refused (exit 2) naming every problem by field, and writes nothing', () => {
  writeFileSync(join(work, 'profiles', 'broken.ts'), BROKEN);
  writeFileSync(join(work, 'dist', 'ssd-raft', 'statefulset-sandstore.yaml'), edited('ssd-raft', 'previous output\n'));
  const before = snapshotDist();
  for (const args of [['--profile=broken'], []]) {
    const r = synth(...args);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('nothing written');
    for (const field of [
      'kube.context: got ""',
      'raft.replicas: got 4',
      'storage.sizePerPod: got "20GB"',
      'clientAccess.nodePortBase: got 40000',
      'image.tag: got ""',
    ]) {
      expect(r.stderr).toContain(field);
    }
    // Neither the broken profile's output nor (for a synth of all) the valid profiles' output changed.
    expect(snapshotDist()).toEqual(before);
  }
});

test('--profile=<p> rewrites dist/<p>/ and touches nothing else', () => {
  writeFileSync(join(work, 'dist', 'ssd-raft', 'statefulset-sandstore.yaml'), edited('ssd-raft', 'stale\n'));
  writeFileSync(join(work, 'dist', 'local', 'statefulset-sandstore.yaml'), edited('local', 'stale\n'));
  const r = synth('--profile=ssd-raft');
  expect(r.status).toBe(0);
  const after = snapshotDist();
  expect(after['ssd-raft/statefulset-sandstore.yaml']).toBe(
    readFileSync(join(root, 'dist', 'ssd-raft', 'statefulset-sandstore.yaml'), 'utf8'),
  );
  expect(after['local/statefulset-sandstore.yaml']).toBe(edited('local', 'stale\n'));
  expect(readdirSync(join(work, 'dist')).sort()).toEqual([
    OUTPUT_MARKER,
    'local',
    'local-node',
    'local-node-ext4',
    'local-node-xfs',
    'raft5-etcd3',
    'ssd-raft',
  ]);
});

test('--check fails on a stale, missing or extra file and names it; synth of all repairs it', () => {
  writeFileSync(join(work, 'dist', 'local', 'statefulset-sandstore.yaml'), edited('local', 'hand-edited\n'));
  rmSync(join(work, 'dist', 'ssd-raft', 'service-etcd.yaml'));
  writeFileSync(join(work, 'dist', 'ssd-raft', 'leftover.yaml'), edited('ssd-raft', 'x: 1\n'));
  const stale = synth('--check');
  expect(stale.status).toBe(1);
  expect(stale.stderr).toContain('local/statefulset-sandstore.yaml: differs');
  expect(stale.stderr).toContain('ssd-raft/service-etcd.yaml: missing');
  expect(stale.stderr).toContain('ssd-raft/leftover.yaml: no longer generated');
  expect(synth().status).toBe(0);
  expect(synth('--check').status).toBe(0);
});

test('names Kubernetes accepts but no file name can hold (a 253-character StorageClass) still synthesize, to a file name the filesystem takes', () => {
  const className = `${'s'.repeat(120)}.${'d'.repeat(132)}`;
  expect(className).toHaveLength(253);
  writeFileSync(
    join(work, 'profiles', 'long.ts'),
    `import { defineProfile } from '../lib/profile.js';
import base from './local.js';
export default defineProfile({ ...base, name: 'long', namespace: 'sandstore-long', storage: { ...base.storage, className: '${className}' } });
`,
  );
  const r = synth('--profile=long');
  expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
  const files = readdirSync(join(work, 'dist', 'long'));
  const storageClass = files.find((f) => f.startsWith('storageclass-'))!;
  expect(Buffer.byteLength(storageClass)).toBe(255);
  expect(storageClass).toMatch(/^storageclass-s{120}\.d+-[0-9a-f]{12}\.yaml$/);
  expect(readFileSync(join(work, 'dist', 'long', storageClass), 'utf8')).toContain(`name: ${className}`);
  // Short names keep their plain file names, and the output is fresh by the synth's own check.
  expect(files).toContain('statefulset-sandstore.yaml');
  expect(synth('--check', '--profile=long').status).toBe(0);
});

describe('nothing is lost: the synth replaces and removes only what it wrote', () => {
  test('files the synth did not write keep dist/<p>/ from being replaced: refused (exit 2), named, nothing written', () => {
    writeFileSync(join(work, 'dist', 'ssd-raft', 'notes.txt'), 'my notes\n');
    writeFileSync(join(work, 'dist', 'ssd-raft', 'kustomization.yaml'), 'resources: []\n');
    writeFileSync(join(work, 'dist', 'ssd-raft', 'statefulset-sandstore.yaml'), edited('ssd-raft', 'stale\n'));
    const before = snapshotDist();
    for (const args of [['--profile=ssd-raft'], [], ['--check']]) {
      const r = synth(...args);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain('Nothing was written or deleted');
      expect(r.stderr).toContain(`${join(work, 'dist', 'ssd-raft', 'kustomization.yaml')}: not written by the synth`);
      expect(r.stderr).toContain(`${join(work, 'dist', 'ssd-raft', 'notes.txt')}: not written by the synth`);
      expect(snapshotDist()).toEqual(before);
    }
    // Another profile's directory is no concern of a synth of one profile.
    expect(synth('--profile=local').status).toBe(0);
  });

  test("a removed profile's directory goes only when it holds nothing but synthesized files; others are left alone", () => {
    cpSync(join(work, 'dist', 'local'), join(work, 'dist', 'gone'), { recursive: true });
    cpSync(join(work, 'dist', 'local'), join(work, 'dist', 'mixed'), { recursive: true });
    writeFileSync(join(work, 'dist', 'mixed', 'notes.txt'), 'keep me\n');
    mkdirSync(join(work, 'dist', 'docs'));
    writeFileSync(join(work, 'dist', 'docs', 'readme.md'), "# not the synth's\n");
    const before = snapshotDist();
    const refused = synth();
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain(`${join(work, 'dist', 'mixed', 'notes.txt')}: not written by the synth`);
    expect(snapshotDist()).toEqual(before);

    rmSync(join(work, 'dist', 'mixed', 'notes.txt'));
    const r = synth();
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('removed gone/');
    expect(r.stdout).toContain('removed mixed/');
    expect(readdirSync(join(work, 'dist')).sort()).toEqual([
      OUTPUT_MARKER,
      'docs',
      'local',
      'local-node',
      'local-node-ext4',
      'local-node-xfs',
      'raft5-etcd3',
      'ssd-raft',
    ]);
    expect(readFileSync(join(work, 'dist', 'docs', 'readme.md'), 'utf8')).toBe("# not the synth's\n");
  });

  test('an output path that is not an output directory of the project is refused (exit 2): nothing written or deleted', () => {
    const elsewhere = mkdtempSync(join(tmpdir(), 'not-an-outdir-'));
    try {
      mkdirSync(join(elsewhere, 'photos'));
      writeFileSync(join(elsewhere, 'photos', 'a.jpg'), 'jpeg');
      writeFileSync(join(elsewhere, 'todo.txt'), 'todo');
      const listing = () => readdirSync(elsewhere).sort();
      for (const r of [
        synth(`--outdir=${elsewhere}`),
        spawnSync('node', ['scripts/run-ts.mjs', 'main.ts'], {
          cwd: work,
          encoding: 'utf8',
          env: { ...process.env, CDK8S_OUTDIR: elsewhere },
        }),
      ]) {
        expect(r.status).toBe(2);
        expect(r.stderr).toContain(`output path ${elsewhere} is not an output directory of sandstore-deploy`);
        expect(listing()).toEqual(['photos', 'todo.txt']);
      }
      // A directory of synthesized files among others is no sign: a home with a backup of dist/local/ in it.
      mkdirSync(join(elsewhere, 'k8s-backup'));
      cpSync(join(work, 'dist', 'local'), join(elsewhere, 'k8s-backup'), { recursive: true });
      const backup = readdirSync(join(elsewhere, 'k8s-backup')).sort();
      const home = synth(`--outdir=${elsewhere}`);
      expect(home.status).toBe(2);
      expect(home.stderr).toContain(`output path ${elsewhere} is not an output directory of sandstore-deploy`);
      expect(listing()).toEqual(['k8s-backup', 'photos', 'todo.txt']);
      expect(readdirSync(join(elsewhere, 'k8s-backup')).sort()).toEqual(backup);
      // One level too deep: a profile's own directory is not an output directory.
      const deep = synth(`--outdir=${join(work, 'dist', 'ssd-raft')}`);
      expect(deep.status).toBe(2);
      // A new directory, or an empty one, is fine.
      expect(synth('--profile=local', `--outdir=${join(elsewhere, 'new', 'out')}`).status).toBe(0);
      expect(readdirSync(join(elsewhere, 'new', 'out', 'local')).length).toBeGreaterThan(5);
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });

  test('an output path below a file, or one the synth may not read, is refused (exit 2) with a sentence, nothing written', () => {
    const below = join(work, 'package.json', 'out');
    const r = synth('--profile=local', `--outdir=${below}`);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(
      `synth: output path ${below} cannot be used: a part of the path is a file, not a directory (ENOTDIR)`,
    );
    expect(r.stderr).not.toContain('internal error');
  });

  test('empty and repeated option values are refused (exit 2), naming the option', () => {
    const before = snapshotDist();
    const cases: [string[], NodeJS.ProcessEnv, string][] = [
      [['--outdir='], {}, '--outdir (or CDK8S_OUTDIR) is empty'],
      [[], { CDK8S_OUTDIR: '' }, '--outdir (or CDK8S_OUTDIR) is empty'],
      [['--profile='], {}, '--profile is empty'],
      [['--profile=local', '--profile=ssd-raft'], {}, '--profile is given more than once ("local", then "ssd-raft")'],
      [['--outdir= dist'], {}, '--outdir (or CDK8S_OUTDIR) has surrounding whitespace (" dist")'],
      [[], { CDK8S_OUTDIR: 'dist\n' }, '--outdir (or CDK8S_OUTDIR) has surrounding whitespace ("dist\\n")'],
      [['--profile=local '], {}, '--profile has surrounding whitespace ("local ")'],
    ];
    for (const [args, env, message] of cases) {
      const r = spawnSync('node', ['scripts/run-ts.mjs', 'main.ts', ...args], {
        cwd: work,
        encoding: 'utf8',
        env: { ...process.env, ...env },
      });
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(message);
      expect(snapshotDist()).toEqual(before);
    }
  });
});

describe('broken profile files', () => {
  const BROKEN_FILES: Record<string, [string, string]> = {
    'syntax-error': [
      `import { defineProfile } from '../lib/profile.js';\nexport default defineProfile({ name: 'syntax-error',,\n});\n`,
      'profiles/syntax-error.ts does not compile: line 2:53: Expected identifier but found ","',
    ],
    'uses-broken': [
      `import base from './syntax-error.js';\nexport default { ...base, name: 'uses-broken' };\n`,
      'profiles/uses-broken.ts imports profiles/syntax-error.ts, which does not compile',
    ],
    throws: [
      `const settings: any = undefined;\nexport default { name: settings.name };\n`,
      'profiles/throws.ts threw when loaded: TypeError: Cannot read properties of undefined',
    ],
    'no-default': [
      `export const profile = { name: 'no-default' };\n`,
      'profiles/no-default.ts has no default export (it exports profile); expected `export default defineProfile({...})`',
    ],
    'not-an-object': [`export default 'ssd-raft';\n`, 'profiles/not-an-object.ts exports a string by default'],
  };

  test('each is named with what is wrong; the others still synthesize; a synth of all refuses as a whole', () => {
    for (const [name, [text]] of Object.entries(BROKEN_FILES))
      writeFileSync(join(work, 'profiles', `${name}.ts`), text);
    const before = snapshotDist();
    const all = synth();
    expect(all.status).toBe(2);
    expect(all.stderr).toContain('synth: nothing written.');
    for (const [name, [, message]] of Object.entries(BROKEN_FILES))
      expect(all.stderr).toContain(`profile "${name}" cannot be loaded: ${message}`);
    expect(all.stderr).not.toMatch(/^\s+at /m);
    // One of them alone (the generated ones are in profile-loading.test.ts).
    const one = synth('--profile=uses-broken');
    expect(one.status).toBe(2);
    expect(one.stderr).toContain(BROKEN_FILES['uses-broken'][1]);
    expect(snapshotDist()).toEqual(before);
    const good = synth('--profile=ssd-raft', '--check');
    expect(good.stderr).toBe('');
    expect(good.status).toBe(0);
  });
});

test('run from outside the project, the synth and the runner say so in one sentence (exit 2), with no stack trace', () => {
  const elsewhere = mkdtempSync(join(tmpdir(), 'not-a-project-'));
  try {
    for (const args of [
      ['main.ts', '--check'],
      ['lib/runner/cli.ts', 'status', '--context=none'],
    ]) {
      const r = spawnSync('node', [join(work, 'scripts', 'run-ts.mjs'), ...args], { cwd: elsewhere, encoding: 'utf8' });
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`cannot find the sandstore-deploy project at or above ${elsewhere}`);
      expect(r.stderr).not.toMatch(/^\s+at /m);
    }
  } finally {
    rmSync(elsewhere, { recursive: true, force: true });
  }
});
