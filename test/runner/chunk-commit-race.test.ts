import { chunkCommitRace, chunkCommitRaceHint } from '../../lib/runner/chunk-commit-race.js';

/**
 * The lines Sand Store 7ab6010's clients print when its chunk commit race fails them, in the formats
 * of their sources (clients/open_smoke/main.go, integration/cluster/cluster_test.go) and as
 * bench/stale-read.ts recorded them on the real node; and near misses that are other failures.
 */
const OPEN_SMOKE_SHORT =
  '2026/12/06 21:40:01 Read(after chunkC) expected chunkA+chunkB (2621440 bytes), got 1048576 bytes';
const TEST_OPEN_SMOKE_STALE =
  'cluster_test.go:69: read mismatch: expected "hello, sandstore + appended", got "hello, sandstore"';
const REFUSED_WRITE =
  'close "/stale-read-1796595239275967538-34" failed: unknown server error (INTERNAL): all replicas failed ' +
  'to serve chunk 66fb1143-b530-428e-82b5-b978973c6f45';

test.each([OPEN_SMOKE_SHORT, TEST_OPEN_SMOKE_STALE, REFUSED_WRITE])('the race is named at its line: %s', (line) => {
  expect(chunkCommitRace(`=== RUN   TestOpenSmoke\n    ${line}\n--- FAIL: TestOpenSmoke (4.01s)`)).toBe(line);
});

test.each([
  // A read that got more than expected, or other bytes than a previous version, is not stale.
  'Read(after chunkC) expected chunkA+chunkB (2621440 bytes), got 2621440 bytes',
  'Read(lookup-fd) expected empty data, got 12 bytes',
  'read mismatch: expected "hello, sandstore + appended", got "hello, sandstorm"',
  'read mismatch: expected "hello", got "hello"',
  'write(payloadA): unknown server error (INTERNAL): node is not the leader',
  '1/3 prepare RPCs failed: prepare to node sandstore-2 failed',
])('another failure is not the race: %s', (line) => {
  expect(chunkCommitRace(line)).toBeUndefined();
});

test('the hint names the line, what to do and where it is written down', () => {
  expect(chunkCommitRaceHint(TEST_OPEN_SMOKE_STALE)).toBe(
    "this is a race in Sand Store 7ab6010's chunk commit, not the deployment " +
      `(${TEST_OPEN_SMOKE_STALE}): a read right after an acknowledged write can get the chunk's previous ` +
      'version. Run it again; see docs/leader-access.md#what-still-fails',
  );
});
