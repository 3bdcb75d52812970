import { spawn } from 'node:child_process';
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { imageRef, type Profile } from '../profile.js';

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
  /** Line printer for progress (the CLI passes console.log). */
  readonly log: (line: string) => void;
  /** Environment for the docker CLI (PATH, DOCKER_CONFIG, HOME); @default process.env */
  readonly env?: NodeJS.ProcessEnv;
}

export interface ImageResult {
  readonly image: string;
  readonly pushed: boolean;
}

/** Something must be fixed before building (exit code 2); nothing was built or pushed. */
export class ImagePreflightError extends Error {
  public constructor(public readonly problems: readonly string[]) {
    super(
      `cannot build the image (${problems.length} problem${problems.length === 1 ? '' : 's'}); nothing was built or pushed:\n` +
        problems.map((p) => `  - ${p}`).join('\n'),
    );
    this.name = 'ImagePreflightError';
  }
}

/** `docker build` or `docker push` failed (exit code 1); no later step ran. */
export class ImageBuildError extends Error {
  public constructor(
    public readonly step: 'build' | 'push',
    /** docker's exit code; null when it could not be started or was killed by a signal. */
    public readonly exitCode: number | null,
    message: string,
  ) {
    super(message);
    this.name = 'ImageBuildError';
  }
}

const DOCKERFILE = join('deploy', 'docker', 'Dockerfile');
/** `docker info` against an unreachable remote DOCKER_HOST can hang; a pre-flight must not. */
const DAEMON_CHECK_TIMEOUT_MS = 20_000;

/**
 * The reference the image is built, tagged and pushed as. The seed names it
 * `<registry>/sandstore-node:<profile>-latest`; here the repository and tag come from the profile
 * (`image.repository`, default "sandstore-node"; `image.tag`, which the shipped profiles set to
 * "<name>-latest"), so this is exactly `imageRef(profile)`, the reference the StatefulSet pulls: the
 * pushed image and the deployed one cannot drift apart.
 */
export function imageTag(profile: Profile): string {
  return imageRef(profile);
}

/**
 * The argv after `docker` that builds the profile's image. GO_FLAGS is `-tags=a,b` rather than the
 * seed's `-tags a b`: one word with no spaces, so it survives the Dockerfile expanding $GO_FLAGS
 * unquoted, and Go reads comma-separated tags.
 */
export function dockerBuildArgs(profile: Profile, sourcePath: string): string[] {
  const { goTags, platform } = profile.build;
  const goArch = platform.split('/')[1];
  return [
    'build',
    '--platform', platform,
    '--target', 'runner',
    '--file', join(sourcePath, DOCKERFILE),
    '--build-arg', `TAGS=${goTags.join(' ')}`,
    '--build-arg', `GO_FLAGS=-tags=${goTags.join(',')}`,
    '--build-arg', 'GOOS=linux',
    '--build-arg', `GOARCH=${goArch}`,
    '--tag', imageTag(profile),
    sourcePath,
  ];
}

/**
 * The registry host an image under `registry` is pushed to, as docker decides it: the first path
 * component when it looks like a host (has a "." or ":" or is "localhost"), else Docker Hub
 * ("myuser" alone means docker.io/myuser).
 */
export function registryHost(registry: string): string {
  const first = registry.split('/')[0];
  const isHost = first.includes('.') || first.includes(':') || first === 'localhost';
  return isHost ? first.toLowerCase() : 'docker.io';
}

/**
 * Everything that would stop the build or push, each with what to do about it; empty when all is
 * well. Checks the docker CLI, its daemon, registry credentials (only when pushing) and the source
 * checkout, all of them whatever fails first.
 */
export async function preflight(opts: ImageOptions): Promise<string[]> {
  const env = opts.env ?? process.env;
  const problems: string[] = [];

  const docker = findOnPath('docker', env.PATH);
  if (docker === undefined) {
    problems.push(
      `the docker CLI is not on PATH (${env.PATH || 'PATH is empty'}): install Docker (Docker Desktop, or Docker Engine with its CLI) ` +
        'or add the directory holding `docker` to PATH',
    );
  } else {
    const daemonProblem = await checkDaemon(docker, env, opts.log);
    if (daemonProblem !== undefined) problems.push(daemonProblem);
  }

  if (opts.push ?? true) {
    const credentialProblem = checkCredentials(registryHost(opts.profile.image.registry), env, opts.log);
    if (credentialProblem !== undefined) problems.push(credentialProblem);
  }

  const sourceProblem = checkSource(opts.sourcePath);
  if (sourceProblem !== undefined) problems.push(sourceProblem);

  return problems;
}

