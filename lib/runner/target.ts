import { KubeConfig, loadYaml, type Cluster, type Context, type User } from '@kubernetes/client-node';
import { X509Certificate } from 'node:crypto';
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { validateHeaderValue } from 'node:http';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import type { Profile } from '../profile.js';
import { RefusedError } from '../errors.js';
import { ACCEPTED_SERVER, serverProblem } from '../validation.js';

/** Where the runner acts, and why that context was chosen. */
export interface Target {
  readonly context: string;
  readonly source: 'flag --context' | 'KUBE_CONTEXT' | 'profile';
  readonly server: string;
  /** A KubeConfig whose current context is the target, in memory only: the file is never changed. */
  readonly kubeConfig: KubeConfig;
}

/** The context cannot be acted on; nothing was sent (exit code 2). */
export class TargetRefusedError extends RefusedError {}

/**
 * The context to act on: --context, else KUBE_CONTEXT, else the profile's pinned one. Never the
 * kubeconfig's current-context: that is whatever the user last switched to, possibly production.
 * An empty --context or KUBE_CONTEXT is refused, not taken for "not given": falling back to the
 * profile's context is exactly what someone who set one (to an unset variable, say) did not mean.
 */
export function chooseContext(
  profile: Profile,
  flag: string | undefined,
  env: NodeJS.ProcessEnv,
): { context: string; source: Target['source'] } {
  const padded = (what: string, value: string) =>
    new TargetRefusedError(
      `${what} has surrounding whitespace (${JSON.stringify(value)}); give the context's name ` +
        `without it. Nothing was sent.`,
    );
  if (flag !== undefined) {
    if (flag.trim() === '')
      throw new TargetRefusedError(
        '--context is empty; name a context of the kubeconfig (--context=<name>), or leave the ' +
          "option out to use KUBE_CONTEXT or the profile's. Nothing was sent.",
      );
    if (flag.trim() !== flag) throw padded('--context', flag);
    return { context: flag, source: 'flag --context' };
  }
  if (env.KUBE_CONTEXT !== undefined) {
    if (env.KUBE_CONTEXT.trim() === '')
      throw new TargetRefusedError(
        'KUBE_CONTEXT is set but empty; set it to a context of the kubeconfig, or unset it to ' +
          "use the profile's. Nothing was sent.",
      );
    if (env.KUBE_CONTEXT.trim() !== env.KUBE_CONTEXT) throw padded('KUBE_CONTEXT', env.KUBE_CONTEXT);
    return { context: env.KUBE_CONTEXT, source: 'KUBE_CONTEXT' };
  }
  return { context: profile.kube.context, source: 'profile' };
}

/** Normalizes an API server URL for comparison (case of host, trailing slash, default port). */
function sameServer(a: string, b: string): boolean {
  const norm = (u: string) => {
    const url = new URL(u);
    const port = url.port || (url.protocol === 'https:' ? '443' : '80');
    return `${url.protocol}//${url.hostname.toLowerCase()}:${port}${url.pathname.replace(/\/+$/, '')}`;
  };
  try {
    return norm(a) === norm(b);
  } catch {
    return a === b;
  }
}

// One rule for a profile's kube.apiServer and a kubeconfig's server (lib/validation.ts).
export { serverProblem };

/** A kubeconfig as the runner read it: the files merged as kubectl merges them, and where each entry came from. */
export interface LoadedKubeConfig {
  readonly kubeConfig: KubeConfig;
  /** The files read, in order; what messages call "the kubeconfig". */
  readonly files: readonly string[];
  /** `cluster:<name>`, `user:<name>`, `context:<name>` → the file that defined it. */
  readonly origin: ReadonlyMap<string, string>;
}

/** The kubeconfig files to read: KUBECONFIG's list, else ~/.kube/config. */
function kubeconfigFiles(env: NodeJS.ProcessEnv): { files: string[]; source: string } {
  if (env.KUBECONFIG !== undefined && env.KUBECONFIG !== '') {
    const files = env.KUBECONFIG.split(delimiter).filter((f) => f !== '');
    if (files.length === 0)
      throw new TargetRefusedError(
        `KUBECONFIG (${JSON.stringify(env.KUBECONFIG)}) names no file; set it to a kubeconfig ` +
          `path (several separated by "${delimiter}"), or unset it to use ~/.kube/config. Nothing was sent.`,
      );
    return { files, source: 'KUBECONFIG' };
  }
  return {
    files: [join(env.HOME || homedir(), '.kube', 'config')],
    source: 'the default location (KUBECONFIG is not set)',
  };
}

