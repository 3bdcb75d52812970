import { isIPv6 } from 'node:net';

/**
 * The rules for values that a typo can break, defined once and used both by the profile schema
 * (which reports every problem at once) and by the constructs' constructors (which throw on the
 * first). Each rule returns `undefined` when the value is fine, or the accepted form as a phrase.
 */

/** A Kubernetes resource quantity: a decimal number with an optional SI or binary suffix. */
const QUANTITY = /^(\d+(?:\.\d+)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;
/** What each suffix multiplies by, as a power of 10 or of 2. */
const QUANTITY_SUFFIXES: Record<string, { base: bigint; exponent: number }> = {
  '': { base: 10n, exponent: 0 },
  m: { base: 10n, exponent: -3 },
  k: { base: 10n, exponent: 3 },
  M: { base: 10n, exponent: 6 },
  G: { base: 10n, exponent: 9 },
  T: { base: 10n, exponent: 12 },
  P: { base: 10n, exponent: 15 },
  E: { base: 10n, exponent: 18 },
  Ki: { base: 2n, exponent: 10 },
  Mi: { base: 2n, exponent: 20 },
  Gi: { base: 2n, exponent: 30 },
  Ti: { base: 2n, exponent: 40 },
  Pi: { base: 2n, exponent: 50 },
  Ei: { base: 2n, exponent: 60 },
};
/** RFC 1123 DNS label, the form of namespace, service and most object names. */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** RFC 1123 subdomain, the form of StorageClass names and label prefixes. */
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
/** The pattern `parts` make written one after the other (a string is written as is). */
const sequence = (...parts: (RegExp | string)[]) =>
  new RegExp(parts.map((p) => (typeof p === 'string' ? p : `(?:${p.source})`)).join(''));
/** A pattern that `parts`, written one after the other, match as a whole. */
const whole = (...parts: (RegExp | string)[]) => new RegExp(`^${sequence(...parts).source}$`);
/*
 * The parts of an image reference, `<registry>/<repository>:<tag>`; the profile names each apart.
 * The grammar is the container runtimes' (distribution/reference), in lower case: a reference they
 * would refuse to pull ("docker..io", "localhost:99999", "me/_x") is refused here instead.
 */
const HOST_COMPONENT = /[a-z0-9](?:[a-z0-9-]*[a-z0-9])?/;
const PORT = /6553[0-5]|655[0-2]\d|65[0-4]\d{2}|6[0-4]\d{3}|[1-5]\d{4}|[1-9]\d{0,3}/;
/** One "/"-separated part of a repository path: lower-case alphanumerics joined by ".", "_" or "-". */
const PATH_COMPONENT = /[a-z0-9]+(?:[._-][a-z0-9]+)*/;
const REGISTRY_PART = sequence(
  HOST_COMPONENT,
  '(?:\\.',
  HOST_COMPONENT,
  ')*(?::',
  PORT,
  ')?(?:/',
  PATH_COMPONENT,
  ')*',
);
const REPOSITORY_PART = sequence(PATH_COMPONENT, '(?:/', PATH_COMPONENT, ')*');
const IMAGE_TAG_MAX = 128;
const IMAGE_TAG_PART = new RegExp(`[\\w][\\w.-]{0,${IMAGE_TAG_MAX - 1}}`);
/**
 * The runtimes' limit on an image's name, `<registry>/<repository>`. Checked before the patterns,
 * which would take time quadratic in the length of a long string they do not match.
 */
const IMAGE_NAME_MAX = 255;
const REGISTRY = whole(REGISTRY_PART);
const REPOSITORY = whole(REPOSITORY_PART);
const IMAGE_TAG = whole(IMAGE_TAG_PART);
const IMAGE_REFERENCE = whole(REGISTRY_PART, '/', REPOSITORY_PART, ':', IMAGE_TAG_PART);
const GO_TAG = /^[\w.]+$/;
/**
 * Text on one line that starts and ends with something visible: no control characters, line
 * breaks or unpaired surrogates anywhere (a kubeconfig, being UTF-8, cannot hold the latter). A
 * value with surrounding whitespace is refused rather than trimmed, so that it is the value used.
 */
/** "/" then non-empty parts of printable non-space characters, separated by single "/". */
const NODE_PATH = /^(\/[^/\s\p{Cc}]+)+$/u;
const SINGLE_LINE = /^(?!\s)[^\p{Cc}\p{Cs}\p{Zl}\p{Zp}]+(?<!\s)$/u;
const IPV4_OCTET = /25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d/;
const IPV4 = whole(IPV4_OCTET, '\\.', IPV4_OCTET, '\\.', IPV4_OCTET, '\\.', IPV4_OCTET);

/**
 * The namespaces Kubernetes keeps for itself. A profile's namespace is applied with Pod Security
 * "restricted" enforced and deleted by destroy: on one of these the cluster's own privileged pods
 * (kube-proxy, CNI and CSI agents) would no longer be admitted. Kubernetes reserves the whole "kube-"
 * prefix for its system namespaces.
 */
const KUBERNETES_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];
const KUBERNETES_NAMESPACE_PREFIX = 'kube-';

