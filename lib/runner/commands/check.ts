import { InvalidArgumentError, Option } from 'commander';
import { FailedError } from '../../errors.js';
import type { Manifest } from '../../synth.js';
import { readManifests } from '../manifests.js';
import { checkInput, runChecks, type Finding, type Verdict } from '../preflight/checks.js';
import type { Reporter } from '../report.js';
import type { ClusterCommand } from './command.js';
import type { CommandContext } from './context.js';

/** The checks by name, as --ignore-check takes them. */
export const CHECK_NAMES = [
  'connection',
  'version',
  'nodes',
  'storage class',
  'provisioner',
  'resources',
  'node ports',
  'image',
] as const;
/**
 * Left out of deploy's pre-flight: it never blocks, and a registry that does not answer would cost
 * every deploy its timeout.
 */
const NOT_IN_DEPLOY: readonly string[] = ['image'];
const IGNORABLE = CHECK_NAMES.filter((c) => c !== 'connection' && !NOT_IN_DEPLOY.includes(c)).map((c) =>
  c.replace(' ', '-'),
);

const MARK: Readonly<Record<Verdict, [glyph: string, style: 'green' | 'red' | 'yellow']>> = {
  ok: ['✓', 'green'],
  problem: ['✗', 'red'],
  warning: ['!', 'yellow'],
  notRun: ['!', 'yellow'],
};

/** One line per finding: the mark, the check, what was found, and for a problem or warning the fix. */
export function findingLine(f: Finding, report: Pick<Reporter, 'paint'>): string {
  const [glyph, style] = MARK[f.verdict];
  return `${report.paint(style, glyph)} ${report.paint('bold', f.check)}: ${f.text}${f.fix ? `; fix: ${f.fix}` : ''}`;
}

/** --ignore-check: a comma-separated list of check names (a space in a name written as "-"), or "all". */
export function ignoredChecks(value: string): string[] {
  const names = value.split(',');
  if (value === 'all') return IGNORABLE;
  const bad = names.filter((n) => !IGNORABLE.includes(n));
  if (bad.length > 0)
    throw new InvalidArgumentError(
      `expected "all" or check names separated by commas, from ${IGNORABLE.join(', ')}; got ${JSON.stringify(bad.join(','))}`,
    );
  return names;
}

export const ignoreCheckOption = () =>
  new Option(
    '--ignore-check <checks>',
    `pre-flight checks whose problems do not refuse the deploy (${IGNORABLE.join(', ')}, or all); they are still run and printed`,
  ).argParser(ignoredChecks);

/**
 * Deploy's pre-flight: the same checks as `check`, before the deploy's first request that changes
 * anything (the lock included). A problem (✗) refuses the deploy unless its check is ignored;
 * warnings and checks that could not run are printed and the deploy goes on.
 */
export async function preflight(
  ctx: CommandContext,
  manifests: readonly Manifest[],
  ignore: readonly string[] = [],
): Promise<void> {
  const findings = await runChecks(checkInput(ctx.kube, ctx.profile, ctx.target.context, manifests), NOT_IN_DEPLOY);
  for (const f of findings.filter((x) => x.verdict !== 'ok')) ctx.report.info(findingLine(f, ctx.report));
  const blocking = findings.filter((f) => f.verdict === 'problem' && !ignore.includes(f.check.replace(' ', '-')));
  const passed = findings.filter((f) => f.verdict === 'ok').length;
  if (blocking.length === 0) {
    ctx.report.step(
      'pre-flight',
      `${passed} of ${findings.length} checks passed${findings.length > passed ? ' (the others printed above)' : ''}`,
    );
    return;
  }
  throw new FailedError(
    `the pre-flight found ${blocking.length === 1 ? 'a problem' : `${blocking.length} problems`} that would make the deploy of ${ctx.profile.name} fail (${blocking.map((f) => f.check).join(', ')}); nothing was changed`,
    [
      ...blocking.map((f) => `${f.check}: fix: ${f.fix ?? '(see above)'}`),
      `\`npm run check -- --profile=${ctx.profile.name}\` runs the checks alone; --ignore-check=<names> deploys despite them.`,
    ],
  );
}

/**
 * `check`: the pre-flight alone, read-only (GET requests only). Exit 0 when nothing blocks a
 * deploy and every check ran, 1 when a check found a problem or could not run, 2 refused.
 */
async function check(ctx: CommandContext): Promise<number> {
  const manifests = await readManifests(ctx.distDir, ctx.profile);
  const findings = await runChecks(checkInput(ctx.kube, ctx.profile, ctx.target.context, manifests));
  for (const f of findings) ctx.report.info(findingLine(f, ctx.report));
  const count = (v: Verdict) => findings.filter((f) => f.verdict === v).length;
  const [problems, warnings, notRun] = [count('problem'), count('warning'), count('notRun')];
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  const summary = [
    plural(problems, 'problem'),
    plural(warnings, 'warning'),
    ...(notRun ? [`${notRun} not run`] : []),
  ].join(', ');
  ctx.report.info(
    problems > 0
      ? `${summary}: a deploy of ${ctx.profile.name} would be refused`
      : `${summary}: ${notRun ? 'the checks that ran allow' : 'nothing blocks'} a deploy of ${ctx.profile.name}`,
  );
  return problems + notRun > 0 ? 1 : 0;
}

/** `check`. */
export const checkCommand: ClusterCommand = {
  name: 'check',
  description:
    'read-only pre-flight of the cluster for the profile: context, version, nodes, storage, resources, node ports, registry; exit 1 on a problem',
  run: (ctx) => check(ctx),
};
