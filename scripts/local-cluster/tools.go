//go:build tools

// Package tools pins the Kubernetes commands that build.sh compiles, so that
// `go mod tidy` keeps them (and their exact dependency versions) in go.sum.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "go.etcd.io/etcd/etcdctl/v3"
)