/**
 * The membership bootstrap Job has a container per Sand Store node, each naming every etcd member,
 * and etcd stores an object in one request of at most 1.5 MiB. Measured: with 7 etcd members and a
 * 63-character namespace the Job is 1.3 kB per node, to which the API server adds defaults and
 * managed fields, at most as much again; so 501 nodes stay under the limit.
 */
const MAX_RAFT_REPLICAS = 501;
/**
 * etcd's own advice: a cluster "probably should have no more than seven nodes" (FAQ); a write
 * waits for a majority, and every member is named in each bootstrap container (see above).
 */
const MAX_ETCD_REPLICAS = 7;
/**
 * Bounds of Sand Store's Raft tunables (read in servers/node/topology_hyperconverged.go, used in
 * internal/metadata_replicator/durable_raft), so that a value that passes is one Sand Store works with:
 * - the log kept between snapshots is about snapshotThresholdLogs entries, and a follower that falls
 *   behind is sent every one of them in a single AppendEntries message, which Sand Store's gRPC caps
 *   at 32 MiB (maxGRPCMessageSize); the WAL file holding them is rewritten whole on every batch. At
 *   10,000 (ten times the default) an entry may still take 3.3 KiB.
 * - a batch (maxBatchSize) is written and replicated as one, within the same message and log; no
 *   more than the log kept between snapshots.
 * - a write that does not fill a batch waits up to maxBatchWaitMs on the leader before it is written
 *   and replicated, and Sand Store's client library gives an operation 30 s (defaultOperationTimeout
 *   in clients/library/client.go): at most 10 s, a third of it, leaves the rest for replication and
 *   a retry at the leader. (Any value up to the largest Go duration passed before: a flush ticker of
 *   292 years never fires, and writes under light load time out.)
 */
const MAX_RAFT_LOG_ENTRIES = 10_000;
const MAX_BATCH_WAIT_MS = 10_000;
/**
 * The least memory a container is given (request and limit): 12 MiB, CRI-O's minimum for runc
 * containers (cri-o/cri-o#2531). Below ~7 MiB runc cannot even start a container, which then fails
 * with an obscure error rather than an OOM kill (moby/moby#41167, containers/podman#4722); Docker
 * refuses limits below 6 MB. A profile's "1" (one byte) passed before.
 */
const MIN_MEMORY = '12Mi';

/** Raft needs a strict majority; an even member count adds a node without adding fault tolerance. */
function oddMembers(min: number, max: number): Rule<number> {
  return (v) =>
    Number.isInteger(v) && v >= min && v <= max && v % 2 === 1
      ? undefined
      : `an odd whole number from ${min} to ${max}`;
}

/**
 * Sand Store reads its tunables with Go's strconv.Atoi and silently uses its default for anything
 * it cannot read. So at most 2^53 - 1: above, a number is not exact here, and from 1e21 on it is
 * written "1e+21".
 */
function wholeNumber(min: number, max: number): Rule<number> {
  return (v) => (Number.isInteger(v) && v >= min && v <= max ? undefined : `a whole number from ${min} to ${max}`);
}

const NODE_PORT_MIN = 30000;
const NODE_PORT_MAX = 32767;

export type Rule<T> = (value: T) => string | undefined;

/**
 * The exact value of a quantity, as the fraction `numerator / denominator`, or undefined when `v` is
 * not one. Exact, because "1" and "1000m" must compare equal, and "0.5" bytes must not pass for whole.
 */
export function quantityValue(v: string): { numerator: bigint; denominator: bigint } | undefined {
  const match = QUANTITY.exec(v);
  if (!match) return undefined;
  const [integer, fraction = ''] = match[1].split('.');
  const { base, exponent } = QUANTITY_SUFFIXES[match[2] ?? ''];
  let numerator = BigInt(`${integer}${fraction}`);
  let denominator = 10n ** BigInt(fraction.length);
  if (exponent >= 0) numerator *= base ** BigInt(exponent);
  else denominator *= base ** BigInt(-exponent);
  return { numerator, denominator };
}