/**
 * Reads the kubeconfig (KUBECONFIG, else ~/.kube/config) without sending any request. Every file must
 * exist and be a kubeconfig; when several define the same name, the first one wins, as with kubectl.
 * Unlike client-node's loadFromDefault, there is no fallback to an in-cluster service account or to
 * http://localhost:8080: without a kubeconfig there is nothing the runner should act on.
 */
export function loadKubeConfig(env: NodeJS.ProcessEnv = process.env): LoadedKubeConfig {
  const { files, source } = kubeconfigFiles(env);
  const clusters: Cluster[] = [];
  const users: User[] = [];
  const contexts: Context[] = [];
  const origin = new Map<string, string>();
  for (const file of files) {
    const one = readKubeconfigFile(file, source);
    const take = <T extends { name: string }>(kind: string, entries: readonly T[], into: T[]) => {
      for (const e of entries) {
        if (origin.has(`${kind}:${e.name}`)) continue;
        origin.set(`${kind}:${e.name}`, file);
        into.push(e);
      }
    };
    take('cluster', one.getClusters(), clusters);
    take('user', one.getUsers(), users);
    take('context', one.getContexts(), contexts);
  }
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({ clusters, users, contexts, currentContext: undefined });
  return { kubeConfig, files, origin };
}

/** One kubeconfig file, read by client-node; refused, naming the file and the problem, when it is not one. */
function readKubeconfigFile(file: string, source: string): KubeConfig {
  const stat = statSync(file, { throwIfNoEntry: false });
  if (stat === undefined)
    throw new TargetRefusedError(
      `kubeconfig ${file} (from ${source}) does not exist; point KUBECONFIG at your ` +
        `kubeconfig, or create it (e.g. \`kubectl config set-cluster\`). Nothing was sent.`,
    );
  if (!stat.isFile())
    throw new TargetRefusedError(
      `kubeconfig ${file} (from ${source}) is not a file; point KUBECONFIG at a kubeconfig ` +
        `file. Nothing was sent.`,
    );
  const accepted =
    'expected a kubeconfig: a YAML mapping with `clusters`, `users` and `contexts` lists, ' +
    'each entry with a `name`';
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new TargetRefusedError(`kubeconfig ${file} cannot be read: ${(err as Error).message}. Nothing was sent.`);
  }
  if (text.trim() === '') throw new TargetRefusedError(`kubeconfig ${file} is empty; ${accepted}. Nothing was sent.`);
  const kc = new KubeConfig();
  try {
    kc.loadFromString(text);
    kc.makePathsAbsolute(dirname(file));
    // client-node reads a list, or `clusters: 5`, as a kubeconfig without entries.
    const shape = shapeProblem(text);
    if (shape !== undefined) throw new Error(shape);
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { reason?: string; mark?: { line: number; column: number } };
    if (e.code === 'ENOENT' || e.code === 'EACCES') {
      // client-node reads every user's token-file as it loads the file, whichever context is used.
      throw new TargetRefusedError(
        `kubeconfig ${file} names a file that cannot be read (${e.code}): ` +
          `${e.path ?? e.message} (a user's token-file?); fix or remove that entry. Nothing was sent.`,
      );
    }
    const problem =
      e.name === 'YAMLException'
        ? `is not valid YAML: ` +
          `${e.reason ?? e.message}${e.mark ? ` (line ${e.mark.line + 1}, column ${e.mark.column + 1})` : ''}`
        : /^(clusters|users|contexts)\[\d+\]/.test(e.message)
          ? `is not a valid kubeconfig: ${e.message}`
          : // client-node met a value of the wrong type: say which, if the document shows it.
            `is not a valid kubeconfig: ${shapeProblem(text) ?? e.message}`;
    throw new TargetRefusedError(`kubeconfig ${file} ${problem}; ${accepted}. Nothing was sent.`);
  }
  return kc;
}

/** The first value of the wrong type in a kubeconfig document that client-node could not read, in its words. */
function shapeProblem(text: string): string | undefined {
  const isMapping = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  let doc: unknown;
  try {
    doc = loadYaml(text);
  } catch (err) {
    // client-node's loadYaml refuses an empty (null) document in these words.
    return (err as Error).message === 'Failed to load YAML'
      ? 'the document is empty (or null, false or 0), not a mapping'
      : undefined;
  }
  if (!isMapping(doc))
    return (
      `the document is ` +
      `${doc === null || doc === undefined ? 'empty' : Array.isArray(doc) ? 'a list' : `a ${typeof doc}`}, not a mapping`
    );
  for (const [list, item] of [
    ['clusters', 'cluster'],
    ['users', 'user'],
    ['contexts', 'context'],
  ] as const) {
    const entries = doc[list];
    if (entries === undefined || entries === null) continue;
    if (!Array.isArray(entries))
      return `${list} is ${isMapping(entries) ? 'a mapping' : `a ${typeof entries}`}, not a list`;
    for (const [i, entry] of entries.entries()) {
      if (!isMapping(entry)) return `${list}[${i}] is not a mapping`;
      if (entry[item] !== undefined && entry[item] !== null && !isMapping(entry[item]))
        return `${list}[${i}].${item} is not a mapping`;
      const server = list === 'clusters' && isMapping(entry.cluster) ? entry.cluster.server : undefined;
      if (server !== undefined && typeof server !== 'string') return `clusters[${i}].cluster.server is not a string`;
    }
  }
  return undefined;
}

