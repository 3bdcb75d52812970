// Command sandstore-files writes a file into Sand Store and reads it back, through Sand Store's own
// client library (clients/library), for the e2e crash-recovery drill.
//
// It is built from the Sand Store checkout with `go build -overlay`, which places this file at
// clients/sandstore_deploy_files/ in the checkout's module without writing anything there: the
// client library needs a communicator from Sand Store's internal packages, which only code inside
// that module may import.
//
//	SANDSTORE_SEEDS=host:port,... sandstore-files write <path in Sand Store> <local file>
//	SANDSTORE_SEEDS=host:port,... sandstore-files read  <path in Sand Store> <local file>
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	sandlib "github.com/AnishMulay/sandstore/clients/library"
	grpccomm "github.com/AnishMulay/sandstore/internal/communication/grpc"
	logservice "github.com/AnishMulay/sandstore/internal/log_service"
	locallog "github.com/AnishMulay/sandstore/internal/log_service/localdisc"
)

func main() {
	if len(os.Args) != 4 || (os.Args[1] != "write" && os.Args[1] != "read") {
		fail("usage: sandstore-files write|read <path in Sand Store> <local file>")
	}
	var seeds []string
	for _, s := range strings.Split(os.Getenv("SANDSTORE_SEEDS"), ",") {
		if s = strings.TrimSpace(s); s != "" {
			seeds = append(seeds, s)
		}
	}
	if len(seeds) == 0 {
		fail("SANDSTORE_SEEDS is empty")
	}
	ls := locallog.NewLocalDiscLogService(filepath.Join(os.TempDir(), "sandstore-files-logs"), "sandstore-files", logservice.InfoLevel)
	client, err := sandlib.NewSandstoreClient(seeds, grpccomm.NewGRPCCommunicator(":0", ls))
	if err != nil {
		fail("connecting to %v: %v", seeds, err)
	}
	path, local := os.Args[2], os.Args[3]
	if os.Args[1] == "write" {
		data, err := os.ReadFile(local)
		if err != nil {
			fail("%v", err)
		}
		fd, err := client.Open(path, os.O_CREATE|os.O_RDWR)
		if err != nil {
			fail("open %s: %v", path, err)
		}
		if n, err := client.Write(fd, data); err != nil || n != len(data) {
			fail("write %s: %d of %d bytes: %v", path, n, len(data), err)
		}
		if err := client.Fsync(fd); err != nil {
			fail("fsync %s: %v", path, err)
		}
		if err := client.Close(fd); err != nil {
			fail("close %s: %v", path, err)
		}
		fmt.Printf("wrote %d bytes to %s\n", len(data), path)
		return
	}
	fd, err := client.Open(path, os.O_RDWR)
	if err != nil {
		fail("open %s: %v", path, err)
	}
	var out []byte
	for {
		chunk, err := client.Read(fd, 1<<20)
		if err != nil {
			fail("read %s: %v", path, err)
		}
		if len(chunk) == 0 {
			break
		}
		out = append(out, chunk...)
	}
	if err := client.Close(fd); err != nil {
		fail("close %s: %v", path, err)
	}
	if err := os.WriteFile(local, out, 0o644); err != nil {
		fail("%v", err)
	}
	fmt.Printf("read %d bytes from %s\n", len(out), path)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "sandstore-files: "+format+"\n", args...)
	os.Exit(1)
}
