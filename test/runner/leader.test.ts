import { createServer, type Server } from 'node:http';
import { PassThrough } from 'node:stream';
import type { CommandContext } from '../../lib/runner/commands/context.js';
import { awaitLeader, currentLeader, roleChanges } from '../../lib/runner/leader.js';
import { Reporter } from '../../lib/runner/report.js';
import { kubeAt } from '../cli-harness.js';
import { leaderFirst } from '../../lib/runner/commands/client.js';
import { withLeaderFirst } from '../../lib/runner/commands/smoke.js';

/** Reading the leader from Sand Store's event logs, and putting it first for its clients. */
const line = (node: string, text: string) => `2026-11-23T01:02:14Z [${node}] INFO: ${text} `;

test('role changes are read whatever the order of their key=value fields', () => {
  const log = [
    line(
      'sandstore-1',
      'Became Follower nodeID=sandstore-1 term=9 reason=received higher term in vote response newState=Follower',
    ),
    line(
      'sandstore-1',
      'Became Follower term=20 reason=received higher term vote request newState=Follower nodeID=sandstore-1',
    ),
    line('sandstore-1', 'Starting GRPC communicator address=:8080'),
  ].join('\n');
  expect(roleChanges('sandstore-1', log)).toEqual([
    { pod: 'sandstore-1', role: 'Follower', term: 9 },
    { pod: 'sandstore-1', role: 'Follower', term: 20 },
  ]);
});

test('the leader is the node whose last change is Leader in the newest term; a deposed one is not', () => {
  const changes = [
    ...roleChanges(
      'sandstore-0',
      [
        line('sandstore-0', 'Became Leader nodeID=sandstore-0 term=19'),
        line('sandstore-0', 'Became Follower nodeID=sandstore-0 term=20'),
      ].join('\n'),
    ),
    ...roleChanges('sandstore-2', line('sandstore-2', 'Became Leader nodeID=sandstore-2 term=20')),
    ...roleChanges('sandstore-1', line('sandstore-1', 'Became Follower nodeID=sandstore-1 term=20')),
  ];
  expect(currentLeader(changes)).toBe('sandstore-2');
  // A leader of an old term whose followers moved on, before the new term has a leader: none.
  expect(
    currentLeader([
      { pod: 'sandstore-0', role: 'Leader', term: 3 },
      { pod: 'sandstore-1', role: 'Candidate', term: 4 },
    ]),
  ).toBeUndefined();
  expect(currentLeader([])).toBeUndefined();
});

test('clients get the leader first, the rest in ordinal order; unknown leader: ordinal order', () => {
  const endpoints = [0, 1, 2].map((i) => ({ pod: `sandstore-${i}`, address: `10.0.0.1:3038${i}` }));
  expect(leaderFirst(endpoints, 'sandstore-1').map((e) => e.pod)).toEqual([
    'sandstore-1',
    'sandstore-0',
    'sandstore-2',
  ]);
  expect(leaderFirst(endpoints, undefined).map((e) => e.pod)).toEqual(['sandstore-0', 'sandstore-1', 'sandstore-2']);
  const job = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: 'smoke' },
    spec: {
      template: {
        spec: {
          containers: [
            {
              name: 'smoke',
              env: [{ name: 'SANDSTORE_SEEDS', value: 'sandstore-0.h:8080,sandstore-1.h:8080,sandstore-10.h:8080' }],
            },
          ],
        },
      },
    },
  };
  const reordered = withLeaderFirst(job, 'sandstore-1');
  expect(reordered.spec?.template.spec?.containers[0]?.env?.[0]?.value).toBe(
    'sandstore-1.h:8080,sandstore-0.h:8080,sandstore-10.h:8080',
  );
  expect(job.spec.template.spec.containers[0].env[0].value).toBe(
    'sandstore-0.h:8080,sandstore-1.h:8080,sandstore-10.h:8080',
  );
});

describe("waiting for an election to end (a stand-in API server serving the pods' event logs)", () => {
  let http: Server;
  let base = '';
  /** Each pod's event log, by the number of log reads so far (the last entry is repeated). */
  let logsByRead: Record<string, string>[] = [];
  let reads = 0;
  beforeAll(async () => {
    http = createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      const url = new URL(req.url ?? '/', 'http://x');
      const logOf = /\/pods\/([^/]+)\/log$/.exec(url.pathname);
      if (logOf) {
        const logs = logsByRead[Math.min(Math.floor(reads / 3), logsByRead.length - 1)];
        reads++;
        res.end(logs[logOf[1]] ?? '');
        return;
      }
      const events = { name: 'events', state: { running: {} } };
      res.end(
        JSON.stringify({
          kind: 'PodList',
          apiVersion: 'v1',
          metadata: { resourceVersion: '1' },
          items: [0, 1, 2].map((i) => ({
            metadata: { name: `sandstore-${i}`, namespace: 'ns' },
            status: { containerStatuses: [events] },
          })),
        }),
      );
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => http.close(() => resolve())));

  const run = async (timeoutSeconds = 30) => {
    const out = new PassThrough();
    let printed = '';
    out.on('data', (d: Buffer) => {
      printed += d.toString();
    });
    const ctx = {
      kube: kubeAt(base),
      report: new Reporter(out, out),
      profile: { name: 'p' },
      namespace: 'ns',
      timeoutSeconds,
    } as unknown as CommandContext;
    reads = 0;
    const leader = await awaitLeader(ctx);
    return { leader, printed, reads };
  };

  const deposed = {
    'sandstore-0': line('sandstore-0', 'Became Leader nodeID=sandstore-0 term=4'),
    'sandstore-2': line('sandstore-2', 'Became Candidate nodeID=sandstore-2 term=5'),
  };
  const elected = { ...deposed, 'sandstore-1': line('sandstore-1', 'Became Leader nodeID=sandstore-1 term=5') };

  test('while role changes name no current leader, the logs are read again until one does', async () => {
    logsByRead = [deposed, deposed, elected];
    const r = await run();
    expect(r.leader).toBe('sandstore-1');
    expect(r.reads).toBe(9);
    expect(r.printed).toMatch(
      /! leader: an election is under way \(role changes in the event logs, no current leader\); waiting up to 30s for it to end/,
    );
    expect(r.printed).toMatch(/leader: sandstore-1, after [\d.]+s of waiting/);
  });

  test('a leader at once is taken at once, with nothing said about waiting', async () => {
    logsByRead = [elected];
    const r = await run();
    expect({ leader: r.leader, reads: r.reads, printed: r.printed }).toEqual({
      leader: 'sandstore-1',
      reads: 3,
      printed: '',
    });
  });

  test('no role change at all (no Sand Store events): no wait, ordinal order, said', async () => {
    logsByRead = [{}];
    const r = await run();
    expect({ leader: r.leader, reads: r.reads }).toEqual({ leader: undefined, reads: 3 });
    expect(r.printed).toContain('no role change in the event logs yet; going on with the nodes in ordinal order');
  });

  test('an election that does not end within the wait (bounded by --timeout): ordinal order, said', async () => {
    logsByRead = [deposed];
    const r = await run(2);
    expect(r.leader).toBeUndefined();
    expect(r.printed).toContain('waiting up to 2s for it to end');
    expect(r.printed).toContain('still no leader after 2s; going on with the nodes in ordinal order');
  });
});
