/**
 * The checks of `cdk8s synth`'s validation plugin (plugin.cjs, declared in cdk8s.yaml), as a process:
 *
 *   node scripts/run-ts.mjs lib/cdk8s-validation/check-manifests.ts [--linters] <manifest>...
 *
 * Reads the manifests cdk8s synth wrote (<outdir>/<profile>/<kind>-<name>.yaml), runs on each
 * profile's files the checks the unit tests run (lib/manifest-checks.ts: Pod Security "restricted",
 * labels, Sand Store's runtime contract as the profile asks for it), and with --linters kube-score
 * and checkov where scripts/lint-manifests.sh installed them. Prints one JSON `CheckResult` on
 * stdout; exit 0 whatever it found (the plugin reports it), 1 only when it could not check.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { ValidationViolatingResource, ValidationViolation } from 'cdk8s-cli/plugins';
import { parse } from 'yaml';
import { renderedProblems } from '../manifest-checks.js';
import { projectRoot } from '../paths.js';
import { loadProfile } from '../profiles.js';
import type { Manifest } from '../synth.js';

export interface CheckResult {
  readonly violations: ValidationViolation[];
  /** Shown in the report's summary: what ran, and what did not. */
  readonly metadata: Record<string, string>;
}

const FIX =
  'change the construct in lib/constructs/ (or the profile) that writes it; `npm run test:unit` names the same problems';

/** The manifests by directory: <outdir>/<profile>/<file>, so the directory's name is the profile's. */
function byProfile(manifests: readonly string[]): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const path of [...manifests].sort()) {
    const profile = basename(dirname(path));
    groups.set(profile, [...(groups.get(profile) ?? []), path]);
  }
  return groups;
}

/** The object a problem is about ("StatefulSet/sandstore: ..." names StatefulSet/sandstore), if it names one. */
const objectOf = (problem: string) => /^(\w+)\/([^\s:]+)/.exec(problem)?.[0];

/** Where each object of `files` is, by "Kind/name". */
function objectFiles(files: readonly string[]): Map<string, string> {
  const where = new Map<string, string>();
  for (const f of files) {
    const o = parse(readFileSync(f, 'utf8')) as Manifest | null;
    if (o?.kind && o.metadata?.name) where.set(`${o.kind}/${o.metadata.name}`, f);
  }
  return where;
}

/** The problems as the report's resources: one per object, its problems as the locations. */
function violatingResources(
  profileName: string,
  dir: string,
  files: readonly string[],
  problems: readonly string[],
): ValidationViolatingResource[] {
  const where = objectFiles(files);
  const byObject = new Map<string, string[]>();
  for (const p of problems) {
    const object = objectOf(p) ?? profileName;
    byObject.set(object, [...(byObject.get(object) ?? []), p]);
  }
  return [...byObject].map(([resourceName, locations]) => ({
    resourceName,
    locations,
    manifestPath: where.get(resourceName) ?? dir,
  }));
}

/** One profile's files through lib/manifest-checks.ts: a violation naming every problem, or none. */
async function profileViolation(
  profileName: string,
  files: readonly string[],
): Promise<ValidationViolation | undefined> {
  const dir = dirname(files[0]);
  let problems: string[];
  try {
    const profile = await loadProfile(profileName);
    const rendered = new Map(files.map((f) => [basename(f), readFileSync(f, 'utf8')] as const));
    problems = renderedProblems(profile, rendered);
  } catch (err) {
    problems = [`${dir} is not the output of a profile that loads: ${(err as Error).message}`];
  }
  if (problems.length === 0) return undefined;
  return {
    ruleName: `sandstore-deploy manifest checks: profile ${profileName} (Pod Security "restricted", labels, runtime contract)`,
    recommendation:
      'every pod passes Pod Security "restricted" and the output is what the profile asks of Sand Store (docs/profiles.md#what-is-synthesized)',
    fix: FIX,
    violatingResources: violatingResources(profileName, dir, files, problems),
  };
}

/**
 * kube-score and checkov over the output directory, as `npm run lint:manifests` runs them over dist/
 * (exit 3: not installed).
 */
function linterResult(outDir: string): CheckResult {
  const r = spawnSync(
    'bash',
    [join(projectRoot(), 'scripts', 'lint-manifests.sh'), '--if-installed', `--outdir=${outDir}`],
    { encoding: 'utf8' },
  );
  const label = 'kube-score, checkov';
  if (r.status === 0) return { violations: [], metadata: { [label]: 'passed' } };
  if (r.status === 3)
    return { violations: [], metadata: { [label]: 'not installed, not run (npm run lint:manifests installs them)' } };
  const lines = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim() !== '');
  return {
    violations: [
      {
        ruleName:
          r.status === 1
            ? 'kube-score and checkov: findings neither fixed nor declared'
            : `kube-score and checkov did not run (exit ${r.status ?? r.signal})`,
        recommendation: "what docs/profiles.md#manifest-checkers asks of every profile's output",
        fix: `${FIX}, or declare the finding in lib/constructs/checker-declarations.ts with its reason`,
        violatingResources: [{ resourceName: outDir, locations: lines, manifestPath: outDir }],
      },
    ],
    metadata: { [label]: 'failed' },
  };
}

async function check(args: readonly string[]): Promise<CheckResult> {
  const linters = args.includes('--linters');
  const manifests = args.filter((a) => a !== '--linters');
  const groups = byProfile(manifests);
  const violations: ValidationViolation[] = [];
  for (const [profile, files] of [...groups].sort(([a], [b]) => a.localeCompare(b))) {
    const v = await profileViolation(profile, files);
    if (v) violations.push(v);
  }
  const metadata: Record<string, string> = { profiles: [...groups.keys()].sort().join(', ') || 'none' };
  if (!linters || manifests.length === 0) return { violations, metadata };
  // Every profile's directory sits in the one output directory cdk8s synth gave the app.
  const lint = linterResult(dirname(dirname(manifests[0])));
  return { violations: [...violations, ...lint.violations], metadata: { ...metadata, ...lint.metadata } };
}

try {
  process.stdout.write(`${JSON.stringify(await check(process.argv.slice(2)))}\n`);
} catch (err) {
  console.error(`check-manifests: ${(err as Error).message}`);
  process.exitCode = 1;
}