/**
 * Resolves the target from the kubeconfig (KUBECONFIG, else ~/.kube/config) without sending any
 * request. Refuses a context that is not there, one whose cluster or user is not defined, a server
 * that is not an https URL, a proxy (the runner would not go through it), credential files that
 * cannot be read, credentials that cannot be used (certificates and keys that are no PEM or do not
 * match, a token that is no HTTP header value), and a server that differs from the profile's pin.
 */
export function resolveTarget(
  profile: Profile,
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  loaded: LoadedKubeConfig | KubeConfig = loadKubeConfig(env),
): Target {
  const { context, source } = chooseContext(profile, flag, env);
  const { kubeConfig, files, origin } =
    loaded instanceof KubeConfig
      ? { kubeConfig: loaded, files: [env.KUBECONFIG || '~/.kube/config'], origin: new Map<string, string>() }
      : loaded;
  const where = (kind: string, name: string) => origin.get(`${kind}:${name}`) ?? files.join(delimiter);
  const refuse = (message: string) => new TargetRefusedError(`${message} Nothing was sent.`);
  const known = kubeConfig.getContexts().map((c) => c.name);
  const ctx = kubeConfig.getContextObject(context);
  if (!ctx) {
    throw new TargetRefusedError(
      `kube context "${context}" (from ${source}) is not in the kubeconfig (${files.join(delimiter)}); ` +
        `contexts there: ${known.length > 0 ? known.join(', ') : 'none'}. Nothing was sent.` +
        (source === 'profile' ? ` Create it, or pass --context=<name> to act on another cluster on purpose.` : ''),
    );
  }
  const contextFile = where('context', context);
  const inContext = `kube context "${context}" (in ${contextFile})`;
  /** "<what> of kube context "x" (in <file>)", naming the second file too when `what` is defined elsewhere. */
  const of = (what: string, definedIn: string) =>
    `${what} of kube context "${context}" (in ` +
    `${definedIn === contextFile ? contextFile : `${definedIn}; the context in ${contextFile}`})`;
  const cluster = kubeConfig.getCluster(ctx.cluster);
  if (!cluster) throw refuse(`${inContext} names cluster "${ctx.cluster}", which the kubeconfig does not define.`);
  const ofCluster = of(`cluster "${cluster.name}"`, where('cluster', cluster.name));
  const problem = serverProblem(cluster.server);
  if (problem)
    throw refuse(
      `the server ${JSON.stringify(cluster.server)} of ${ofCluster} ${problem}; expected ` + `${ACCEPTED_SERVER}.`,
    );
  if (cluster.proxyUrl)
    throw refuse(
      `${ofCluster} goes through the proxy ${cluster.proxyUrl}, which the runner does not ` +
        `support (its requests would bypass it); use a context without proxy-url.`,
    );
  if (!ctx.user)
    throw refuse(
      `${inContext} names no user: the runner would send no credentials; add \`user: <name>\` ` + `to the context.`,
    );
  const user = kubeConfig.getUser(ctx.user);
  if (!user) throw refuse(`${inContext} names user "${ctx.user}", which the kubeconfig does not define.`);
  // client-node reads these files only when the first request goes out; a wrong path is refused now.
  const credentialFiles: [field: string, file: string | undefined][] = [
    [`certificate-authority of ${ofCluster}`, cluster.caFile],
    [`client-certificate of ${of(`user "${user.name}"`, where('user', user.name))}`, user.certFile],
    [`client-key of ${of(`user "${user.name}"`, where('user', user.name))}`, user.keyFile],
  ];
  for (const [field, file] of credentialFiles) {
    if (file === undefined) continue;
    try {
      accessSync(file, constants.R_OK);
    } catch (err) {
      throw refuse(
        `the ${field}, ${file}, cannot be read ` +
          `(${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); fix the path in ` +
          `the kubeconfig.`,
      );
    }
  }
  const credentials = credentialProblem(cluster, user);
  if (credentials !== undefined) {
    const [subject, field, what] = credentials;
    const owner = subject === 'cluster' ? ofCluster : of(`user "${user.name}"`, where('user', user.name));
    throw refuse(`the ${field} of ${owner} ${what}; fix it in the kubeconfig.`);
  }
  if (profile.kube.apiServer !== undefined && !sameServer(profile.kube.apiServer, cluster.server)) {
    throw refuse(
      `kube context "${context}" points at ${cluster.server}, but profile "${profile.name}" ` +
        `is pinned to ${profile.kube.apiServer}. Fix the kubeconfig or the profile's kube.apiServer.`,
    );
  }
  kubeConfig.setCurrentContext(context);
  return { context, source, server: cluster.server, kubeConfig };
}