/** The form of an API server address the runner accepts, for messages. */
export const ACCEPTED_SERVER =
  'an https URL with a host and an optional port and path, e.g. "https://192.168.49.2:8443"';

/**
 * What is wrong with an API server address for the runner, or undefined: one rule for a profile's
 * kube.apiServer and a kubeconfig's cluster server. Only https: over plain http the bearer token or
 * basic credentials of every request travel in clear, and a server without a scheme is not an
 * address at all (client libraries disagree on what it means).
 */
export function serverProblem(server: string): string | undefined {
  // The URL parser drops surrounding whitespace and line breaks, so that "https://h:1 " would pass for another address.
  if (/[\s\p{Cc}]/u.test(server)) return 'holds whitespace or a control character';
  if (!/^[a-z][a-z0-9+.-]*:/i.test(server) || /^[a-z0-9.-]+:\d+(\/|$)/i.test(server)) return 'has no scheme';
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(server)) return 'is not a URL';
  // The URL parser would take "https:///k8s/x" for host "k8s": nothing between "//" and "/" is no host.
  if (/^[a-z][a-z0-9+.-]*:\/\/([/?#]|$)/i.test(server)) return 'has no host';
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    return 'is not a URL';
  }
  if (url.protocol === 'http:') return 'uses plain http, so the credentials of every request would travel unencrypted';
  if (url.protocol !== 'https:') return `uses the scheme ${url.protocol.slice(0, -1)}`;
  if (url.hostname === '') return 'has no host';
  if (url.username !== '' || url.password !== '') return 'carries a user name or password in the URL';
  if (url.search !== '' || url.hash !== '') return 'carries a query or fragment';
  return undefined;
}

/**
 * The largest amount the API server stores: it keeps a quantity in a 64-bit integer, CPU in
 * thousandths of a core (its MilliValue). A larger one would be silently changed or refused at apply.
 */
const INT64_MAX = 2n ** 63n - 1n;
const AT_MOST_INT64 = `at most ${INT64_MAX} (2^63 - 1, the largest the API server stores)`;

/** Whether quantity `v`, counted in `1 / perUnit` units (1000 for CPU's millicores), fits in 64 bits. */
function fitsInt64(value: { numerator: bigint; denominator: bigint }, perUnit = 1n): boolean {
  return value.numerator * perUnit <= INT64_MAX * value.denominator;
}

/** Whether quantity `a` is less than quantity `b` (false when either is no quantity: other rules say so). */
function quantityBelow(a: string, b: string): boolean {
  const x = quantityValue(a);
  const y = quantityValue(b);
  return x !== undefined && y !== undefined && x.numerator * y.denominator < y.numerator * x.denominator;
}

const DNS_LABEL_FORM = 'a DNS label: at most 63 lower-case letters, digits and "-", starting and ending alphanumeric';

export const rules = {
  /** CPU, more than nothing: a profile that states an amount means one ("0" would reserve nothing). */
  cpu: ((v: string) => {
    const value = quantityValue(v);
    return value !== undefined && value.numerator > 0n && fitsInt64(value, 1000n)
      ? undefined
      : `a Kubernetes quantity such as "500m" or "2", greater than 0 and, in thousandths of a core, ${AT_MOST_INT64}`;
  }) as Rule<string>,
  /**
   * Memory and storage sizes: more than nothing, in whole bytes. The API server rounds a fraction of
   * a byte up ("500m" becomes 1 byte) and warns; "500m" is meant as "500Mi".
   */
  bytes: ((v: string) => {
    const value = quantityValue(v);
    return value !== undefined && value.numerator > 0n && value.numerator % value.denominator === 0n && fitsInt64(value)
      ? undefined
      : `a Kubernetes quantity such as "20Gi" or "512Mi", greater than 0, in whole bytes and ${AT_MOST_INT64}`;
  }) as Rule<string>,
  /** A container's memory (request or limit): whole bytes, at least what a container can start with (MIN_MEMORY). */
  memory: ((v: string) =>
    rules.bytes(v) === undefined && !quantityBelow(v, MIN_MEMORY)
      ? undefined
      : `a Kubernetes quantity in whole bytes such as "512Mi" or "2Gi", at least ` +
        `"${MIN_MEMORY}" (the least a container starts with) and ${AT_MOST_INT64}`) as Rule<string>,
  /** A limit against its request, named `requestField`: the API server refuses a limit below the request. */
  notBelowRequest:
    (request: string, requestField: string): Rule<string> =>
    (limit) =>
      quantityBelow(limit, request) ? `at least ${requestField}, ${JSON.stringify(request)}` : undefined,
  dnsLabel: ((v: string) => (v.length <= 63 && DNS_LABEL.test(v) ? undefined : DNS_LABEL_FORM)) as Rule<string>,
  /** A namespace of the profile's own: a DNS label that is none of Kubernetes' namespaces. */
  namespace: ((v: string) =>
    rules.dnsLabel(v) === undefined && !KUBERNETES_NAMESPACES.includes(v) && !v.startsWith(KUBERNETES_NAMESPACE_PREFIX)
      ? undefined
      : `${DNS_LABEL_FORM}, and none of Kubernetes' own namespaces ` +
        `(${KUBERNETES_NAMESPACES.map((n) => `"${n}"`).join(', ')} or any other ` +
        `"${KUBERNETES_NAMESPACE_PREFIX}" one)`) as Rule<string>,
  dnsSubdomain: ((v: string) =>
    v.length <= 253 && DNS_SUBDOMAIN.test(v)
      ? undefined
      : 'a DNS subdomain: lower-case letters, digits, "-" and ".", starting and ending alphanumeric') as Rule<string>,
  labelKey: ((v: string) =>
    isQualifiedName(v)
      ? undefined
      : 'a label key such as "node.sandstore.io/disk": optional DNS-subdomain prefix, "/", a ' +
        'name of at most 63 characters') as Rule<string>,
  /** The API server checks a StorageClass's provisioner as a qualified name, in lower case. */
  provisioner: ((v: string) =>
    isQualifiedName(v.toLowerCase())
      ? undefined
      : 'a provisioner name such as "rancher.io/local-path": optional DNS-subdomain prefix, ' +
        '"/", a name of at most 63 characters') as Rule<string>,
  /**
   * A directory on a node, as local-path's config holds it (absolute and clean, by Go's
   * filepath.Abs): a StorageClass's nodePath is looked up there as written, so "/data/" or
   * "/data/../ssd" would never match "/data" or "/ssd", and "/" is refused by local-path itself.
   */
  nodePath: ((v: string) =>
    NODE_PATH.test(v) && !v.split('/').some((part) => part === '.' || part === '..')
      ? undefined
      : 'an absolute directory path such as "/var/lib/sandstore-node/ext4": starting with "/", not "/" ' +
        'itself, no "." or ".." parts, no "//", no trailing "/", no whitespace or control characters') as Rule<string>,
  labelValue: ((v: string) =>
    v.length <= 63 && LABEL_VALUE.test(v)
      ? undefined
      : 'a label value: at most 63 letters, digits, "-", "_" or ".", starting and ending alphanumeric') as Rule<string>,
  /** Sand Store's Raft members: at least 3, to survive a failure. */
  raftReplicas: oddMembers(3, MAX_RAFT_REPLICAS),
  etcdReplicas: oddMembers(1, MAX_ETCD_REPLICAS),
  /** A Raft count tunable (RAFT_MAX_BATCH_SIZE, RAFT_SNAPSHOT_THRESHOLD_LOGS); see MAX_RAFT_LOG_ENTRIES. */
  raftLogEntries: wholeNumber(1, MAX_RAFT_LOG_ENTRIES),
  /** RAFT_MAX_BATCH_WAIT_MS; see MAX_BATCH_WAIT_MS. */
  batchWaitMs: wholeNumber(1, MAX_BATCH_WAIT_MS),
  nodePort: ((v: number) =>
    Number.isInteger(v) && v >= NODE_PORT_MIN && v <= NODE_PORT_MAX
      ? undefined
      : `a whole number from ${NODE_PORT_MIN} to ${NODE_PORT_MAX} (the default NodePort range)`) as Rule<number>,
  /**
   * The node port of pod 0 when pod i gets base + i: the last pod's port must stay in the range
   * too. Only that is checked here; the base itself is `nodePort`'s.
   */
  nodePortBaseFor:
    (raftReplicas: number): Rule<number> =>
    (base) => {
      const last = base + raftReplicas - 1;
      return Number.isInteger(last) && last > NODE_PORT_MAX
        ? `at most ${NODE_PORT_MAX - raftReplicas + 1}: with ${raftReplicas} Raft replicas the ` +
            `last node port would be ${last}, above ${NODE_PORT_MAX}`
        : undefined;
    },
  /** Free text that names something (a kube context, a description). */
  singleLine: ((v: string) =>
    SINGLE_LINE.test(v)
      ? undefined
      : 'a non-empty string on one line, without leading or trailing whitespace') as Rule<string>,
  /**
   * Where clients outside the cluster reach a node: Sand Store and the runner append ":<port>", so
   * an IPv6 address needs its brackets. Digits and dots that are no IPv4 address ("10.0.1") are
   * refused, since resolvers disagree on what they mean.
   */
  host: ((v: string) =>
    IPV4.test(v) ||
    (v.length <= 253 && DNS_SUBDOMAIN.test(v.toLowerCase()) && !/^[\d.]+$/.test(v)) ||
    (v.startsWith('[') && v.endsWith(']') && isIPv6(v.slice(1, -1)))
      ? undefined
      : 'a host name or IP address, e.g. "192.168.1.20", "laptop.lan" or "[fd00::20]"') as Rule<string>,
  /** The runner compares it with the kubeconfig's server, which must pass the same rule (serverProblem). */
  apiServerUrl: ((v: string) => {
    const problem = serverProblem(v);
    return problem === undefined ? undefined : `${ACCEPTED_SERVER} (this one ${problem})`;
  }) as Rule<string>,
  registry: ((v: string) =>
    v.length <= IMAGE_NAME_MAX && REGISTRY.test(v)
      ? undefined
      : `a registry host with optional port and path and no scheme, at most ${IMAGE_NAME_MAX} ` +
        `characters, e.g. "docker.io/myuser" or "localhost:5000"`) as Rule<string>,
  repository: ((v: string) =>
    v.length <= IMAGE_NAME_MAX && REPOSITORY.test(v)
      ? undefined
      : `a repository name in lower case, at most ${IMAGE_NAME_MAX} characters, e.g. "sandstore-node"`) as Rule<string>,
  imageTag: ((v: string) =>
    IMAGE_TAG.test(v)
      ? undefined
      : `an image tag: letters, digits, "_", "." and "-", at most ${IMAGE_TAG_MAX}, e.g. "ssd-raft-latest"`) as Rule<string>,
  /** The whole reference, as the profile's registry, repository and tag make it. */
  imageReference: ((v: string) =>
    v.length <= IMAGE_NAME_MAX + 1 + IMAGE_TAG_MAX && IMAGE_REFERENCE.test(v) && v.lastIndexOf(':') <= IMAGE_NAME_MAX
      ? undefined
      : `an image reference with a tag, "<registry>/<repository>:<tag>", its name at most ` +
        `${IMAGE_NAME_MAX} characters, e.g. "docker.io/sandstore/sandstore-node:ssd-raft-latest"`) as Rule<string>,
  goTag: ((v: string) => (GO_TAG.test(v) ? undefined : 'a Go build tag: letters, digits, "_" and "."')) as Rule<string>,
  /**
   * A profile's volumes go with its claims. Every run starts on empty volumes (the clean slate) and
   * destroy removes them; with Retain each run's volumes would stay on the SSD as Released, never
   * bound again and never removed, and a destroy waiting for them could not finish.
   */
  cleanSlateReclaimPolicy: ((v: string) =>
    v === 'Delete'
      ? undefined
      : '"Delete": every run starts on empty volumes and destroy removes them; with "Retain" ' +
        "each run's volumes and data would stay on the SSD, never reused or removed") as Rule<string>,
};

/** Kubernetes' qualified name: an optional DNS-subdomain prefix and "/", then a name of at most 63 characters. */
function isQualifiedName(v: string): boolean {
  const parts = v.split('/');
  const [prefix, name] = parts.length === 2 ? parts : [undefined, parts[0]];
  return (
    parts.length <= 2 &&
    name.length <= 63 &&
    LABEL_NAME.test(name) &&
    (prefix === undefined || (prefix.length <= 253 && DNS_SUBDOMAIN.test(prefix)))
  );
}

/** Throws the construct-style error: what field, what value, what is accepted. */
export function check<T>(construct: string, field: string, value: T, rule: Rule<T>): void {
  const accepted = rule(value);
  if (accepted !== undefined) {
    throw new Error(`${construct}: invalid ${field} ${describeValue(value)}; expected ${accepted}`);
  }
}

/** A bad value as a problem shows it: as JSON where it can be, else what it is. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing (the field is missing)';
  // JSON would show these as null.
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  if (typeof value === 'bigint') return `${value}n`;
  try {
    const json = JSON.stringify(value, (_, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
    if (json !== undefined) return json;
  } catch {
    return 'an object that is not JSON (it refers to itself)';
  }
  return typeof value === 'symbol' ? value.toString() : `a ${typeof value}`;
}

/** Majority of `members`: the number that must stay up for a Raft or etcd cluster to make progress. */
export function quorum(members: number): number {
  return Math.floor(members / 2) + 1;
}
