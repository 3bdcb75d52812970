/**
 * The rules for values that a typo can break, defined once and used both by the profile schema
 * (which reports every problem at once) and by the constructs' constructors (which throw on the
 * first). Each rule returns `undefined` when the value is fine, or the accepted form as a phrase.
 */

/** A Kubernetes resource quantity: a decimal number with an optional SI or binary suffix. */
const QUANTITY = /^(?:\d+(?:\.\d+)?|\.\d+)(?:m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;
/** RFC 1123 DNS label, the form of namespace, service and most object names. */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** RFC 1123 subdomain, the form of StorageClass names and label prefixes. */
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

export const NODE_PORT_MIN = 30000;
export const NODE_PORT_MAX = 32767;

export type Rule<T> = (value: T) => string | undefined;

export const rules = {
  quantity: ((v: string) =>
    QUANTITY.test(v) ? undefined : 'a Kubernetes quantity such as "20Gi", "512Mi", "500m" or "2"') as Rule<string>,
  dnsLabel: ((v: string) =>
    v.length <= 63 && DNS_LABEL.test(v)
      ? undefined
      : 'a DNS label: at most 63 lower-case letters, digits and "-", starting and ending alphanumeric') as Rule<string>,
  dnsSubdomain: ((v: string) =>
    v.length <= 253 && DNS_SUBDOMAIN.test(v)
      ? undefined
      : 'a DNS subdomain: lower-case letters, digits, "-" and ".", starting and ending alphanumeric') as Rule<string>,
  labelKey: ((v: string) => {
    const parts = v.split('/');
    const [prefix, name] = parts.length === 2 ? parts : [undefined, parts[0]];
    const ok = parts.length <= 2 && name.length <= 63 && LABEL_NAME.test(name)
      && (prefix === undefined || (prefix.length <= 253 && DNS_SUBDOMAIN.test(prefix)));
    return ok ? undefined : 'a label key such as "node.sandstore.io/disk": optional DNS-subdomain prefix, "/", a name of at most 63 characters';
  }) as Rule<string>,
  labelValue: ((v: string) =>
    v.length <= 63 && LABEL_VALUE.test(v)
      ? undefined
      : 'a label value: at most 63 letters, digits, "-", "_" or ".", starting and ending alphanumeric') as Rule<string>,
  /** Raft needs a strict majority; an even member count adds a node without adding fault tolerance. */
  oddAtLeast: (min: number): Rule<number> => (v) =>
    Number.isInteger(v) && v >= min && v % 2 === 1 ? undefined : `an odd whole number of at least ${min}`,
  positiveInt: ((v: number) =>
    Number.isInteger(v) && v > 0 ? undefined : 'a whole number greater than 0') as Rule<number>,
  nodePort: ((v: number) =>
    Number.isInteger(v) && v >= NODE_PORT_MIN && v <= NODE_PORT_MAX
      ? undefined
      : `a whole number from ${NODE_PORT_MIN} to ${NODE_PORT_MAX} (the default NodePort range)`) as Rule<number>,
  nonEmpty: ((v: string) => (v.trim().length > 0 ? undefined : 'a non-empty string')) as Rule<string>,
};

/** Throws the construct-style error: what field, what value, what is accepted. */
export function check<T>(construct: string, field: string, value: T, rule: Rule<T>): void {
  const accepted = rule(value);
  if (accepted !== undefined) {
    throw new Error(`${construct}: invalid ${field} ${JSON.stringify(value)}; expected ${accepted}`);
  }
}

/** Majority of `members`: the number that must stay up for a Raft or etcd cluster to make progress. */
export function quorum(members: number): number {
  return Math.floor(members / 2) + 1;
}
