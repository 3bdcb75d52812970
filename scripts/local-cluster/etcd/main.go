// Command etcd is etcd's own entry point (go.etcd.io/etcd/v3's main.go),
// compiled from the go.etcd.io/etcd/server/v3 module at the version that
// k8s.io/kubernetes pins, so no etcd download or apt package is needed.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
