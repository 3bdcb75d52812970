import fc from 'fast-check';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FailedError } from '../lib/errors.js';
import {
  checkWritable,
  generatedHeader,
  OUTPUT_MARKER,
  OutputRefusedError,
  planOutput,
  removeOrphan,
  writeProfileAtomically,
} from '../lib/output-dir.js';

/**
 * The synth's promise about its output path, checked on generated directory trees: whatever the
 * output path holds, a synth (of one profile or of all) either refuses with nothing changed, or
 * changes only the directories of the profiles it writes and of removed profiles that held nothing
 * but synthesized files; no file it did not write is ever replaced or deleted. The expected outcome
 * is computed from the generated model, not from the implementation.
 */

const PROFILES = ['alpha', 'beta', 'gamma'] as const;
/** Names at the top of the output path: profiles, removed profiles, and directories of other people. */
const TOP_NAMES = [...PROFILES, 'removed', 'photos', 'docs'] as const;

type FileKind = 'ours' | 'foreign-yaml' | 'foreign-text' | 'hidden' | 'subdir' | 'headerless-stale';
type Entry = { kind: 'dir'; files: [string, FileKind][] } | { kind: 'file' } | { kind: 'link' };
interface Model {
  readonly exists: boolean;
  readonly entries: Map<string, Entry>;
  readonly hiddenTop: boolean;
  /** The synth's marker at the root: absent, written by a synth, or a file of someone else's by that name. */
  readonly marker: 'none' | 'ours' | 'foreign';
  /** undefined: a synth of every profile (PROFILES); else a synth of this one. */
  readonly only?: (typeof PROFILES)[number];
}

const fileKind = fc.constantFrom<FileKind>(
  'ours',
  'ours',
  'ours',
  'foreign-yaml',
  'foreign-text',
  'hidden',
  'subdir',
  'headerless-stale',
);
const entry: fc.Arbitrary<Entry> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .array(fc.tuple(fc.constantFrom('a', 'b', 'c', 'd'), fileKind), { maxLength: 4 })
      .map((files) => ({ kind: 'dir' as const, files: [...new Map(files)] })),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'file' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'link' as const }) },
);
const model: fc.Arbitrary<Model> = fc.record({
  exists: fc.boolean(),
  entries: fc.dictionary(fc.constantFrom(...TOP_NAMES), entry, { maxKeys: 6 }).map((d) => new Map(Object.entries(d))),
  hiddenTop: fc.boolean(),
  marker: fc.constantFrom('none', 'none', 'ours', 'foreign'),
  only: fc.option(fc.constantFrom(...PROFILES), { nil: undefined }),
});

/** The file name a generated file gets, so that "ours" means: a .yaml file with the header. */
function fileName(base: string, kind: FileKind): string {
  return kind === 'foreign-text'
    ? `${base}.txt`
    : kind === 'hidden'
      ? `.${base}`
      : kind === 'subdir'
        ? base
        : `${base}.yaml`;
}

/** The marker as a synth writes it (taken from a synth into an empty directory). */
let synthMarker: string;
beforeAll(() => {
  const dir = mkdtempSync(join(tmpdir(), 'outdir-'));
  writeProfileAtomically(dir, 'alpha', new Map());
  synthMarker = readFileSync(join(dir, OUTPUT_MARKER), 'utf8');
  rmSync(dir, { recursive: true, force: true });
});

function build(root: string, m: Model): string {
  const out = join(root, 'out');
  if (!m.exists) return out;
  mkdirSync(out);
  if (m.hiddenTop) mkdirSync(join(out, '.git'));
  // What a synth writes there (the marker of an earlier synth), or someone's file of that name.
  if (m.marker === 'ours') writeFileSync(join(out, OUTPUT_MARKER), synthMarker);
  if (m.marker === 'foreign') writeFileSync(join(out, OUTPUT_MARKER), 'my own notes\n');
  for (const [name, e] of m.entries) {
    const path = join(out, name);
    if (e.kind === 'file') writeFileSync(path, `a file called ${name}\n`);
    else if (e.kind === 'link') symlinkSync(root, path);
    else {
      mkdirSync(path);
      for (const [base, kind] of e.files) {
        const file = join(path, fileName(base, kind));
        if (kind === 'ours') writeFileSync(file, `${generatedHeader(name)}kind: Old\n`);
        else if (kind === 'subdir') {
          mkdirSync(file);
          writeFileSync(join(file, 'inside.yaml'), `${generatedHeader(name)}x: 1\n`);
        } else if (kind === 'headerless-stale') writeFileSync(file, 'kind: Old\n');
        else writeFileSync(file, `someone's ${kind}\n`);
      }
    }
  }
  return out;
}

