/**
 * Failures of Sand Store 7ab6010's own clients that a race in its chunk commit causes, whatever the
 * deployment. A replica makes a chunk's new version its committed one (renames the prepared file)
 * on a notification the leader sends asynchronously after the Raft commit, and serves a chunk read
 * from its committed file first. So right after an acknowledged write to an existing chunk, a read
 * can get the chunk's previous version, and a write that must read the chunk first can be refused
 * while the new version is prepared there but not yet known committed ("all replicas failed to
 * serve chunk"). docs/leader-access.md#what-still-fails; bench/stale-read.ts measures how often.
 */

/** open_smoke's read-back check: `Read(after chunkC) expected chunkA+chunkB (2621440 bytes), got 1048576 bytes`. */
const SHORT_READ_BACK = /Read\([^)]*\) expected [^\n]*\((\d+) bytes\), got (\d+) bytes/;
/** integration/cluster's TestOpenSmoke: `read mismatch: expected "…", got "…"`. */
const READ_MISMATCH = /read mismatch: expected "([^"\n]*)", got "([^"\n]*)"/;
const REFUSED_READ = /all replicas failed to serve chunk/;

/** The line of `log` that shows the race, when one does. */
export function chunkCommitRace(log: string): string | undefined {
  for (const line of log.split('\n')) {
    const short = SHORT_READ_BACK.exec(line);
    if (short && Number(short[2]) < Number(short[1])) return line.trim();
    const mismatch = READ_MISMATCH.exec(line);
    // The previous version is what was written before: a proper prefix of what was expected.
    if (mismatch && mismatch[1].startsWith(mismatch[2]) && mismatch[2] !== mismatch[1]) return line.trim();
    if (REFUSED_READ.test(line)) return line.trim();
  }
  return undefined;
}

/** What to tell a user whose Sand Store client failed at `line`. */
export function chunkCommitRaceHint(line: string): string {
  return (
    `this is a race in Sand Store 7ab6010's chunk commit, not the deployment (${line}): a read right ` +
    `after an acknowledged write can get the chunk's previous version. Run it again; see ` +
    `docs/leader-access.md#what-still-fails`
  );
}
