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
//	SANDSTORE_SEEDS=... SANDSTORE_POD_ADDRESSES=<pod>=host:port,... sandstore-files churn-follow <seconds> <report.json>
//	SANDSTORE_SEEDS=host:port,... sandstore-files stale-read <sequences> <report.json>
//
// churn writes and reads back small files without pause for the given time (0: until SIGTERM or
// SIGINT, which also end a timed run early), as a client would during a rolling update, and reports
// every operation that needed retries (see churn below). churn-follow does the same, but follows a
// follower's "not the leader. leader is <pod> at <in-cluster address>" to that pod's address outside
// the cluster (SANDSTORE_POD_ADDRESSES, which `npm run client` sets), as a client that knows the
// mapping would: its outages are the cluster's, not a client's blind spot. It prints "churn: <n> ok" after every
// 10th successful operation, so that a caller can tell it is being served.
//
// stale-read runs upstream's TestOpenSmoke sequence (create, write, fsync, write more, close, open,
// read) the given number of times and reports each read that returned other than the whole file,
// with what a read 200 ms later returned (see staleRead below).
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	sandlib "github.com/AnishMulay/sandstore/clients/library"
	grpccomm "github.com/AnishMulay/sandstore/internal/communication/grpc"
	logservice "github.com/AnishMulay/sandstore/internal/log_service"
	locallog "github.com/AnishMulay/sandstore/internal/log_service/localdisc"
)

