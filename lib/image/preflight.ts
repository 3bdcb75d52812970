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
  const docker = findOnPath('docker', env.PATH);
  // The daemon and the registry are asked at the same time: each answer takes a round trip or a
  // process start, and the pre-flight is paid on every build, a cached one of a second included.
  const [dockerProblem, credentialProblem] = await Promise.all([
    docker === undefined
      ? `the docker CLI is not on PATH (${env.PATH || 'PATH is empty'}): install Docker (Docker ` +
        `Desktop, or Docker Engine with its CLI) ` +
        'or add the directory holding `docker` to PATH'
      : checkDaemon(docker, env, opts.log),
    (opts.push ?? true) ? checkCredentials(registryHost(opts.profile.image.registry), env, opts.log) : undefined,
  ]);
  return [dockerProblem, credentialProblem, checkSource(opts.sourcePath)].filter((p) => p !== undefined);
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

/** What docker has stored for a registry: a problem to report, or where the login is (and, inline, what). */
type StoredLogin = { problem: string } | { where: string; basicAuth?: string };

/**
 * Looks for credentials the way the docker CLI does: config.json in $DOCKER_CONFIG, else
 * ~/.docker; a per-registry helper (credHelpers) first, then an inline auths entry, then the
 * default store (credsStore). A store is only known to exist, not to hold this registry's login:
 * asking it would run the helper, which may prompt (a keychain); push failures still say so.
 */
function storedLogin(host: string, env: NodeJS.ProcessEnv): StoredLogin {
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
    return {
      problem:
        `no credentials for registry ${host}: ${configFile} ${reason}; ` +
        `${login}${env.DOCKER_CONFIG ? ' with this DOCKER_CONFIG' : ''}`,
    };
  }

  const names = hostAliases(host);
  const matching = (keys: Iterable<string>) => [...keys].find((key) => names.has(hostOfConfigKey(key)));

  const helperKey = matching(Object.keys(config.credHelpers ?? {}));
  if (helperKey !== undefined && config.credHelpers?.[helperKey]) {
    return { where: `credHelpers[${JSON.stringify(helperKey)}] (docker-credential-${config.credHelpers[helperKey]})` };
  }
  const authKey = matching(
    Object.entries(config.auths ?? {})
      .filter(([, entry]) => entry?.auth || entry?.identitytoken)
      .map(([key]) => key),
  );
  if (authKey !== undefined)
    return { where: `auths[${JSON.stringify(authKey)}] in ${configFile}`, basicAuth: config.auths?.[authKey]?.auth };
  if (config.credsStore) {
    return {
      where: `credsStore "${config.credsStore}" (docker-credential-${config.credsStore}; assumed to hold the login)`,
    };
  }
  const known = [
    ...new Set([...Object.keys(config.auths ?? {}), ...Object.keys(config.credHelpers ?? {})].map(hostOfConfigKey)),
  ];
  const others = known.length > 0 ? ` (it has entries only for: ${known.join(', ')})` : '';
  return {
    problem:
      `no credentials for registry ${host} in ${configFile}${others}: ${login}, or set ` +
      `DOCKER_CONFIG to the directory whose config.json holds them`,
  };
}

async function checkCredentials(
  host: string,
  env: NodeJS.ProcessEnv,
  log: (line: string) => void,
): Promise<string | undefined> {
  if (isLoopback(host)) return checkLoopbackRegistry(host, env, log);
  const stored = storedLogin(host, env);
  if ('problem' in stored) return stored.problem;
  log(`pre-flight: credentials for ${host}: ${stored.where}`);
  return undefined;
}

/** A registry on this machine answers at once; one that does not is left to the push to report. */
const REGISTRY_CHECK_TIMEOUT_MS = 5_000;

/**
 * A registry on this machine may take anonymous pushes (registry:2 for a local cluster) or ask for
 * a login (htpasswd): ask it, as `docker login` does (GET /v2/ over HTTP, which docker uses for
 * loopback registries), and when it asks, try docker's stored login on it, so that a missing or
 * refused login stops the flow before a build of minutes rather than at the push.
 */
async function checkLoopbackRegistry(
  host: string,
  env: NodeJS.ProcessEnv,
  log: (line: string) => void,
): Promise<string | undefined> {
  const url = `http://${host}/v2/`;
  const ask = (headers: Record<string, string> = {}) =>
    fetch(url, { headers, signal: AbortSignal.timeout(REGISTRY_CHECK_TIMEOUT_MS) }).then((r) => r.status);
  let status: number;
  try {
    status = await ask();
  } catch {
    log(`pre-flight: ${host} is on this machine but did not answer ${url}; the push will say why`);
    return undefined;
  }
  if (status !== 401) {
    log(`pre-flight: ${host} is on this machine and asks for no login (GET ${url}: HTTP ${status})`);
    return undefined;
  }
  const stored = storedLogin(host, env);
  if ('problem' in stored) return `the registry ${host} asks for a login (GET ${url}: HTTP 401); ${stored.problem}`;
  if (stored.basicAuth === undefined) {
    log(`pre-flight: ${host} asks for a login; credentials: ${stored.where} (not tried here)`);
    return undefined;
  }
  const withLogin = await ask({ authorization: `Basic ${stored.basicAuth}` }).catch(() => undefined);
  if (withLogin === 401) {
    return (
      `the registry ${host} refuses the login docker has stored for it (${stored.where}; GET ${url}: ` +
      `HTTP 401): run \`${loginCommand(host)}\` again with the right user and password`
    );
  }
  log(`pre-flight: ${host} accepts the login in ${stored.where}`);
  return undefined;
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
