import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ImageOptions } from './build.js';
import { DOCKERFILE, registryHost } from './docker-args.js';
import { findOnPath } from '../executables.js';
import { describeExit, run, type Finished } from './process.js';

/** `docker info` against an unreachable remote DOCKER_HOST can hang; a pre-flight must not. */
const DAEMON_CHECK_TIMEOUT_MS = 20_000;

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
      `the docker CLI is not on PATH (${env.PATH || 'PATH is empty'}): install Docker (Docker ` +
        `Desktop, or Docker Engine with its CLI) ` +
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

async function checkDaemon(
  docker: string,
  env: NodeJS.ProcessEnv,
  log: (line: string) => void,
): Promise<string | undefined> {
  const fix =
    'start Docker (Docker Desktop, or `sudo systemctl start docker`), or point DOCKER_HOST ' +
    '/ `docker context use` at a running daemon';
  let finished: Finished;
  try {
    finished = await run(docker, ['info', '--format', '{{.ServerVersion}}'], env, undefined, DAEMON_CHECK_TIMEOUT_MS);
  } catch (error) {
    return `the docker CLI at ${docker} could not be run (${(error as Error).message}): reinstall Docker or fix PATH`;
  }
  if (finished.timedOut)
    return `the Docker daemon did not answer \`docker info\` within ` + `${DAEMON_CHECK_TIMEOUT_MS / 1000} s: ${fix}`;
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
    const reason =
      (error as NodeJS.ErrnoException).code === 'ENOENT'
        ? 'does not exist'
        : `cannot be read (${(error as Error).message})`;
    return (
      `no credentials for registry ${host}: ${configFile} ${reason}; ` +
      `${login}${env.DOCKER_CONFIG ? ' with this DOCKER_CONFIG' : ''}`
    );
  }

  const names = hostAliases(host);
  const matching = (keys: Iterable<string>) => [...keys].find((key) => names.has(hostOfConfigKey(key)));

  const helperKey = matching(Object.keys(config.credHelpers ?? {}));
  if (helperKey !== undefined && config.credHelpers?.[helperKey]) {
    log(
      `pre-flight: credentials for ${host}: credHelpers[${JSON.stringify(helperKey)}] ` +
        `(docker-credential-${config.credHelpers[helperKey]})`,
    );
    return undefined;
  }
  const authKey = matching(
    Object.entries(config.auths ?? {})
      .filter(([, entry]) => entry?.auth || entry?.identitytoken)
      .map(([key]) => key),
  );
  if (authKey !== undefined) {
    log(`pre-flight: credentials for ${host}: auths[${JSON.stringify(authKey)}] in ${configFile}`);
    return undefined;
  }
  if (config.credsStore) {
    log(
      `pre-flight: credentials for ${host}: credsStore "${config.credsStore}" ` +
        `(docker-credential-${config.credsStore}; assumed to hold the login)`,
    );
    return undefined;
  }
  const known = [
    ...new Set([...Object.keys(config.auths ?? {}), ...Object.keys(config.credHelpers ?? {})].map(hostOfConfigKey)),
  ];
  const others = known.length > 0 ? ` (it has entries only for: ${known.join(', ')})` : '';
  return (
    `no credentials for registry ${host} in ${configFile}${others}: ${login}, or set ` +
    `DOCKER_CONFIG to the directory whose config.json holds them`
  );
}

function checkSource(sourcePath: string): string | undefined {
  const where = resolve(sourcePath);
  const stat = statSync(where, { throwIfNoEntry: false });
  if (stat === undefined)
    return `the source path ${where} does not exist: pass --source=<path to a Sand Store checkout>`;
  if (!stat.isDirectory())
    return `the source path ${where} is not a directory: pass --source=<path to a Sand Store checkout>`;
  if (!statSync(join(where, DOCKERFILE), { throwIfNoEntry: false })?.isFile()) {
    return (
      `the source path ${where} has no ${DOCKERFILE}: --source must be the root of a Sand ` +
      `Store checkout (the directory holding deploy/docker/)`
    );
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
  return key
    .replace(/^[a-z]+:\/\//i, '')
    .split('/')[0]
    .toLowerCase();
}

function isLoopback(host: string): boolean {
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0];
  return name === 'localhost' || name === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(name);
}

export function loginCommand(host: string): string {
  return DOCKER_HUB.has(host) ? 'docker login' : `docker login ${host}`;
}
