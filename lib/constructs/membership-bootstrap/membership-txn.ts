/*
 * Sand Store's static membership as one etcd transaction, in the JSON form of etcd's gRPC gateway
 * (POST /v3/kv/txn on the client port). No cdk8s here: the manifest checks and the processes
 * baseline read the membership back from dist/ without loading the constructs.
 */

/** Where Sand Store looks up its members in etcd: one key per node, `<prefix><node id>`. */
export const MEMBERSHIP_PREFIX = '/sandstore/config/nodes/';

/** One entry of the static membership, as Sand Store reads it from etcd. */
export interface MembershipEntry {
  readonly key: string;
  readonly value: string;
}

/** The membership Job's pod annotation that lists the entries in plain text, for review. */
export const MEMBERSHIP_ANNOTATION = 'sandstore.io/membership';

/** The membership Job's pod annotation that carries the transaction (mounted as a file). */
export const MEMBERSHIP_TXN_ANNOTATION = 'sandstore.io/membership-txn';

interface TxnOp {
  readonly request_put?: { readonly key: string; readonly value: string };
  readonly request_delete_range?: { readonly key: string; readonly range_end: string };
}

const b64 = (bytes: Buffer) => bytes.toString('base64');
const fromB64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');

/** The first key after every key that starts with `prefix`: its last byte plus one. */
function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  end[end.length - 1] += 1;
  return end;
}

/** Operations in the transaction for `members` entries: a put each, and the deletes around them. */
export const membershipTxnOps = (members: number) => 2 * members + 1;

/**
 * One transaction that leaves exactly `entries` under MEMBERSHIP_PREFIX, whatever was there: a put
 * per entry, and deletes of the ranges between them (etcd refuses a transaction whose delete range
 * covers a key it also puts, so "delete the prefix, then put" cannot be one transaction). Atomic: a
 * node that sees its own key sees every other member's too, and no stale one.
 */
export function membershipTxn(entries: readonly MembershipEntry[]): string {
  const keys = entries.map((e) => ({ key: Buffer.from(e.key), value: Buffer.from(e.value) }));
  keys.sort((a, b) => Buffer.compare(a.key, b.key));
  const ops: TxnOp[] = [];
  let from = Buffer.from(MEMBERSHIP_PREFIX);
  for (const { key, value } of keys) {
    ops.push({ request_delete_range: { key: b64(from), range_end: b64(key) } });
    ops.push({ request_put: { key: b64(key), value: b64(value) } });
    // The key's immediate successor: the key followed by a zero byte.
    from = Buffer.concat([key, Buffer.from([0])]);
  }
  ops.push({ request_delete_range: { key: b64(from), range_end: b64(prefixEnd(Buffer.from(MEMBERSHIP_PREFIX))) } });
  return JSON.stringify({ compare: [], success: ops });
}

/** The entries a transaction written by membershipTxn puts, in key order. */
export function membershipOfTxn(txn: string): MembershipEntry[] {
  const body = JSON.parse(txn) as { success?: TxnOp[] };
  return (body.success ?? []).flatMap((op) =>
    op.request_put ? [{ key: fromB64(op.request_put.key), value: fromB64(op.request_put.value) }] : [],
  );
}