/** A certificate or key as client-node takes it: the file's bytes, else the base64 data. */
function credentialBytes(file: string | undefined, data: string | undefined): Buffer | undefined {
  if (file) return readFileSync(file);
  return data ? Buffer.from(data, 'base64') : undefined;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/**
 * What client-node would fail on only once the first request goes out (building the TLS context, or
 * the request's headers), as [whose, kubeconfig field, what is wrong]; undefined when all is usable.
 * Checked with the same node:tls and node:http that the requests use.
 */
function credentialProblem(
  cluster: Cluster,
  user: User,
): [whose: 'cluster' | 'user', field: string, problem: string] | undefined {
  const field = (name: string, file: string | undefined) => (file ? `${name} (${file})` : `${name}-data`);
  const ca = credentialBytes(cluster.caFile, cluster.caData);
  if (ca !== undefined) {
    // node:tls takes any bytes as a CA and fails only during the handshake: every block must be a certificate.
    const blocks = ca.toString('latin1').match(PEM_CERTIFICATE) ?? [];
    const bad = blocks.findIndex((b) => {
      try {
        new X509Certificate(b);
        return false;
      } catch {
        return true;
      }
    });
    if (blocks.length === 0 || bad >= 0) {
      const what =
        blocks.length === 0 ? 'holds no PEM certificate' : `holds a certificate that cannot be read (block ${bad + 1})`;
      const expected = `expected PEM certificates ("-----BEGIN CERTIFICATE-----"${cluster.caFile ? '' : ', base64-encoded'})`;
      return ['cluster', field('certificate-authority', cluster.caFile), `${what}; ${expected}`];
    }
  }
  const cert = credentialBytes(user.certFile, user.certData);
  const key = credentialBytes(user.keyFile, user.keyData);
  const certField = field('client-certificate', user.certFile);
  const keyField = field('client-key', user.keyFile);
  if (cert !== undefined && key === undefined)
    return ['user', certField, 'is given without a client-key; give both, or neither'];
  if (key !== undefined && cert === undefined)
    return ['user', keyField, 'is given without a client-certificate; give both, or neither'];
  if (cert !== undefined && key !== undefined) {
    const tlsProblem = (options: SecureContextOptions) => {
      try {
        createSecureContext(options);
        return undefined;
      } catch (err) {
        return (err as Error).message;
      }
    };
    const ofCert = tlsProblem({ cert });
    if (ofCert !== undefined)
      return [
        'user',
        certField,
        `is not a PEM certificate (${ofCert}); ` +
          `expected one ("-----BEGIN CERTIFICATE-----"${user.certFile ? '' : ', base64-encoded'})`,
      ];
    const ofKey = tlsProblem({ key });
    if (ofKey !== undefined)
      return [
        'user',
        keyField,
        `is not a PEM private key (${ofKey}); ` +
          `expected one ("-----BEGIN ... PRIVATE KEY-----"${user.keyFile ? '' : ', base64-encoded'})`,
      ];
    const ofPair = tlsProblem({ cert, key });
    if (ofPair !== undefined)
      return [
        'user',
        keyField,
        `does not belong to the ${certField} (${ofPair}); expected the key of that certificate`,
      ];
  }
  const headers: [string, string | undefined, string][] = [
    ['Authorization', user.token ? `Bearer ${user.token}` : undefined, 'token (or the contents of its token-file)'],
    ['Impersonate-User', user.impersonateUser ?? undefined, 'as (the user to impersonate)'],
  ];
  for (const [header, value, name] of headers) {
    if (value === undefined) continue;
    try {
      validateHeaderValue(header, value);
    } catch {
      return [
        'user',
        name,
        'cannot be sent in an HTTP header: it holds a line break or another control character; ' +
          'expected the value on one line',
      ];
    }
  }
  return undefined;
}

export function describeTarget(t: Target): string {
  return `context ${t.context} (from ${t.source}), API server ${t.server}`;
}
