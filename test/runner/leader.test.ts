import { currentLeader, roleChanges } from '../../lib/runner/leader.js';
import { leaderFirst } from '../../lib/runner/commands/client.js';
import { withLeaderFirst } from '../../lib/runner/commands/smoke.js';

/** Reading the leader from Sand Store's event logs, and putting it first for its clients. */
const line = (node: string, text: string) => `2026-11-23T01:02:14Z [${node}] INFO: ${text} `;

test('role changes are read whatever the order of their key=value fields', () => {
  const log = [
    line('sandstore-1', 'Became Follower nodeID=sandstore-1 term=9 reason=received higher term in vote response newState=Follower'),
    line('sandstore-1', 'Became Follower term=20 reason=received higher term vote request newState=Follower nodeID=sandstore-1'),
    line('sandstore-1', 'Starting GRPC communicator address=:8080'),
  ].join('\n');
  expect(roleChanges('sandstore-1', log)).toEqual([
    { pod: 'sandstore-1', role: 'Follower', term: 9 },
    { pod: 'sandstore-1', role: 'Follower', term: 20 },
  ]);
});

test('the leader is the node whose last change is Leader in the newest term; a deposed one is not', () => {
  const changes = [
    ...roleChanges('sandstore-0', [line('sandstore-0', 'Became Leader nodeID=sandstore-0 term=19'), line('sandstore-0', 'Became Follower nodeID=sandstore-0 term=20')].join('\n')),
    ...roleChanges('sandstore-2', line('sandstore-2', 'Became Leader nodeID=sandstore-2 term=20')),
    ...roleChanges('sandstore-1', line('sandstore-1', 'Became Follower nodeID=sandstore-1 term=20')),
  ];
  expect(currentLeader(changes)).toBe('sandstore-2');
  // A leader of an old term whose followers moved on, before the new term has a leader: none.
  expect(currentLeader([{ pod: 'sandstore-0', role: 'Leader', term: 3 }, { pod: 'sandstore-1', role: 'Candidate', term: 4 }])).toBeUndefined();
  expect(currentLeader([])).toBeUndefined();
});

test('clients get the leader first, the rest in ordinal order; unknown leader: ordinal order', () => {
  const endpoints = [0, 1, 2].map((i) => ({ pod: `sandstore-${i}`, address: `10.0.0.1:3038${i}` }));
  expect(leaderFirst(endpoints, 'sandstore-1').map((e) => e.pod)).toEqual(['sandstore-1', 'sandstore-0', 'sandstore-2']);
  expect(leaderFirst(endpoints, undefined).map((e) => e.pod)).toEqual(['sandstore-0', 'sandstore-1', 'sandstore-2']);
  const job = { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'smoke' }, spec: { template: { spec: { containers: [{ name: 'smoke', env: [{ name: 'SANDSTORE_SEEDS', value: 'sandstore-0.h:8080,sandstore-1.h:8080,sandstore-10.h:8080' }] }] } } } };
  const reordered = withLeaderFirst(job as any, 'sandstore-1') as any;
  expect(reordered.spec.template.spec.containers[0].env[0].value).toBe('sandstore-1.h:8080,sandstore-0.h:8080,sandstore-10.h:8080');
  expect(job.spec.template.spec.containers[0].env[0].value).toBe('sandstore-0.h:8080,sandstore-1.h:8080,sandstore-10.h:8080');
});