/** Every path under `dir` (links not followed) with its contents: what "unchanged" is checked against. */
function tree(dir: string, rel = ''): Map<string, string> {
  const out = new Map<string, string>();
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const stat = lstatSync(path);
    if (stat.isSymbolicLink()) out.set(`${rel}${name}`, '<link>');
    else if (stat.isDirectory()) {
      out.set(`${rel}${name}/`, '<dir>');
      for (const [k, v] of tree(path, `${rel}${name}/`)) out.set(k, v);
    } else out.set(`${rel}${name}`, readFileSync(path, 'utf8'));
  }
  return out;
}

/** What the model says must happen: refused (naming these paths), or these orphans removed. */
function expected(m: Model): { refused: 'outdir' | 'marker' | string[] | undefined; orphans: string[] } {
  const writing: string[] = m.only ? [m.only] : [...PROFILES];
  const visible = [...m.entries.keys()];
  if (!m.exists) return { refused: undefined, orphans: [] };
  if (m.marker === 'foreign') return { refused: 'marker', orphans: [] };
  if (visible.length === 0) return { refused: undefined, orphans: [] };
  const ours = (e: Extract<Entry, { kind: 'dir' }>) =>
    e.files.filter(([, k]) => k === 'ours').map(([b, k]) => fileName(b, k));
  const foreign = (name: string, e: Extract<Entry, { kind: 'dir' }>) =>
    e.files.filter(([, k]) => k !== 'ours').map(([b, k]) => `${name}/${fileName(b, k)}${k === 'subdir' ? '/' : ''}`);
  // Positively the synth's: its marker, or (written before the marker) nothing visible but
  // directories of generated files.
  // A directory of generated files among others (a backup of dist/<p>/ in a home directory) is no sign.
  const everyEntryGenerated = [...m.entries.values()].every((e) => e.kind === 'dir' && ours(e).length > 0);
  if (m.marker !== 'ours' && !everyEntryGenerated) return { refused: 'outdir', orphans: [] };
  const problems: string[] = [];
  const orphans: string[] = [];
  for (const [name, e] of m.entries) {
    if (writing.includes(name)) {
      if (e.kind !== 'dir') problems.push(name);
      else problems.push(...foreign(name, e));
    } else if (!m.only && e.kind === 'dir' && !(PROFILES as readonly string[]).includes(name) && ours(e).length > 0) {
      if (foreign(name, e).length > 0) problems.push(...foreign(name, e));
      else orphans.push(name);
    }
  }
  return { refused: problems.length > 0 ? problems : undefined, orphans };
}

/** What a synth writes for profile `profileName` here (two files, header first, as renderProfile does). */
const rendered = (profileName: string) =>
  new Map([
    ['a.yaml', `${generatedHeader(profileName)}kind: New\n`],
    ['z.yaml', `${generatedHeader(profileName)}kind: New\n`],
  ]);

/** The synth's sequence (main.ts): plan, then write each profile, then remove the orphans. */
function synthInto(out: string, m: Model): string[] {
  const writing = m.only ? [m.only] : [...PROFILES];
  const plan = planOutput(out, writing, m.only ? undefined : [...PROFILES]);
  for (const p of writing) writeProfileAtomically(out, p, rendered(p));
  for (const o of plan.orphans) removeOrphan(out, o);
  return [...plan.orphans];
}

