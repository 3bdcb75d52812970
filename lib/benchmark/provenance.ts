/**
 * Where a number came from: the profile's generated YAML (by digest), this project's revision, and
 * the cluster as the API server reports it (each node's kernel, OS, capacity; each pod's node and
 * the image digest its containers run). Read-only.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { profileSelector } from '../labels.js';
import type { CommandContext } from '../runner/commands/context.js';
import type { Node, Pod } from '../runner/kube.js';
import { restarts } from '../runner/pods.js';
import type { RunRecord } from './record.js';

type ClusterRecord = RunRecord['cluster'];

/** sha256 over dist/<profile>/'s files, names and contents in name order: the YAML that was reviewed. */
export function distDigest(distDir: string, profileName: string): string {
  const dir = join(distDir, profileName);
  const hash = createHash('sha256');
  for (const name of readdirSync(dir)
    .filter((n) => !n.startsWith('.'))
    .sort()) {
    hash
      .update(`${name}\0`)
      .update(readFileSync(join(dir, name)))
      .update('\0');
  }
  return `sha256:${hash.digest('hex')}`;
}

/** This project's git revision and whether its work tree has changes (undefined outside a git checkout). */
export function projectRevision(root: string): RunRecord['project'] {
  const git = (...args: string[]) => spawnSync('git', ['-C', root, ...args], { encoding: 'utf8' });
  const head = git('rev-parse', 'HEAD');
  if (head.status !== 0) return { dirty: false };
  const status = git('status', '--porcelain', '--untracked-files=no');
  return { revision: head.stdout.trim(), dirty: status.stdout.trim() !== '' };
}

/**
 * The nodes, the profile's running pods (Sand Store and etcd; not finished Jobs') and its claims,
 * as the API server reports them now.
 */
export async function clusterFacts(
  ctx: CommandContext,
): Promise<Omit<ClusterRecord, 'context' | 'server' | 'namespace'>> {
  const [nodes, pods, claims] = await Promise.all([
    ctx.kube.list('Node'),
    ctx.kube.list('Pod', {
      namespace: ctx.namespace,
      labelSelector: profileSelector(ctx.profile.name),
      fieldSelector: 'status.phase=Running',
    }),
    ctx.kube.list('PersistentVolumeClaim', {
      namespace: ctx.namespace,
      labelSelector: profileSelector(ctx.profile.name),
    }),
  ]);
  const used = new Set(pods.items.map((p) => p.spec?.nodeName));
  const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name, 'en', { numeric: true });
  return {
    nodes: nodes.items.filter((n) => used.has(n.metadata.name)).map(nodeRecord),
    pods: pods.items.map(podRecord).sort(byName),
    claims: claims.items
      .map((c) => ({ name: c.metadata.name, uid: c.metadata.uid ?? '', volume: c.spec?.volumeName }))
      .sort(byName),
  };
}

function nodeRecord(node: Node): ClusterRecord['nodes'][number] {
  const info = node.status?.nodeInfo;
  const capacity = node.status?.capacity;
  return {
    name: node.metadata.name,
    kernelVersion: info?.kernelVersion ?? '',
    osImage: info?.osImage ?? '',
    containerRuntime: info?.containerRuntimeVersion ?? '',
    kubeletVersion: info?.kubeletVersion ?? '',
    architecture: info?.architecture ?? '',
    cpu: capacity?.cpu ?? '',
    memory: capacity?.memory ?? '',
  };
}

function podRecord(pod: Pod): ClusterRecord['pods'][number] {
  const statuses = pod.status?.containerStatuses ?? [];
  return {
    name: pod.metadata.name,
    node: pod.spec?.nodeName,
    restarts: restarts(pod),
    containers: statuses.map((c) => ({ name: c.name, image: c.image, imageID: c.imageID })),
  };
}
