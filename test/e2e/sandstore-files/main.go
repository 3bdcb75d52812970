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
//	SANDSTORE_SEEDS=host:port,... sandstore-files churn <seconds> <report.json>
//
// churn writes and reads back small files without pause for the given time, as a client would
// during a rolling update, and reports every operation that needed retries (see churn below).
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	sandlib "github.com/AnishMulay/sandstore/clients/library"
	grpccomm "github.com/AnishMulay/sandstore/internal/communication/grpc"
	logservice "github.com/AnishMulay/sandstore/internal/log_service"
	locallog "github.com/AnishMulay/sandstore/internal/log_service/localdisc"
)

func main() {
	if len(os.Args) != 4 || (os.Args[1] != "write" && os.Args[1] != "read" && os.Args[1] != "churn") {
		fail("usage: sandstore-files write|read <path in Sand Store> <local file> | churn <seconds> <report.json>")
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
	if os.Args[1] == "churn" {
		seconds, err := strconv.Atoi(os.Args[2])
		if err != nil || seconds <= 0 {
			fail("churn: seconds must be a positive whole number, got %q", os.Args[2])
		}
		churn(seeds, time.Duration(seconds)*time.Second, os.Args[3])
		return
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

// churnReport is what churn measured: every operation (a write of a fresh file, then reading it
// back) and, for those that needed retries, how long from their first failed attempt to success.
type churnReport struct {
	Operations int `json:"operations"`
	// Retried operations: attempts failed on every node in turn before one succeeded (no leader
	// reachable: an election, or the leader's pod restarting). Trying a follower first is not one.
	Outages    []outage `json:"outages"`
	Mismatches int      `json:"mismatches"`
	Abandoned  int      `json:"abandoned"`
}

type outage struct {
	StartedAt time.Time `json:"startedAt"`
	Millis    int64     `json:"millis"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"lastError"`
	// Errors counts each distinct error of the failed attempts (node rejections, unreachable
	// nodes, failed chunk writes), so an outage can be told apart from routing.
	Errors map[string]int `json:"errors"`
}

// churn: until the deadline, write a 4 KiB file and read it back, each operation retried on the
// next node in turn until it succeeds (Sand Store 7ab6010 cannot send a client from a follower to
// the leader, so the client finds the leader by trying the nodes). An operation still failing 60 s
// after its first attempt is abandoned.
func churn(seeds []string, length time.Duration, reportPath string) {
	var report churnReport
	logDir := filepath.Join(os.TempDir(), "sandstore-files-logs")
	comm := grpccomm.NewGRPCCommunicator(":0", locallog.NewLocalDiscLogService(logDir, "sandstore-files", logservice.InfoLevel))
	node := 0
	for end := time.Now().Add(length); time.Now().Before(end); {
		report.Operations++
		data := make([]byte, 4096)
		_, _ = rand.Read(data)
		first, attempts, lastErr, errs := time.Time{}, 0, error(nil), map[string]int{}
		for {
			attempts++
			ordered := append(append([]string{}, seeds[node:]...), seeds[:node]...)
			// A new file per attempt: a half-done attempt may have left the last one behind.
			path := fmt.Sprintf("/churn-%d-%d-%d.bin", time.Now().UnixNano(), report.Operations, attempts)
			err := writeAndReadBack(ordered, comm, path, data)
			if err == nil {
				break
			}
			if errors.Is(err, errMismatch) {
				report.Mismatches++
				break
			}
			lastErr = err
			errs[err.Error()]++
			if first.IsZero() {
				first = time.Now()
			}
			if time.Since(first) > 60*time.Second {
				report.Abandoned++
				break
			}
			node = (node + 1) % len(seeds)
			time.Sleep(50 * time.Millisecond)
		}
		if attempts > len(seeds) && lastErr != nil {
			report.Outages = append(report.Outages, outage{StartedAt: first, Millis: time.Since(first).Milliseconds(), Attempts: attempts, LastError: lastErr.Error(), Errors: errs})
		}
	}
	out, _ := json.MarshalIndent(report, "", "  ")
	if err := os.WriteFile(reportPath, out, 0o644); err != nil {
		fail("%v", err)
	}
	fmt.Printf("churn: %d operations, %d outages, %d mismatches, %d abandoned\n", report.Operations, len(report.Outages), report.Mismatches, report.Abandoned)
}

var errMismatch = errors.New("read back differs from what was written")

func writeAndReadBack(seeds []string, comm *grpccomm.GRPCCommunicator, path string, data []byte) error {
	client, err := sandlib.NewSandstoreClient(seeds, comm)
	if err != nil {
		return err
	}
	fd, err := client.Open(path, os.O_CREATE|os.O_RDWR)
	if err != nil {
		return err
	}
	if _, err := client.Write(fd, data); err != nil {
		return err
	}
	if err := client.Fsync(fd); err != nil {
		return err
	}
	if err := client.Close(fd); err != nil {
		return err
	}
	fd, err = client.Open(path, os.O_RDWR)
	if err != nil {
		return err
	}
	got, err := client.Read(fd, len(data)+1)
	if err != nil {
		return err
	}
	_ = client.Close(fd)
	if !bytes.Equal(got, data) {
		return errMismatch
	}
	return nil
}
