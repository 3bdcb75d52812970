import { Component, componentSelector, DeployPhase } from '../../labels.js';
import type { Manifest } from '../../synth.js';
import { applyAll } from '../apply.js';
import { clientEndpoints } from '../client-access.js';
import { awaitVolumesWiped, destroyProfile } from './destroy.js';
import { findManifest, manifestsOfPhase, readManifests } from '../manifests.js';
import { waitForJob, waitForRollout } from '../waits.js';
import { waitContext, type CommandContext } from './context.js';
import { CommandError, FailedError, RefusedError } from '../../errors.js';
import type { ClusterCommand } from './command.js';
import { smoke } from './smoke.js';
import { otherLiveProfiles, otherProfileLiveError } from '../other-profiles.js';
import { refuseTakeovers } from '../ownership.js';
import { ignoreCheckOption, preflight } from './check.js';

/**
 * The deploy's steps: each applies its phases, then waits for them in order. etcd, the membership
 * Job and the data plane are applied together, so that every claim is provisioned at once and
 * every pod started while etcd starts. The order still holds inside the pods: the Job retries until
 * etcd serves and writes the whole membership in one transaction, and each Sand Store pod's
 * wait-for-membership holds the node back until its key, and with it every member's, is in etcd (a
 * fresh etcd: its claim went with the clean slate). Both reach etcd through its client Service,
 * whose name resolves before etcd's pod has an address (a member's name looked up then would be
 * NXDOMAIN, which CoreDNS caches). The waits keep their order: etcd Ready, the Job Complete, the
 * data plane rolled out.
 */
export const DEPLOY_STEPS: readonly (readonly DeployPhase[])[] = [
  [DeployPhase.base],
  [DeployPhase.controlPlane, DeployPhase.bootstrap, DeployPhase.dataPlane],
  [DeployPhase.clientAccess],
];

/** The deploy's last wait: the last run's volumes wiped, with the new deployment already Ready. */
const WIPE_PHASE = 'wipe';

/** Records how far a deploy got, so an interrupt or failure can say what state the cluster is in. */
interface DeployProgress {
  phase: string;
  readonly applied: string[];
}

/** One profile at a time: refused while another is live on the cluster. */
async function refuseOtherProfiles(ctx: CommandContext): Promise<void> {
  const others = await otherLiveProfiles(ctx.kube, ctx.profile.name);
  if (others.length > 0)
    throw otherProfileLiveError(others, { profileName: ctx.profile.name, context: ctx.target.context });
}

/**
 * Flow 3: the pre-flight (no other Sand Store profile live on the cluster, other-profiles.ts; no
 * object of someone else's that dist/ would take over, ownership.ts; then the checks of `check`,
 * commands/check.ts), a clean slate (destroy, waited for), then server-side apply in the steps of
 * DEPLOY_STEPS: base objects; etcd, the membership bootstrap and the data plane together, waited
 * for in that order (etcd until Ready; the Job until Complete, a failed Job failing at once; the
 * data plane until rolled out); the node ports.
 */
export async function deploy(
  ctx: CommandContext,
  progress: DeployProgress,
  opts: { ignoreChecks?: readonly string[] } = {},
): Promise<void> {
  const manifests = await readManifests(ctx.distDir, ctx.profile);
  // Read-only, before the lock (the first write): a deploy the cluster cannot hold sends no change.
  // The refusals that name their cause first: another profile's pods and node ports, or someone
  // else's objects, would otherwise surface as the checks' symptoms (no room, ports held).
  await refuseOtherProfiles(ctx);
  await refuseTakeovers(ctx.kube, ctx.profile.name, ctx.target.context, manifests, 'deploy');
  await preflight(ctx, manifests, opts.ignoreChecks);

  await ctx.holdLock();
  // Again after the lock: two deploys of different profiles started together then see each other's lock.
  await refuseOtherProfiles(ctx);
  // The seed's clean-slate guarantee: no claim (no Raft state, no chunks) survives into a new run,
  // and the old volumes are wiped before the deploy reports success. Their wiping runs alongside
  // the new deployment (no new claim can bind an old volume), off the deploy's critical path.
  progress.phase = 'destroy';
  const { wiping } = await destroyProfile(waitContext(ctx), manifests, { namespace: 'keep', volumes: 'return' });
  for (const step of DEPLOY_STEPS) {
    for (const phase of step) await applyPhase(ctx, progress, phase, manifestsOfPhase(manifests, phase));
    for (const phase of step) {
      progress.phase = phase;
      await waitForPhase(ctx, phase, manifestsOfPhase(manifests, phase));
    }
  }
  progress.phase = WIPE_PHASE;
  await awaitVolumesWiped(waitContext(ctx), wiping);
  progress.phase = 'done';
  // Where to point a client, without an order: Sand Store clients need the leader's address first
  // (see client.ts), and an election may still be under way; `client` orders them when asked.
  const endpoints = await clientEndpoints(ctx, manifests);
  // A few addresses show the form; at 51 replicas the whole list would bury the line (`client` has it).
  const shown = endpoints
    .slice(0, SHOWN_ADDRESSES)
    .map((e) => e.address)
    .join(', ');
  const more = endpoints.length > SHOWN_ADDRESSES ? ` and ${endpoints.length - SHOWN_ADDRESSES} more` : '';
  const reach = endpoints.length
    ? `; clients outside the cluster reach the pods at ${shown}${more}; \`npm run client -- ` +
      `--profile=${ctx.profile.name} [-- <client>]\` lists them all leader first or runs a ` +
      `Sand Store client with them`
    : '';
  ctx.report.success(
    `profile ${ctx.profile.name} deployed to ${ctx.target.context} in ${ctx.report.elapsed()}${reach}`,
  );
}

