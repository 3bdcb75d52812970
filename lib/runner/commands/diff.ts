import type { KubeObject } from '../kube.js';
import { DeployPhase } from '../../labels.js';
import { phaseOf, readManifests } from '../manifests.js';
import type { CommandContext } from './context.js';
import type { ClusterCommand } from './command.js';

/** Server-populated fields that are noise in a review diff. */
function comparable(o: KubeObject | undefined): unknown {
  if (!o) return undefined;
  const copy = structuredClone(o);
  delete copy.status;
  for (const f of ['managedFields', 'resourceVersion', 'uid', 'generation', 'creationTimestamp', 'selfLink'])
    delete copy.metadata[f];
  const annotations = copy.metadata.annotations;
  if (annotations) {
    delete annotations['deprecated.daemonset.template.generation'];
    if (Object.keys(annotations).length === 0) delete copy.metadata.annotations;
  }
  return copy;
}

/**
 * `diff`: each object of dist/ as the API server would store it (server-side apply, dry run) against
 * what is live, as a unified YAML diff. Exit code 1 when anything differs, like `kubectl diff`.
 */
async function diff(ctx: CommandContext): Promise<boolean> {
  // Loaded here rather than at start-up: only this command needs the diff and YAML libraries.
  const [
    { createTwoFilesPatch },
    {
      default: { stringify },
    },
  ] = await Promise.all([import('diff'), import('yaml')]);
  // On-demand objects (the smoke-test Job) are not part of a deployment, so never "missing" from one.
  const manifests = (await readManifests(ctx.distDir, ctx.profile)).filter((m) => phaseOf(m) !== DeployPhase.onDemand);
  let changed = 0;
  for (const m of manifests) {
    const live = await ctx.kube.find(m.kind, m.metadata.name, m.metadata.namespace);
    let planned: KubeObject | undefined;
    try {
      planned = await ctx.kube.apply(m, { dryRun: true });
    } catch (err) {
      // A namespaced object cannot be dry-run into a namespace that does not exist yet.
      planned = m;
      if (live) throw err;
    }
    const before = live ? stringify(comparable(live), { sortMapEntries: true }) : '';
    const after = stringify(comparable(planned), { sortMapEntries: true });
    if (before === after) continue;
    changed++;
    const name = `${m.kind}/${m.metadata.name}`;
    ctx.report.info(
      createTwoFilesPatch(live ? `live/${name}` : '/dev/null', `dist/${name}`, before, after, '', '', { context: 3 })
        .split('\n')
        .slice(1)
        .map((l) => colourLine(ctx, l))
        .join('\n'),
    );
  }
  ctx.report.info(
    changed === 0
      ? `no differences: ${ctx.target.context} runs what dist/${ctx.profile.name}/ says`
      : `${changed} of ${manifests.length} objects would change`,
  );
  return changed > 0;
}

function colourLine(ctx: CommandContext, line: string): string {
  if (line.startsWith('+') && !line.startsWith('+++')) return ctx.report.paint('green', line);
  if (line.startsWith('-') && !line.startsWith('---')) return ctx.report.paint('red', line);
  if (line.startsWith('@@')) return ctx.report.paint('cyan', line);
  return line;
}

/** `diff`: exit code 1 when anything differs, like `kubectl diff`. */
export const diffCommand: ClusterCommand = {
  name: 'diff',
  description: 'live objects against dist/ (server-side dry run), as a YAML diff; exit 1 if different',
  run: async (ctx) => ((await diff(ctx)) ? 1 : 0),
};
