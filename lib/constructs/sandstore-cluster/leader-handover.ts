/**
 * The leader handover (docs/performance.md, "What does reach the window"): how a replaced member
 * hears the leader before its own election timer (300–600 ms) runs out.
 *
 * The leader redials a member it lost on gRPC's reconnect back-off (1 s, then ×1.6), so its next
 * dial after the new process listens is on average seconds away, and the new member calls (and,
 * without pre-vote, wins) an election first. Instead, a container that starts before Sand Store's
 * first listens on the gRPC port itself, with the image's busybox `nc`, when the member has Raft
 * state (a member of a running cluster, not a fresh deploy). The first client that opens with
 * HTTP/2's preface and calls a Raft method (a peer) gets an empty SETTINGS frame, so its channel
 * is ready and its back-off reset, and is held; `nc -l` closed its listener at accept. Then the
 * container's postStart hook returns, and only then does the kubelet start Sand Store's container
 * (it starts a pod's containers in order, each after the one before's postStart hook): with the
 * image's own entrypoint and the container's own command, untouched. Once Sand Store listens, a
 * GOAWAY naming no stream as processed sends the held client, at once and without back-off, to
 * Sand Store, and its pending calls are retried there.
 *
 * Pure: text only. The scripts have no `$$` (Kubernetes would turn it into `$`): the held
 * connection signals the container's shell with a file.
 */

/** Where the scripts meet, and what they wait for. */
export interface LeaderHandoverSettings {
  /** Sand Store's gRPC port. */
  readonly port: number;
  /** Sand Store's data directory: a member with `raft_stable.json` there has been in a cluster. */
  readonly dataDir: string;
  /** A writable directory of the container's own (an emptyDir). */
  readonly scratchDir: string;
  /** How long to wait for a peer's connection before Sand Store starts anyway. */
  readonly holdSeconds: number;
  /** How long the held connection waits for Sand Store to listen before it lets go. */
  readonly listenSeconds: number;
}

/** The environment variable that carries the held connection's script to `nc -e`. */
export const HANDOVER_SCRIPT_ENV = 'LEADER_HANDOVER';

/** busybox printf's octal escapes of a byte sequence. */
const octal = (bytes: readonly number[]) => bytes.map((b) => `\\${b.toString(8).padStart(3, '0')}`).join('');
/** An HTTP/2 SETTINGS frame with no settings: what a gRPC client waits for to call a connection ready. */
const SETTINGS_FRAME = octal([0, 0, 0, 0x4, 0, 0, 0, 0, 0]);
/** An HTTP/2 GOAWAY, last stream 0 (nothing processed: the client retries elsewhere), NO_ERROR. */
const GOAWAY_FRAME = octal([0, 0, 8, 0x7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

/**
 * Reads the connection (dd returns each read; each bounded by `timeout`, whose own child it is, so
 * nothing outlives this script holding the connection) until it has carried a Raft message type.
 */
const PEER_CALL = [
  'buf=',
  'i=0',
  'while [ $i -lt 20 ] && c=$(timeout 1 dd bs=4096 count=1 2>/dev/null | tr -d "\\000") && [ -n "$c" ]; do',
  '  buf="$buf$c"',
  '  case "$buf" in *raft_*) break ;; esac',
  '  i=$((i + 1))',
  'done',
  'case "$buf" in *raft_*) ;; *) exit 1 ;; esac',
];

const flagOf = (s: LeaderHandoverSettings) => `${s.scratchDir}/leader-handover.held`;
const releasedOf = (s: LeaderHandoverSettings) => `${s.scratchDir}/leader-handover.released`;
/** /proc/net/tcp{,6} lines of a listening socket on the port: local :PORT, remote :0000, state 0A. */
const listening = (s: LeaderHandoverSettings) =>
  `grep -q ':${s.port.toString(16).toUpperCase().padStart(4, '0')} [0-9A-F]*:0000 0A' /proc/net/tcp6 /proc/net/tcp 2>/dev/null`;

/** The script `nc -e` runs on the accepted connection (its stdin and stdout). */
export function heldConnectionScript(s: LeaderHandoverSettings): string {
  return [
    `[ "$(timeout 1 head -c 3)" = PRI ] || exit 1`,
    `printf '${SETTINGS_FRAME}'`,
    // Ready, the client sends what it had waiting. Only a peer's Raft call (the leader's
    // AppendEntries, a candidate's RequestVote: Sand Store's message types, uncompressed) is held;
    // a client's request is closed, and the next connection is waited for. dd returns each read.
    ...PEER_CALL,
    `touch ${flagOf(s)}`,
    'n=0',
    `until ${listening(s)}; do`,
    `  [ $n -ge ${s.listenSeconds * 100} ] && break`,
    '  usleep 10000',
    '  n=$((n + 1))',
    'done',
    `printf '${GOAWAY_FRAME}'`,
  ].join('\n');
}

/**
 * The handover container's `sh -c` script: the hold, then the release its postStart hook waits
 * for, then idle until the pod stops (a container that ended would be restarted).
 */
export function handoverScript(s: LeaderHandoverSettings): string {
  const flag = flagOf(s);
  return [
    `rm -f ${flag} ${releasedOf(s)}`,
    // Only a member that has been in a cluster has a leader to wait for, only an `nc` that can
    // listen and run a program can hold its connection, and only while Sand Store does not listen
    // yet (this container restarted alone finds it listening).
    `if [ -e ${s.dataDir}/raft_stable.json ] && nc 2>&1 | grep -q -- "-e PROG" && ! ${listening(s)}; then`,
    `  end=$(( $(date +%s) + ${s.holdSeconds} ))`,
    '  (',
    '    while left=$(( end - $(date +%s) )); [ "$left" -ge 1 ]; do',
    `      nc -l -p ${s.port} -w "$left" -e sh -c "$${HANDOVER_SCRIPT_ENV}" && exit 0`,
    '    done',
    '  ) &',
    '  holder=$!',
    `  while [ ! -e ${flag} ] && kill -0 "$holder" 2>/dev/null; do usleep 20000; done`,
    `  if [ -e ${flag} ]; then`,
    '    echo "leader handover: a peer\'s connection is held until Sand Store listens"',
    '  else',
    `    echo "leader handover: no peer called within ${s.holdSeconds} s"`,
    '  fi',
    'fi',
    `touch ${releasedOf(s)}`,
    // Stops at SIGTERM at once, its idle sleep with it.
    "trap 'kill $! 2>/dev/null; exit 0' TERM INT",
    'while :; do sleep 3600 & wait $!; done',
  ].join('\n');
}

/**
 * The handover container's postStart hook: returns once the hold is over, so that the kubelet
 * starts Sand Store's container only then. Bounded: after the hold and 5 s more it returns anyway
 * (a failed hook would kill the container and hold Sand Store back until the kubelet's next try).
 */
export function releaseGateScript(s: LeaderHandoverSettings): string {
  return [
    'n=0',
    `until [ -e ${releasedOf(s)} ] || [ $n -ge ${(s.holdSeconds + 5) * 50} ]; do usleep 20000; n=$((n + 1)); done`,
  ].join('\n');
}