func main() {
	follow := os.Args[1] == "churn-follow"
	modes := map[string]bool{"write": true, "read": true, "churn": true, "churn-follow": true, "stale-read": true}
	if len(os.Args) != 4 || !modes[os.Args[1]] {
		fail("usage: sandstore-files write|read <path in Sand Store> <local file> | churn|churn-follow <seconds> <report.json> | stale-read <sequences> <report.json>")
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
	if os.Args[1] == "churn" || follow {
		seconds, err := strconv.Atoi(os.Args[2])
		if err != nil || seconds < 0 {
			fail("churn: seconds must be a whole number (0: until SIGTERM), got %q", os.Args[2])
		}
		var pods map[string]int
		if follow {
			pods = podIndexes(seeds, os.Getenv("SANDSTORE_POD_ADDRESSES"))
		}
		churn(seeds, pods, time.Duration(seconds)*time.Second, os.Args[3])
		return
	}
	if os.Args[1] == "stale-read" {
		sequences, err := strconv.Atoi(os.Args[2])
		if err != nil || sequences < 1 {
			fail("stale-read: sequences must be a whole number above 0, got %q", os.Args[2])
		}
		staleRead(seeds, sequences, os.Args[3])
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
	Outages    []outage   `json:"outages"`
	Mismatches []mismatch `json:"mismatches"`
	Abandoned  int        `json:"abandoned"`
}

type outage struct {
	StartedAt time.Time `json:"startedAt"`
	Millis    int64     `json:"millis"`
	Attempts  int       `json:"attempts"`
	// The error seen most often during the outage.
	MostFrequentError string `json:"mostFrequentError"`
	// Errors counts each distinct error of the failed attempts (node rejections, unreachable
	// nodes, failed chunk writes), so an outage can be told apart from routing.
	Errors map[string]int `json:"errors"`
}

// mismatch is a file whose write was acknowledged but whose read-back differed: what came back,
// and whether reading it again a second later returned what was written (a stale read) or not.
type mismatch struct {
	At           time.Time `json:"at"`
	Path         string    `json:"path"`
	Wrote        int       `json:"wrote"`
	Read         int       `json:"read"`
	ReadIsPrefix bool      `json:"readIsPrefix"`
	RereadEqual  bool      `json:"rereadEqual"`
	RereadError  string    `json:"rereadError,omitempty"`
	// At the end of the run, once the cluster had served both clients again: how many nodes, each
	// asked alone, returned what was written, of how many. Sand Store 7ab6010 serves a read from the
	// local metadata of whichever node gets it, with no leader check, so a member still catching up
	// its log returns a new file as empty; all of them whole at the end means nothing was lost.
	FinalWhole int `json:"finalWhole"`
	Nodes      int `json:"nodes"`
	written    []byte
}

// churn: until the deadline (or a signal), write a 4 KiB file and read it back, each operation
// retried on the next node in turn until it succeeds (Sand Store 7ab6010 cannot send a client from
// a follower to the leader, so the client finds the leader by trying the nodes). An operation still
// failing 60 s after its first attempt is abandoned.
//
// With pods (churn-follow), an answer naming the leader sends the next attempt straight to it, and
// only other failures count towards an outage.
func churn(seeds []string, pods map[string]int, length time.Duration, reportPath string) {
	report := churnReport{Outages: []outage{}, Mismatches: []mismatch{}}
	logDir := filepath.Join(os.TempDir(), "sandstore-files-logs")
	logs := locallog.NewLocalDiscLogService(logDir, "sandstore-files", logservice.InfoLevel)
	comm := grpccomm.NewGRPCCommunicator(":0", logs)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	stopping := false
	stopped := func() bool {
		if !stopping {
			select {
			case <-stop:
				stopping = true
			default:
			}
		}
		return stopping
	}
	node := 0
	succeeded := 0
	end := time.Now().Add(length)
	for !stopped() && (length == 0 || time.Now().Before(end)) {
		report.Operations++
		data := make([]byte, 4096)
		_, _ = rand.Read(data)
		first, attempts, errs, ok := time.Time{}, 0, map[string]int{}, false
		redirects := 0
		for {
			attempts++
			ordered := append(append([]string{}, seeds[node:]...), seeds[:node]...)
			// A new file per attempt: a half-done attempt may have left the last one behind.
			path := fmt.Sprintf("/churn-%d-%d-%d.bin", time.Now().UnixNano(), report.Operations, attempts)
			got, err := writeAndReadBack(ordered, comm, path, data)
			if err == nil {
				ok = true
				break
			}
			if errors.Is(err, errMismatch) {
				m := describeMismatch(ordered, comm, path, data, got)
				m.written = data
				report.Mismatches = append(report.Mismatches, m)
				break
			}
			if to, ok := redirect(err, pods); ok && redirects < len(seeds) {
				redirects++
				node = to
				continue
			}
			errs[errorKind(err.Error())]++
			// Fresh connections after a failure: a gRPC connection that failed waits out its
			// reconnect back-off (growing to 120 s) before it dials again, which would stretch the
			// window measured here beyond Sand Store's own. The old ones are left to idle out
			// (the communicator has no way to close its clients).
			comm = grpccomm.NewGRPCCommunicator(":0", logs)
			if first.IsZero() {
				first = time.Now()
			}
			if time.Since(first) > 60*time.Second {
				report.Abandoned++
				break
			}
			if stopped() {
				break // the outage so far, if any, is still reported below
			}
			node = (node + 1) % len(seeds)
			time.Sleep(100 * time.Millisecond)
		}
		// Naive: failing on every node in turn is an outage (a follower first is not one). Following:
		// any failure but a followed redirect is.
		if !first.IsZero() && (pods != nil || attempts > len(seeds)) {
			report.Outages = append(report.Outages, outage{StartedAt: first, Millis: time.Since(first).Milliseconds(), Attempts: attempts, MostFrequentError: mostFrequent(errs), Errors: errs})
		}
		if ok {
			if succeeded++; succeeded%10 == 0 {
				fmt.Printf("churn: %d ok\n", succeeded)
			}
		}
	}
	for i := range report.Mismatches {
		m := &report.Mismatches[i]
		m.Nodes = len(seeds)
		for _, seed := range seeds {
			if got, err := readBack([]string{seed}, comm, m.Path, m.Wrote); err == nil && bytes.Equal(got, m.written) {
				m.FinalWhole++
			}
		}
	}
	out, _ := json.MarshalIndent(report, "", "  ")
	if err := os.WriteFile(reportPath, out, 0o644); err != nil {
		fail("%v", err)
	}
	fmt.Printf("churn: %d operations, %d outages, %d mismatches, %d abandoned\n", report.Operations, len(report.Outages), len(report.Mismatches), report.Abandoned)
}

// churnPath matches the files churn writes: each attempt's own, so no two errors would count alike.
var churnPath = regexp.MustCompile(`/churn-\d+-\d+-\d+\.bin`)

// errorKind is an error without the attempt's file, so that the same failure counts as one kind.
func errorKind(err string) string {
	return churnPath.ReplaceAllString(err, "/churn-<n>.bin")
}

// mostFrequent names the most frequent error of an outage (the one to read first).
func mostFrequent(errs map[string]int) string {
	best, n := "", 0
	for e, c := range errs {
		if c > n || (c == n && e < best) {
			best, n = e, c
		}
	}
	return best
}

func describeMismatch(seeds []string, comm *grpccomm.GRPCCommunicator, path string, wrote, read []byte) mismatch {
	m := mismatch{At: time.Now(), Path: path, Wrote: len(wrote), Read: len(read), ReadIsPrefix: bytes.HasPrefix(wrote, read)}
	time.Sleep(time.Second)
	again, err := readBack(seeds, comm, path, len(wrote))
	if err != nil {
		m.RereadError = err.Error()
	} else {
		m.RereadEqual = bytes.Equal(again, wrote)
	}
	return m
}

var errMismatch = errors.New("read back differs from what was written")

// writeAndReadBack writes data to a new file, then opens it again and reads it back; on a
// mismatch it returns what was read with errMismatch.
func writeAndReadBack(seeds []string, comm *grpccomm.GRPCCommunicator, path string, data []byte) ([]byte, error) {
	client, err := sandlib.NewSandstoreClient(seeds, comm)
	if err != nil {
		return nil, err
	}
	fd, err := client.Open(path, os.O_CREATE|os.O_RDWR)
	if err != nil {
		return nil, err
	}
	if _, err := client.Write(fd, data); err != nil {
		return nil, err
	}
	if err := client.Fsync(fd); err != nil {
		return nil, err
	}
	if err := client.Close(fd); err != nil {
		return nil, err
	}
	got, err := readBack(seeds, comm, path, len(data))
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(got, data) {
		return got, errMismatch
	}
	return got, nil
}

func readBack(seeds []string, comm *grpccomm.GRPCCommunicator, path string, size int) ([]byte, error) {
	client, err := sandlib.NewSandstoreClient(seeds, comm)
	if err != nil {
		return nil, err
	}
	fd, err := client.Open(path, os.O_RDWR)
	if err != nil {
		return nil, err
	}
	got, err := client.Read(fd, size+1)
	if err != nil {
		return nil, err
	}
	_ = client.Close(fd)
	return got, nil
}

var leaderIs = regexp.MustCompile(`leader is (\S+) at `)

// redirect: the seed index of the pod a follower named as the leader, when it names one we know.
func redirect(err error, pods map[string]int) (int, bool) {
	m := leaderIs.FindStringSubmatch(err.Error())
	if pods == nil || m == nil {
		return 0, false
	}
	i, ok := pods[m[1]]
	return i, ok
}

// podIndexes maps each pod of SANDSTORE_POD_ADDRESSES (<pod>=host:port,...) to its seed's index.
func podIndexes(seeds []string, mapping string) map[string]int {
	pods := map[string]int{}
	for _, pair := range strings.Split(mapping, ",") {
		pod, addr, ok := strings.Cut(strings.TrimSpace(pair), "=")
		for i, s := range seeds {
			if ok && s == addr {
				pods[pod] = i
			}
		}
	}
	if len(pods) == 0 {
		fail("churn-follow: SANDSTORE_POD_ADDRESSES (<pod>=host:port,...) names none of SANDSTORE_SEEDS, got %q", mapping)
	}
	return pods
}

// staleReadReport is what stale-read saw: how many sequences ran; each read that returned other than
// the whole file, with what the same read returned 200 ms later; each sequence an error ended.
type staleReadReport struct {
	Sequences int           `json:"sequences"`
	Seconds   float64       `json:"seconds"`
	Stale     []staleSample `json:"stale"`
	Failed    []failedStep  `json:"failed"`
}

type staleSample struct {
	Sequence int    `json:"sequence"`
	Read     string `json:"read"`
	Later    string `json:"later"`
}

type failedStep struct {
	Sequence int    `json:"sequence"`
	Error    string `json:"error"`
}

// staleRead runs TestOpenSmoke's sequence (integration/cluster/cluster_test.go) over and over: the
// second write overwrites the file's one chunk, so the read after close asks for a chunk whose
// replicas hold a committed previous version. Sand Store 7ab6010 commits a replica's new version
// (renames its prepared file) on a notification sent asynchronously after the Raft commit, and
// serves a chunk read from the committed file first: a read that overtakes the notification
// returns the previous version. The same race can fail the second write itself (it reads the chunk
// first, which a replica refuses while the first write's version is prepared but not yet known
// committed there): such a sequence is counted as failed, with its error, and the run goes on.
func staleRead(seeds []string, sequences int, reportPath string) {
	ls := locallog.NewLocalDiscLogService(filepath.Join(os.TempDir(), "sandstore-files-logs"), "sandstore-files", logservice.InfoLevel)
	client, err := sandlib.NewSandstoreClient(seeds, grpccomm.NewGRPCCommunicator(":0", ls))
	if err != nil {
		fail("connecting to %v: %v", seeds, err)
	}
	report := staleReadReport{Sequences: sequences, Stale: []staleSample{}, Failed: []failedStep{}}
	started := time.Now()
	for i := 0; i < sequences; i++ {
		path := fmt.Sprintf("/stale-read-%d-%d", started.UnixNano(), i)
		sample, err := openSmokeSequence(client, path)
		if err != nil {
			report.Failed = append(report.Failed, failedStep{Sequence: i, Error: err.Error()})
		} else if sample != nil {
			sample.Sequence = i
			report.Stale = append(report.Stale, *sample)
		}
		_ = client.Remove(path)
	}
	report.Seconds = time.Since(started).Seconds()
	out, _ := json.MarshalIndent(report, "", "  ")
	if err := os.WriteFile(reportPath, out, 0o644); err != nil {
		fail("%v", err)
	}
	fmt.Printf("stale-read: %d sequences, %d stale reads, %d failed\n", sequences, len(report.Stale), len(report.Failed))
}

// openSmokeSequence is TestOpenSmoke's writes and read of path; a stale read is returned, with
// what the same read returned 200 ms later.
func openSmokeSequence(client *sandlib.SandstoreClient, path string) (*staleSample, error) {
	first, appended := []byte("hello, sandstore"), []byte(" + appended")
	whole := append(append([]byte(nil), first...), appended...)
	fd, err := client.Open(path, os.O_CREATE|os.O_RDWR)
	if err != nil {
		return nil, err
	}
	if _, err := client.Write(fd, first); err != nil {
		return nil, err
	}
	if err := client.Fsync(fd); err != nil {
		return nil, err
	}
	if _, err := client.Write(fd, appended); err != nil {
		return nil, err
	}
	if err := client.Close(fd); err != nil {
		return nil, err
	}
	got, err := readOnce(client, path, len(whole)+32)
	if err != nil || bytes.Equal(got, whole) {
		return nil, err
	}
	time.Sleep(200 * time.Millisecond)
	later, err := readOnce(client, path, len(whole)+32)
	if err != nil {
		return nil, err
	}
	return &staleSample{Read: string(got), Later: string(later)}, nil
}

func readOnce(client *sandlib.SandstoreClient, path string, length int) ([]byte, error) {
	fd, err := client.Open(path, os.O_RDWR)
	if err != nil {
		return nil, err
	}
	data, err := client.Read(fd, length)
	if closeErr := client.Close(fd); err == nil {
		err = closeErr
	}
	return data, err
}
