import { resolve } from 'node:path';
import { FailedError, RefusedError } from '../errors.js';
import { imageRef, type Profile } from '../profile.js';
import { dockerBuildArgs, registryHost } from './docker-args.js';
import { loginCommand, preflight } from './preflight.js';
import { findOnPath } from '../executables.js';
import { describeExit, run, type Finished } from './process.js';

/**
 * The seed's Flow 1 (`npm run image -- --profile=<p> --source=<path>`): build the Sand Store node
 * image for a profile from a Sand Store checkout and push it. Every pre-flight problem is found and
 * reported together before anything is built; a failed build is never pushed; nothing here touches
 * a cluster.
 */

export interface ImageOptions {
  readonly profile: Profile;
  /** Sand Store source checkout; must hold deploy/docker/Dockerfile. */
  readonly sourcePath: string;
  /** Whether to push after building. @default true */
  readonly push?: boolean;
  /** Line printer for docker's output and the steps' progress (the runner passes its reporter's info). */
  readonly log: (line: string) => void;
  /** Environment for the docker CLI (PATH, DOCKER_CONFIG, HOME); @default process.env */
  readonly env?: NodeJS.ProcessEnv;
}

export interface ImageResult {
  readonly image: string;
  readonly pushed: boolean;
  /** The manifest digest the registry stored, as `docker push` reports it; undefined when not pushed. */
  readonly digest?: string;
}

/** `docker push`'s last line: `<tag>: digest: sha256:<hex> size: <bytes>`. */
const PUSHED_DIGEST = /\bdigest: (sha256:[0-9a-f]{64})\b/;

/** Something must be fixed before building (exit code 2); nothing was built or pushed. */
export class ImagePreflightError extends RefusedError {
  public constructor(public readonly problems: readonly string[]) {
    super(
      `cannot build the image (${problems.length} ` +
        `problem${problems.length === 1 ? '' : 's'}); nothing was built or pushed and no ` +
        `cluster was contacted:`,
      problems,
    );
  }
}

/** `docker build` or `docker push` failed (exit code 1); no later step ran. */
export class ImageBuildError extends FailedError {
  public constructor(
    public readonly step: 'build' | 'push',
    /** docker's exit code; null when it could not be started or was killed by a signal. */
    public readonly dockerExitCode: number | null,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Pre-flight, then `docker build`, then (unless push is false) `docker push`, each only if the one
 * before succeeded.
 */
export async function buildAndPushImage(opts: ImageOptions): Promise<ImageResult> {
  const env = opts.env ?? process.env;
  const push = opts.push ?? true;
  const image = imageRef(opts.profile);

  const problems = await preflight(opts);
  if (problems.length > 0) throw new ImagePreflightError(problems);
  // Pre-flight found it; looked up again rather than threaded through so preflight stays a plain check.
  const docker = findOnPath('docker', env.PATH)!;
  const sourcePath = resolve(opts.sourcePath);

  opts.log(
    `image: ${image} for ${opts.profile.build.platform}, Go tags ` +
      `${opts.profile.build.goTags.join(',')}, from ${sourcePath}`,
  );
  await runStep(
    'build',
    docker,
    dockerBuildArgs(opts.profile, sourcePath),
    env,
    opts.log,
    (code, lastError) =>
      `docker build of ${image} failed ` +
      `(${describeExit(code)})${lastError ? `: ${lastError}` : ''}. Nothing was pushed. ` +
      "Docker's output above shows the failing stage (a Go compile error appears under the " +
      '`go build` step); fix it and run again.',
  );
  if (!push) {
    opts.log(`image: built ${image}; not pushed (push disabled)`);
    return { image, pushed: false };
  }
  const host = registryHost(opts.profile.image.registry);
  let digest: string | undefined;
  await runStep(
    'push',
    docker,
    ['push', image],
    env,
    (line) => {
      digest = PUSHED_DIGEST.exec(line)?.[1] ?? digest;
      opts.log(line);
    },
    (code, lastError) =>
      `docker push of ${image} failed ` +
      `(${describeExit(code)})${lastError ? `: ${lastError}` : ''}. The image was built ` +
      `locally but is not in the registry. ` +
      `Check that \`${loginCommand(host)}\` succeeds and that this account may push to ` +
      `${opts.profile.image.registry}/${opts.profile.image.repository}, then run again.`,
  );
  if (digest === undefined) {
    throw new ImageBuildError(
      'push',
      0,
      `docker push of ${image} succeeded but printed no digest (\`digest: sha256:…\`), so what the ` +
        `registry holds is not known; check with \`docker buildx imagetools inspect ${image}\` or the registry`,
    );
  }
  opts.log(`image: pushed ${image}@${digest}`);
  return { image, pushed: true, digest };
}

async function runStep(
  step: 'build' | 'push',
  docker: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  log: (line: string) => void,
  failureMessage: (exitCode: number | null, lastErrorLine: string | undefined) => string,
): Promise<void> {
  const started = Date.now();
  log(`${step}: docker ${args.join(' ')}`);
  let finished: Finished;
  try {
    finished = await run(docker, args, env, (line) => log(`  ${line}`));
  } catch (error) {
    throw new ImageBuildError(step, null, `could not start docker ${step}: ${(error as Error).message}`);
  }
  const elapsed = `${((Date.now() - started) / 1000).toFixed(1)} s`;
  if (finished.exitCode !== 0) {
    log(`${step}: failed after ${elapsed}`);
    throw new ImageBuildError(step, finished.exitCode, failureMessage(finished.exitCode, finished.lastStderrLine));
  }
  log(`${step}: done in ${elapsed}`);
}