/** Pre-flight, then `docker build`, then (unless push is false) `docker push`, each only if the one before succeeded. */
export async function buildAndPushImage(opts: ImageOptions): Promise<ImageResult> {
  const env = opts.env ?? process.env;
  const push = opts.push ?? true;
  const image = imageTag(opts.profile);

  const problems = await preflight(opts);
  if (problems.length > 0) throw new ImagePreflightError(problems);
  // Pre-flight found it; looked up again rather than threaded through so preflight stays a plain check.
  const docker = findOnPath('docker', env.PATH)!;
  const sourcePath = resolve(opts.sourcePath);

  opts.log(`image: ${image} for ${opts.profile.build.platform}, Go tags ${opts.profile.build.goTags.join(',')}, from ${sourcePath}`);
  await runStep('build', docker, dockerBuildArgs(opts.profile, sourcePath), env, opts.log, (code, lastError) =>
    `docker build of ${image} failed (${describeExit(code)})${lastError ? `: ${lastError}` : ''}. Nothing was pushed. ` +
      'Docker\'s output above shows the failing stage (a Go compile error appears under the `go build` step); fix it and run again.');
  if (!push) {
    opts.log(`image: built ${image}; not pushed (push disabled)`);
    return { image, pushed: false };
  }
  const host = registryHost(opts.profile.image.registry);
  await runStep('push', docker, ['push', image], env, opts.log, (code, lastError) =>
    `docker push of ${image} failed (${describeExit(code)})${lastError ? `: ${lastError}` : ''}. The image was built locally but is not in the registry. ` +
      `Check that \`${loginCommand(host)}\` succeeds and that this account may push to ${opts.profile.image.registry}/${opts.profile.image.repository}, then run again.`);
  opts.log(`image: pushed ${image}`);
  return { image, pushed: true };
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

async function checkDaemon(docker: string, env: NodeJS.ProcessEnv, log: (line: string) => void): Promise<string | undefined> {
  const fix = 'start Docker (Docker Desktop, or `sudo systemctl start docker`), or point DOCKER_HOST / `docker context use` at a running daemon';
  let finished: Finished;
  try {
    finished = await run(docker, ['info', '--format', '{{.ServerVersion}}'], env, undefined, DAEMON_CHECK_TIMEOUT_MS);
  } catch (error) {
    return `the docker CLI at ${docker} could not be run (${(error as Error).message}): reinstall Docker or fix PATH`;
  }
  if (finished.timedOut) return `the Docker daemon did not answer \`docker info\` within ${DAEMON_CHECK_TIMEOUT_MS / 1000} s: ${fix}`;
  if (finished.exitCode !== 0) {
    const said = finished.firstStderrLine ? `: ${finished.firstStderrLine}` : '';
    return `the Docker daemon is not reachable (\`docker info\` ${describeExit(finished.exitCode)}${said}): ${fix}`;
  }
  log(`pre-flight: docker daemon ${finished.stdout.trim() || '(version unknown)'} reachable via ${docker}`);
  return undefined;
}

interface DockerConfig {
  auths?: Record<string, { auth?: string; identitytoken?: string } | undefined>;
  credHelpers?: Record<string, string | undefined>;
  credsStore?: string;
}

/**
 * Looks for credentials the way the docker CLI does: config.json in $DOCKER_CONFIG, else
 * ~/.docker; a per-registry helper (credHelpers) first, then an inline auths entry, then the
 * default store (credsStore). A store is only known to exist, not to hold this registry's login:
 * asking it would run the helper, which may prompt (a keychain); push failures still say so.
 */
function checkCredentials(host: string, env: NodeJS.ProcessEnv, log: (line: string) => void): string | undefined {
  // A registry on the operator's own machine (registry:2 for a local cluster) takes anonymous pushes.
  if (isLoopback(host)) {
    log(`pre-flight: ${host} is on this machine; no registry credentials needed`);
    return undefined;
  }
  const configDir = env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker');
  const configFile = join(configDir, 'config.json');
  const login = `run \`${loginCommand(host)}\``;

  let config: DockerConfig;
  try {
    config = JSON.parse(readFileSync(configFile, 'utf8')) as DockerConfig;
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be read (${(error as Error).message})`;
    return `no credentials for registry ${host}: ${configFile} ${reason}; ${login}${env.DOCKER_CONFIG ? ' with this DOCKER_CONFIG' : ''}`;
  }

  const names = hostAliases(host);
  const matching = (keys: Iterable<string>) => [...keys].find((key) => names.has(hostOfConfigKey(key)));

  const helperKey = matching(Object.keys(config.credHelpers ?? {}));
  if (helperKey !== undefined && config.credHelpers?.[helperKey]) {
    log(`pre-flight: credentials for ${host}: credHelpers[${JSON.stringify(helperKey)}] (docker-credential-${config.credHelpers[helperKey]})`);
    return undefined;
  }
  const authKey = matching(Object.entries(config.auths ?? {}).filter(([, entry]) => entry?.auth || entry?.identitytoken).map(([key]) => key));
  if (authKey !== undefined) {
    log(`pre-flight: credentials for ${host}: auths[${JSON.stringify(authKey)}] in ${configFile}`);
    return undefined;
  }
  if (config.credsStore) {
    log(`pre-flight: credentials for ${host}: credsStore "${config.credsStore}" (docker-credential-${config.credsStore}; assumed to hold the login)`);
    return undefined;
  }
  const known = [...new Set([...Object.keys(config.auths ?? {}), ...Object.keys(config.credHelpers ?? {})].map(hostOfConfigKey))];
  const others = known.length > 0 ? ` (it has entries only for: ${known.join(', ')})` : '';
  return `no credentials for registry ${host} in ${configFile}${others}: ${login}, or set DOCKER_CONFIG to the directory whose config.json holds them`;
}

function checkSource(sourcePath: string): string | undefined {
  const where = resolve(sourcePath);
  const stat = statSync(where, { throwIfNoEntry: false });
  if (stat === undefined) return `the source path ${where} does not exist: pass --source=<path to a Sand Store checkout>`;
  if (!stat.isDirectory()) return `the source path ${where} is not a directory: pass --source=<path to a Sand Store checkout>`;
  if (!statSync(join(where, DOCKERFILE), { throwIfNoEntry: false })?.isFile()) {
    return `the source path ${where} has no ${DOCKERFILE}: --source must be the root of a Sand Store checkout (the directory holding deploy/docker/)`;
  }
  return undefined;
}

/** Docker Hub is stored under several names ("https://index.docker.io/v1/" is what `docker login` writes). */
const DOCKER_HUB = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

function hostAliases(host: string): Set<string> {
  return DOCKER_HUB.has(host) ? DOCKER_HUB : new Set([host]);
}

/** "https://index.docker.io/v1/" → "index.docker.io": config keys may carry a scheme and a path. */
function hostOfConfigKey(key: string): string {
  return key.replace(/^[a-z]+:\/\//i, '').split('/')[0].toLowerCase();
}

function isLoopback(host: string): boolean {
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0];
  return name === 'localhost' || name === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(name);
}

function loginCommand(host: string): string {
  return DOCKER_HUB.has(host) ? 'docker login' : `docker login ${host}`;
}

function describeExit(exitCode: number | null): string {
  return exitCode === null ? 'killed by a signal' : `exit code ${exitCode}`;
}

/** The executable `name` in the first PATH directory that has one, as an absolute path. */
function findOnPath(name: string, path: string | undefined): string | undefined {
  for (const dir of (path ?? '').split(delimiter)) {
    // An empty entry would mean the working directory; docker is never meant to be found there.
    if (dir === '') continue;
    const candidate = resolve(dir, name);
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      continue;
    }
  }
  return undefined;
}

interface Finished {
  readonly exitCode: number | null;
  readonly timedOut: boolean;
  /** Only collected when output is not forwarded. */
  readonly stdout: string;
  readonly firstStderrLine: string | undefined;
  readonly lastStderrLine: string | undefined;
}

/**
 * Runs a command to completion. With `onLine`, stdout and stderr are forwarded line by line as
 * they arrive (docker's progress); otherwise stdout is collected. Rejects only when the process
 * cannot be started.
 */
function run(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  onLine?: (line: string) => void,
  timeoutMs?: number,
): Promise<Finished> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let firstStderrLine: string | undefined;
    let lastStderrLine: string | undefined;
    let timedOut = false;
    let settled = false;
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);

    const outLines = lineSplitter((line) => onLine?.(line));
    const errLines = lineSplitter((line) => {
      if (line.trim() !== '') {
        firstStderrLine ??= line.trim();
        lastStderrLine = line.trim();
      }
      onLine?.(line);
    });
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      if (onLine) outLines.push(chunk);
      else stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => errLines.push(chunk));

    child.on('error', (error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (exitCode) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      outLines.end();
      errLines.end();
      resolvePromise({ exitCode, timedOut, stdout, firstStderrLine, lastStderrLine });
    });
  });
}

/** Turns chunks into whole lines; a progress bar's "\r" redraws count as line ends too. */
function lineSplitter(emit: (line: string) => void): { push(chunk: string): void; end(): void } {
  let pending = '';
  return {
    push(chunk) {
      const parts = (pending + chunk).split(/\r\n|\n|\r/);
      pending = parts.pop() ?? '';
      for (const line of parts) emit(line);
    },
    end() {
      if (pending !== '') emit(pending);
      pending = '';
    },
  };
}