async function applyPhase(
  ctx: CommandContext,
  progress: DeployProgress,
  phase: DeployPhase,
  objects: readonly Manifest[],
): Promise<void> {
  progress.phase = phase;
  if (objects.length === 0) return;
  await applyAll(ctx.kube, objects);
  progress.applied.push(phase);
  ctx.report.step(phase, `applied ${objects.length} object${objects.length === 1 ? '' : 's'}`);
}

/** Waits for what a phase applied: etcd Ready, the membership Job Complete, the data plane rolled out. */
async function waitForPhase(ctx: CommandContext, phase: DeployPhase, objects: readonly Manifest[]): Promise<void> {
  if (phase === DeployPhase.controlPlane) {
    const etcd = required(findManifest(objects, 'StatefulSet', Component.controlPlane), 'the etcd StatefulSet', phase);
    await waitForRollout(ctx, etcd.metadata.name, componentSelector(ctx.profile.name, Component.controlPlane), {
      podReadySeconds: ctx.timeoutSeconds,
      failFast: false,
    });
    const members = etcd.spec?.replicas ?? 1;
    ctx.report.step(phase, `etcd Ready (${members} member${members === 1 ? '' : 's'})`);
  } else if (phase === DeployPhase.bootstrap) {
    const job = required(
      findManifest(objects, 'Job', Component.membershipBootstrap),
      'the membership bootstrap Job',
      phase,
    );
    await waitForJob(ctx, job.metadata.name);
    ctx.report.step(phase, `membership written (Job ${job.metadata.name} Complete)`);
  } else if (phase === DeployPhase.dataPlane) {
    const sts = required(
      findManifest(objects, 'StatefulSet', Component.dataPlane),
      'the Sand Store StatefulSet',
      phase,
    );
    await waitForRollout(ctx, sts.metadata.name, componentSelector(ctx.profile.name, Component.dataPlane), {
      podReadySeconds: ctx.timeoutSeconds,
      failFast: false,
    });
    ctx.report.step(phase, `${sts.spec?.replicas ?? 1} Sand Store pods Ready, claims Bound`);
  }
}

/** How many client addresses deploy's last line shows. */
const SHOWN_ADDRESSES = 5;

function required<M extends Manifest>(m: M | undefined, what: string, phase: string): M {
  if (!m) throw new FailedError(`dist/ has no ${what} in phase ${phase}; re-run \`npm run synth\``);
  return m;
}

/** `deploy` (Flow 3), optionally followed by the smoke test. */
export const deployCommand: ClusterCommand<{ smoke?: boolean; ignoreCheck?: string[] }> = {
  name: 'deploy',
  description: 'clean-slate deploy (Flow 3): destroy, then apply in phases, waiting for each',
  configure: (command) => command.option('--smoke', 'end with the smoke test').addOption(ignoreCheckOption()),
  changesCluster: true,
  needsNamedProfile: 'always',
  run: async (ctx, opts) => {
    const progress: DeployProgress = { phase: 'start', applied: [] };
    try {
      await deploy(ctx, progress, { ignoreChecks: opts.ignoreCheck });
    } catch (err) {
      // How far it got and how to go on, whatever stopped it once it had begun (the error itself
      // says what went wrong); a refusal changed nothing.
      if (err instanceof CommandError && progress.phase === WIPE_PHASE) {
        err.withDetails(
          `The new deployment is Ready on new claims. The last run's volumes are not all wiped yet: its Raft state and chunks may still be on the node's disk while the provisioner goes on. Benchmark once \`kubectl --context ${ctx.target.context} get pv\` shows none of them Released.`,
        );
      } else if (err instanceof CommandError && !(err instanceof RefusedError) && progress.phase !== 'start') {
        err.withDetails(
          `Deploy stopped in phase "${progress.phase}"; phases applied: ${progress.applied.join(', ') || 'none'}. The cluster holds a partial deployment that Kubernetes keeps converging; \`npm run deploy -- --profile=${ctx.profile.name}\` starts over from a clean slate, \`npm run destroy -- --profile=${ctx.profile.name}\` removes it, \`npm run status -- --profile=${ctx.profile.name}\` shows it.`,
        );
      }
      throw err;
    }
    if (opts.smoke) await smoke(ctx);
  },
};
