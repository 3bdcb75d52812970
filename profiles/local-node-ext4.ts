import { defineProfile } from '../lib/profile.js';
import localNode from './local-node.js';

/**
 * `local-node` with its volumes on the real node's loop-mounted ext4 image (`npm run cluster:up`
 * makes and mounts it, scripts/local-cluster/node.sh), through local-path's per-StorageClass
 * nodePath. Differs from `local-node-xfs` only in that file system
 * (and in its name, namespace, node ports and StorageClass).
 */
export default defineProfile({
  ...localNode,
  name: 'local-node-ext4',
  // A namespace and node ports of its own: a destroyed profile's namespace may still be
  // terminating (and own its node ports) when the next one deploys.
  namespace: 'sandstore-node-ext4',
  clientAccess: { nodePortBase: 30880, leader: { ...localNode.clientAccess.leader!, nodePort: 30879 } },
  description: "local-node with its volumes on an ext4 file system (the real node's loop-mounted image)",
  storage: { ...localNode.storage, className: 'sandstore-local-node-ext4', nodePath: '/var/lib/sandstore-node/ext4' },
});
