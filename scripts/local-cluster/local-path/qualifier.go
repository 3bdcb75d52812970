//go:build sandstore_local_cluster

// This one file is added to rancher/local-path-provisioner (package main) by
// scripts/local-cluster/build.sh, which builds the module's own source with
// it; no upstream file is changed. It implements the two optional interfaces
// of sig-storage-lib-external-provisioner (Qualifier, DeletionGuard) that
// v0.0.30 leaves out, so that on the local cluster it shares the name
// rancher.io/local-path with the test provisioner of the kwok nodes without
// either touching the other's claims or volumes:
//
//   - a claim is provisioned only when its selected node has paths in the
//     config (nodePathMap): without this, a claim on a kwok node is attempted,
//     fails ("config doesn't contain node ...") with a ProvisioningFailed
//     event, and is retried while the test provisioner binds it;
//   - a volume is deleted only when local-path made it (its
//     local.path.provisioner/selected-node annotation): without this, a
//     released kwok volume would get a helper pod on a kwok node, which no
//     kubelet runs, and a 120 s wait.
package main

import (
	"context"

	v1 "k8s.io/api/core/v1"
)

const annSelectedNode = "volume.kubernetes.io/selected-node"

// ShouldProvision implements controller.Qualifier.
func (p *LocalPathProvisioner) ShouldProvision(_ context.Context, claim *v1.PersistentVolumeClaim) bool {
	return p.hasPathsOn(claim.Annotations[annSelectedNode])
}

// ShouldDelete implements controller.DeletionGuard.
func (p *LocalPathProvisioner) ShouldDelete(_ context.Context, pv *v1.PersistentVolume) bool {
	_, made := pv.Annotations[nodeNameAnnotationKey]
	return made
}

// hasPathsOn: some class config gives the node a path (its own entry, the
// default for unlisted nodes, or a shared file system).
func (p *LocalPathProvisioner) hasPathsOn(node string) bool {
	p.configMutex.RLock()
	defer p.configMutex.RUnlock()
	if p.config == nil || node == "" {
		return false
	}
	configs := []StorageClassConfig{p.config.StorageClassConfig}
	for _, c := range p.config.StorageClassConfigs {
		configs = append(configs, c)
	}
	for _, c := range configs {
		if c.SharedFileSystemPath != "" || c.NodePathMap[node] != nil || c.NodePathMap[NodeDefaultNonListedNodes] != nil {
			return true
		}
	}
	return false
}
