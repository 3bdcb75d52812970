import { MEMBERSHIP_PREFIX, membershipOfTxn, membershipTxn, membershipTxnOps } from './membership-txn.js';

const entry = (id: string) => ({ key: `${MEMBERSHIP_PREFIX}${id}`, value: JSON.stringify({ id }) });
const decode = (s: string) => Buffer.from(s, 'base64').toString('latin1');

/** The transaction's operations, keys decoded: ['put', key] or ['del', from, to]. */
function ops(txn: string): string[][] {
  const body = JSON.parse(txn) as {
    compare: unknown[];
    success: { request_put?: { key: string }; request_delete_range?: { key: string; range_end: string } }[];
  };
  expect(body.compare).toEqual([]);
  return body.success.map((op) =>
    op.request_put
      ? ['put', decode(op.request_put.key)]
      : ['del', decode(op.request_delete_range!.key), decode(op.request_delete_range!.range_end)],
  );
}

describe('membershipTxn', () => {
  test('puts every entry and deletes every other key under the prefix, without a range covering a put', () => {
    const entries = ['store-1', 'store-0', 'store-10', 'store-2'].map(entry);
    const txn = membershipTxn(entries);
    expect(ops(txn)).toEqual([
      ['del', '/sandstore/config/nodes/', '/sandstore/config/nodes/store-0'],
      ['put', '/sandstore/config/nodes/store-0'],
      ['del', '/sandstore/config/nodes/store-0\0', '/sandstore/config/nodes/store-1'],
      ['put', '/sandstore/config/nodes/store-1'],
      ['del', '/sandstore/config/nodes/store-1\0', '/sandstore/config/nodes/store-10'],
      ['put', '/sandstore/config/nodes/store-10'],
      ['del', '/sandstore/config/nodes/store-10\0', '/sandstore/config/nodes/store-2'],
      ['put', '/sandstore/config/nodes/store-2'],
      // The prefix's end: its last byte, '/', plus one.
      ['del', '/sandstore/config/nodes/store-2\0', '/sandstore/config/nodes0'],
    ]);
    expect(ops(txn)).toHaveLength(membershipTxnOps(entries.length));
    // etcd refuses a transaction that deletes a key it puts: no range [from, to) holds a put key.
    const puts = ops(txn).filter((o) => o[0] === 'put');
    for (const [, from, to] of ops(txn).filter((o) => o[0] === 'del'))
      for (const [, key] of puts) expect({ key, covered: key >= from && key < to }).toEqual({ key, covered: false });
  });

  test('reads back what it writes, values included, in key order', () => {
    const entries = ['b', 'a'].map(entry);
    expect(membershipOfTxn(membershipTxn(entries))).toEqual([entry('a'), entry('b')]);
  });
});
