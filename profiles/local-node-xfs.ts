import { defineProfile } from '../lib/profile.js';
import localNode from './local-node.js';

/**
 * `local-node` with its volumes on the real node's loop-mounted xfs image (`npm run cluster:up`
 * makes and mounts it, scripts/local-cluster/node.sh), through local-path's per-StorageClass
 * nodePath. Differs from `local-node-ext4` only in that file system
 * (and in its name, namespace, node ports and StorageClass).
 */
export default defineProfile({
  ...localNode,
  name: 'local-node-xfs',
  // A namespace and node ports of its own: a destroyed profile's namespace may still be
  // terminating (and own its node ports) when the next one deploys.
  namespace: 'sandstore-node-xfs',
  clientAccess: { nodePortBase: 30980, leader: { ...localNode.clientAccess.leader!, nodePort: 30979 } },
  description: "local-node with its volumes on an xfs file system (the real node's loop-mounted image)",
  storage: { ...localNode.storage, className: 'sandstore-local-node-xfs', nodePath: '/var/lib/sandstore-node/xfs' },
});