test('whatever the output path holds, a synth refuses with nothing changed, or changes only its own output', () => {
  let cases = 0;
  fc.assert(
    fc.property(model, (m) => {
      cases++;
      const root = mkdtempSync(join(tmpdir(), 'outdir-'));
      try {
        const out = build(root, m);
        const before = tree(out);
        const want = expected(m);
        let refusal: OutputRefusedError | undefined;
        let orphans: string[] = [];
        try {
          orphans = synthInto(out, m);
        } catch (err) {
          if (!(err instanceof OutputRefusedError)) throw err;
          refusal = err;
        }
        const after = tree(out);
        if (want.refused !== undefined) {
          expect(refusal).toBeDefined();
          expect(refusal!.exitCode).toBe(2);
          expect(after).toEqual(before);
          if (want.refused === 'outdir')
            expect(refusal!.message).toContain(`output path ${out} is not an output directory of sandstore-deploy`);
          else if (want.refused === 'marker')
            expect(refusal!.message).toContain(`${join(out, OUTPUT_MARKER)} was not written by the synth`);
          else
            for (const p of want.refused)
              expect(refusal!.details).toContain(`${join(out, p)}: not written by the synth`);
          return;
        }
        expect(refusal).toBeUndefined();
        expect(orphans.sort()).toEqual(want.orphans.sort());
        const writing: string[] = m.only ? [m.only] : [...PROFILES];
        const touched = (path: string) =>
          path === OUTPUT_MARKER || [...writing, ...orphans].some((d) => path === `${d}/` || path.startsWith(`${d}/`));
        // Everything outside the written and removed directories is as it was, byte for byte...
        for (const [path, text] of before) if (!touched(path)) expect(after.get(path)).toBe(text);
        for (const path of after.keys()) if (!touched(path)) expect(before.has(path)).toBe(true);
        // ...each written profile holds exactly what was rendered, and the orphans are gone.
        for (const p of writing) expect(readdirSync(join(out, p)).sort()).toEqual(['a.yaml', 'z.yaml']);
        for (const o of orphans) expect(existsSync(join(out, o))).toBe(false);
        // The output path is marked as the synth's, by the synth's own marker (an earlier one kept as it was).
        expect(readFileSync(join(out, OUTPUT_MARKER), 'utf8')).toMatch(
          /^# The output directory of sandstore-deploy's synth/,
        );
        if (m.exists && m.marker === 'ours') expect(after.get(OUTPUT_MARKER)).toBe(before.get(OUTPUT_MARKER));
        // No staging directory is left behind.
        expect(readdirSync(out).filter((n) => n.includes('.synth-'))).toEqual([]);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    }),
    { numRuns: 300 },
  );
  expect(cases).toBeGreaterThanOrEqual(300);
});

test('a file that appears in a directory while the synth removes it survives, and the synth says so', () => {
  const out = mkdtempSync(join(tmpdir(), 'outdir-'));
  try {
    writeProfileAtomically(out, 'alpha', rendered('alpha'));
    // The race planOutput cannot see: a file created after it looked, before the removal.
    writeFileSync(join(out, 'alpha', 'late.txt'), 'written meanwhile\n');
    expect(() => removeOrphan(out, 'alpha')).toThrow(FailedError);
    expect(readFileSync(join(out, 'alpha', 'late.txt'), 'utf8')).toBe('written meanwhile\n');
    expect(readdirSync(join(out, 'alpha'))).toEqual(['late.txt']);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test("a home directory holding a backup of a profile's output is not an output directory: refused, nothing changed (the audit's example)", () => {
  const home = mkdtempSync(join(tmpdir(), 'fakehome-'));
  try {
    mkdirSync(join(home, 'Documents'));
    mkdirSync(join(home, 'k8s-backup'));
    writeFileSync(
      join(home, 'k8s-backup', 'statefulset-sandstore.yaml'),
      `${generatedHeader('local')}kind: StatefulSet\n`,
    );
    const before = tree(home);
    expect(() => planOutput(home, ['local'], ['local'])).toThrow(
      `output path ${home} is not an output directory of sandstore-deploy`,
    );
    expect(tree(home)).toEqual(before);
    // Once a synth has marked it (here: an empty directory it wrote into), the same tree is its own.
    const out = join(home, 'out');
    writeProfileAtomically(out, 'local', rendered('local'));
    mkdirSync(join(out, 'k8s-backup'));
    expect(planOutput(out, ['local'], ['local']).orphans).toEqual([]);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test('an output path the synth cannot read or create is refused (exit 2) with a sentence, before anything is written', () => {
  const root = mkdtempSync(join(tmpdir(), 'outdir-'));
  try {
    writeFileSync(join(root, 'a-file'), 'not a directory\n');
    symlinkSync(join(root, 'loop-b'), join(root, 'loop-a'));
    symlinkSync(join(root, 'loop-a'), join(root, 'loop-b'));
    const before = tree(root);
    const blocked = fc.record({
      // Below a file (ENOTDIR), or through a cycle of links (ELOOP), at any depth.
      start: fc.constantFrom(
        { name: 'a-file', said: 'a part of the path is a file, not a directory (ENOTDIR)' },
        { name: 'loop-a', said: 'too many symbolic links (ELOOP)' },
      ),
      below: fc.array(fc.constantFrom('x', 'dist', 'out', 'a b'), { minLength: 1, maxLength: 3 }),
      check: fc.boolean(),
    });
    fc.assert(
      fc.property(blocked, ({ start: { name, said }, below, check }) => {
        const out = join(root, name, ...below);
        const attempt = () => {
          planOutput(out, ['alpha']);
          if (!check) checkWritable(out);
        };
        expect(attempt).toThrow(OutputRefusedError);
        expect(attempt).toThrow(`output path ${out} cannot be used: ${said}`);
        expect(attempt).toThrow('Nothing was written or deleted.');
        expect(tree(root)).toEqual(before);
      }),
      { numRuns: 60 },
    );
    // The control: a new directory below a writable one passes both checks.
    expect(() => {
      planOutput(join(root, 'new', 'out'), ['alpha']);
      checkWritable(join(root, 'new', 'out'));
    }).not.toThrow();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
