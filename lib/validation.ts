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
  m: { base: 10n, exponent: -3 }, k: { base: 10n, exponent: 3 }, M: { base: 10n, exponent: 6 }, G: { base: 10n, exponent: 9 },
  T: { base: 10n, exponent: 12 }, P: { base: 10n, exponent: 15 }, E: { base: 10n, exponent: 18 },
  Ki: { base: 2n, exponent: 10 }, Mi: { base: 2n, exponent: 20 }, Gi: { base: 2n, exponent: 30 },
  Ti: { base: 2n, exponent: 40 }, Pi: { base: 2n, exponent: 50 }, Ei: { base: 2n, exponent: 60 },
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
const REGISTRY_PART = sequence(HOST_COMPONENT, '(?:\\.', HOST_COMPONENT, ')*(?::', PORT, ')?(?:/', PATH_COMPONENT, ')*');
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
/** The largest Go time.Duration (int64 nanoseconds), in whole milliseconds. */
const MAX_DURATION_MS = 9_223_372_036_854;

/** Raft needs a strict majority; an even member count adds a node without adding fault tolerance. */
function oddMembers(min: number, max: number): Rule<number> {
  return (v) => (Number.isInteger(v) && v >= min && v <= max && v % 2 === 1 ? undefined : `an odd whole number from ${min} to ${max}`);
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
function quantityValue(v: string): { numerator: bigint; denominator: bigint } | undefined {
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
    return value !== undefined && value.numerator > 0n
      ? undefined
      : 'a Kubernetes quantity such as "500m" or "2", greater than 0';
  }) as Rule<string>,
  /**
   * Memory and storage sizes: more than nothing, in whole bytes. The API server rounds a fraction of
   * a byte up ("500m" becomes 1 byte) and warns; "500m" is meant as "500Mi".
   */
  bytes: ((v: string) => {
    const value = quantityValue(v);
    return value !== undefined && value.numerator > 0n && value.numerator % value.denominator === 0n
      ? undefined
      : 'a Kubernetes quantity such as "20Gi" or "512Mi", greater than 0 and in whole bytes';
  }) as Rule<string>,
  /** A limit against its request, named `requestField`: the API server refuses a limit below the request. */
  notBelowRequest: (request: string, requestField: string): Rule<string> => (limit) =>
    quantityBelow(limit, request) ? `at least ${requestField}, ${JSON.stringify(request)}` : undefined,
  dnsLabel: ((v: string) =>
    v.length <= 63 && DNS_LABEL.test(v)
      ? undefined
      : DNS_LABEL_FORM) as Rule<string>,
  /** A namespace of the profile's own: a DNS label that is none of Kubernetes' namespaces. */
  namespace: ((v: string) =>
    rules.dnsLabel(v) === undefined && !KUBERNETES_NAMESPACES.includes(v) && !v.startsWith(KUBERNETES_NAMESPACE_PREFIX)
      ? undefined
      : `${DNS_LABEL_FORM}, and none of Kubernetes' own namespaces (${KUBERNETES_NAMESPACES.map((n) => `"${n}"`).join(', ')} or any other "${KUBERNETES_NAMESPACE_PREFIX}" one)`) as Rule<string>,
  dnsSubdomain: ((v: string) =>
    v.length <= 253 && DNS_SUBDOMAIN.test(v)
      ? undefined
      : 'a DNS subdomain: lower-case letters, digits, "-" and ".", starting and ending alphanumeric') as Rule<string>,
  labelKey: ((v: string) =>
    isQualifiedName(v)
      ? undefined
      : 'a label key such as "node.sandstore.io/disk": optional DNS-subdomain prefix, "/", a name of at most 63 characters') as Rule<string>,
  /** The API server checks a StorageClass's provisioner as a qualified name, in lower case. */
  provisioner: ((v: string) =>
    isQualifiedName(v.toLowerCase())
      ? undefined
      : 'a provisioner name such as "rancher.io/local-path": optional DNS-subdomain prefix, "/", a name of at most 63 characters') as Rule<string>,
  labelValue: ((v: string) =>
    v.length <= 63 && LABEL_VALUE.test(v)
      ? undefined
      : 'a label value: at most 63 letters, digits, "-", "_" or ".", starting and ending alphanumeric') as Rule<string>,
  /** Sand Store's Raft members: at least 3, to survive a failure. */
  raftReplicas: oddMembers(3, MAX_RAFT_REPLICAS),
  etcdReplicas: oddMembers(1, MAX_ETCD_REPLICAS),
  /** A Raft count tunable (RAFT_MAX_BATCH_SIZE, RAFT_SNAPSHOT_THRESHOLD_LOGS). */
  positiveInt: wholeNumber(1, Number.MAX_SAFE_INTEGER),
  /** RAFT_MAX_BATCH_WAIT_MS: Sand Store multiplies it into a Go time.Duration, which it must fit. */
  milliseconds: wholeNumber(1, MAX_DURATION_MS),
  nodePort: ((v: number) =>
    Number.isInteger(v) && v >= NODE_PORT_MIN && v <= NODE_PORT_MAX
      ? undefined
      : `a whole number from ${NODE_PORT_MIN} to ${NODE_PORT_MAX} (the default NodePort range)`) as Rule<number>,
  /**
   * The node port of pod 0 when pod i gets base + i: the last pod's port must stay in the range
   * too. Only that is checked here; the base itself is `nodePort`'s.
   */
  nodePortBaseFor: (raftReplicas: number): Rule<number> => (base) => {
    const last = base + raftReplicas - 1;
    return Number.isInteger(last) && last > NODE_PORT_MAX
      ? `at most ${NODE_PORT_MAX - raftReplicas + 1}: with ${raftReplicas} Raft replicas the last node port would be ${last}, above ${NODE_PORT_MAX}`
      : undefined;
  },
  /** Free text that names something (a kube context, a description). */
  singleLine: ((v: string) =>
    SINGLE_LINE.test(v) ? undefined : 'a non-empty string on one line, without leading or trailing whitespace') as Rule<string>,
  /**
   * Where clients outside the cluster reach a node: Sand Store and the runner append ":<port>", so
   * an IPv6 address needs its brackets. Digits and dots that are no IPv4 address ("10.0.1") are
   * refused, since resolvers disagree on what they mean.
   */
  host: ((v: string) =>
    IPV4.test(v)
      || (v.length <= 253 && DNS_SUBDOMAIN.test(v.toLowerCase()) && !/^[\d.]+$/.test(v))
      || (v.startsWith('[') && v.endsWith(']') && isIPv6(v.slice(1, -1)))
      ? undefined
      : 'a host name or IP address, e.g. "192.168.1.20", "laptop.lan" or "[fd00::20]"') as Rule<string>,
  /** The runner compares it with the kubeconfig's server URL. */
  apiServerUrl: ((v: string) => {
    let url: URL | undefined;
    try {
      url = new URL(v);
    } catch {
      url = undefined;
    }
    // URL() itself drops surrounding whitespace and line breaks: refused here instead.
    const ok = url !== undefined && (url.protocol === 'https:' || url.protocol === 'http:') && url.hostname !== '' && !/[\s\p{Cc}]/u.test(v);
    return ok ? undefined : 'an http(s) URL such as "https://192.168.1.20:8443"';
  }) as Rule<string>,
  registry: ((v: string) =>
    v.length <= IMAGE_NAME_MAX && REGISTRY.test(v)
      ? undefined
      : `a registry host with optional port and path and no scheme, at most ${IMAGE_NAME_MAX} characters, e.g. "docker.io/myuser" or "localhost:5000"`) as Rule<string>,
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
      : `an image reference with a tag, "<registry>/<repository>:<tag>", its name at most ${IMAGE_NAME_MAX} characters, e.g. "docker.io/sandstore/sandstore-node:ssd-raft-latest"`) as Rule<string>,
  goTag: ((v: string) => (GO_TAG.test(v) ? undefined : 'a Go build tag: letters, digits, "_" and "."')) as Rule<string>,
  /**
   * A profile's volumes go with its claims. Every run starts on empty volumes (the clean slate) and
   * destroy removes them; with Retain each run's volumes would stay on the SSD as Released, never
   * bound again and never removed, and a destroy waiting for them could not finish.
   */
  cleanSlateReclaimPolicy: ((v: string) =>
    v === 'Delete'
      ? undefined
      : '"Delete": every run starts on empty volumes and destroy removes them; with "Retain" each run\'s volumes and data would stay on the SSD, never reused or removed') as Rule<string>,
};

/** Kubernetes' qualified name: an optional DNS-subdomain prefix and "/", then a name of at most 63 characters. */
function isQualifiedName(v: string): boolean {
  const parts = v.split('/');
  const [prefix, name] = parts.length === 2 ? parts : [undefined, parts[0]];
  return parts.length <= 2 && name.length <= 63 && LABEL_NAME.test(name)
    && (prefix === undefined || (prefix.length <= 253 && DNS_SUBDOMAIN.test(prefix)));
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
