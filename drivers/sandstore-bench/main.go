// Command sandstore-bench is sandstore-deploy's load driver for Sand Store: upstream's
// clients/bench operations (write, read, stat, create, listdir), each a phase of closed-loop
// workers with a discarded warm-up, every measured call recorded in per-worker HdrHistograms.
//
// Why not upstream's bench: it sends samples into a channel of concurrency x 1000 that is drained
// only after the workers stop, so a phase keeps at most 1000 calls per worker (the start of the
// phase), throughput cannot be derived, and failed calls' latencies are mixed into its percentiles.
//
//	sandstore-bench --seeds host:port,... --out <dir> [--duration 30] [--warmup 5]
//	                [--concurrency 4] [--block-size 4096] [--ops write,read,stat,create,listdir]
//
// Standard output: JSON lines ({"type":"progress"|"phase"|"done",...}); standard error: what is
// happening, in words. Files in --out: results.csv, summary.json, <operation>.hgrm (schemas in
// lib/benchmark/record.ts). Exit codes: 0 done (failed calls are data), 1 could not run
// (pre-flight, setup, output directory), 2 bad flags, 130 interrupted (what was measured is kept).
//
// It is built inside Sand Store's module, because the client library needs a communicator from
// Sand Store's internal packages, which only code in that module may import: `go build -overlay`
// places these files at clients/sandstore_deploy_bench/ in the checkout without writing there, and
// `-modfile` adds hdrhistogram-go to a copy of the checkout's go.mod kept in the build cache (see
// lib/benchmark/driver-build.ts). To vet it, from the checkout, with <cache> the build's cache
// directory (sandstore-deploy/driver/<key>/), whose vet-overlay.json places these files in the
// checkout's existing clients/ folder (go vet changes into the package's folder, so the virtual
// one of the build will not do):
//
//	CGO_ENABLED=0 GOFLAGS=-mod=readonly GOWORK=off go vet -overlay <cache>/vet-overlay.json \
//	    -modfile=<cache>/go.mod ./clients
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	sandlib "github.com/AnishMulay/sandstore/clients/library"
	grpccomm "github.com/AnishMulay/sandstore/internal/communication/grpc"
	logservice "github.com/AnishMulay/sandstore/internal/log_service"
	locallog "github.com/AnishMulay/sandstore/internal/log_service/localdisc"
)

const (
	exitDone        = 0
	exitCouldNotRun = 1
	exitBadFlags    = 2
	exitInterrupted = 130
)

// preflightStats is how many times the root is stat'ed before anything is measured (upstream: 11).
const preflightStats = 3

func main() { os.Exit(run(os.Args[1:])) }

func say(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

func run(args []string) int {
	opts, err := parseOptions(args, os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(os.Stderr, usageText)
		return exitDone
	}
	if err != nil {
		say("%v", err)
		return exitBadFlags
	}
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	// After the first signal a second one ends the process at once (Go's default).
	context.AfterFunc(ctx, stopSignals)
	if err := os.MkdirAll(opts.out, 0o755); err != nil {
		say("cannot create the output directory %s: %v; choose a writable --out", opts.out, err)
		return exitCouldNotRun
	}
	logDir, err := os.MkdirTemp("", "sandstore-bench-logs-")
	if err != nil {
		say("cannot create a directory for the client library's log: %v", err)
		return exitCouldNotRun
	}
	b := &bench{opts: opts, ctx: ctx, progress: &progressWriter{out: os.Stdout}, logDir: logDir}
	return b.run()
}

// bench is one run: pre-flight, then the phases, then the output files.
type bench struct {
	opts     options
	ctx      context.Context
	progress *progressWriter
	logDir   string
	client   *sandlib.SandstoreClient
	names    names
	record   runRecord
	failures int64
	// keepLog: the client library's log explains a failure (the library keeps gRPC's errors to it).
	keepLog bool
}

func (b *bench) run() int {
	b.record = runRecord{opts: b.opts, startedAt: time.Now()}
	runID, err := newRunID()
	if err != nil {
		say("cannot draw a run id: %v", err)
		return exitCouldNotRun
	}
	b.names = names{run: runID}
	say("connecting to Sand Store at %s", strings.Join(b.opts.seeds, ","))
	if err := b.await(b.connect); err != nil {
		if b.interrupted() {
			return b.finish()
		}
		say("cannot reach Sand Store at %s: %v", strings.Join(b.opts.seeds, ","), err)
		say("the client library's log is in %s", b.logDir)
		return exitCouldNotRun
	}
	say("run %s: files /bench_%s_*; %d workers, %s s warm-up and %s s measured per operation",
		runID, runID, b.opts.concurrency, formatFloat(b.opts.warmupS), formatFloat(b.opts.durationS))
	for _, operation := range b.opts.operations {
		if err := b.phase(operation); err != nil {
			say("%s: %v", operation, err)
			b.keepLog = true
			if writeErr := b.writeRecords(); writeErr != nil {
				say("%v", writeErr)
			}
			return exitCouldNotRun
		}
		if b.interrupted() {
			break
		}
	}
	return b.finish()
}

func newRunID() (string, error) {
	random := make([]byte, 4)
	if _, err := rand.Read(random); err != nil {
		return "", err
	}
	return hex.EncodeToString(random), nil
}

// connect bootstraps the client's topology and stats the root a few times, as upstream's bench.
func (b *bench) connect() error {
	logs := locallog.NewLocalDiscLogService(b.logDir, "sandstore-bench", logservice.InfoLevel)
	client, err := sandlib.NewSandstoreClient(b.opts.seeds, grpccomm.NewGRPCCommunicator(":0", logs))
	if err != nil {
		return err
	}
	for range preflightStats {
		if _, err := client.Stat("/"); err != nil {
			return err
		}
	}
	b.client = client
	return nil
}

var errInterrupted = errors.New("interrupted")

// await runs a blocking step (the client library's calls take no context) and returns as soon
// as the run is interrupted, leaving the step to finish in the background.
func (b *bench) await(step func() error) error {
	result := make(chan error, 1)
	go func() { result <- step() }()
	select {
	case err := <-result:
		return err
	case <-b.ctx.Done():
		return errInterrupted
	}
}

func (b *bench) interrupted() bool { return b.ctx.Err() != nil }

// phase runs one operation: setup, warm-up and measured window, teardown. It returns an error
// only when the phase could not run (setup failed); failed calls are part of its record.
func (b *bench) phase(operation string) error {
	load := newWorkload(operation, b.client, b.names, b.opts)
	say("%s: setting up", operation)
	if err := b.await(load.setup); err != nil {
		if b.interrupted() {
			return nil
		}
		return fmt.Errorf("setup failed, nothing measured: %w", err)
	}
	say("%s: %s s warm-up, then %s s measured", operation, formatFloat(b.opts.warmupS), formatFloat(b.opts.durationS))
	p := &phaseRun{operation: operation, load: load, clock: newPhaseClock(time.Now(), b.opts),
		timeline: newTimeline(), kinds: &errorKinds{run: b.names.run}, progress: b.progress}
	cpuBefore := cpuSeconds()
	interruptedAt := p.run(b.ctx, b.opts.concurrency)
	measured := p.result(interruptedAt, b.opts.warmupS, b.opts.durationS)
	measured.cpuS = cpuSeconds() - cpuBefore
	if !interruptedAt.IsZero() && measured.measuredS == 0 {
		say("%s: interrupted before its measured window began; not recorded", operation)
		return nil
	}
	b.record.phases = append(b.record.phases, measured)
	b.failures += measured.failed
	b.reportPhase(measured)
	if interruptedAt.IsZero() {
		if err := b.await(load.teardown); err != nil && !b.interrupted() {
			say("%s: after the phase: %v", operation, err)
		}
	}
	return nil
}

func (b *bench) reportPhase(p measuredPhase) {
	line := phaseLine{Type: "phase", Operation: p.operation, OpsPerS: opsPerSecond(p),
		P50Ms: quantileMs(p.latency, 50, p.extremes), P99Ms: quantileMs(p.latency, 99, p.extremes), Errors: p.failed}
	b.progress.write(line)
	state := "done"
	if !p.complete {
		state = "interrupted"
	}
	say("%s: %s: %d calls in %s s, %d failed, %s ok/s, p50 %s ms, p99 %s ms", p.operation, state, p.ok+p.failed,
		formatFloat(round3(p.measuredS)), p.failed, formatFloat(line.OpsPerS), formatFloat(line.P50Ms), formatFloat(line.P99Ms))
	for kind, n := range p.errors {
		say("%s: %d failed: %s", p.operation, n, kind)
	}
}

// finish writes the output files and the done line; the exit code says whether the run was
// interrupted.
func (b *bench) finish() int {
	if err := b.writeRecords(); err != nil {
		say("%v", err)
		return exitCouldNotRun
	}
	b.progress.write(doneLine{Type: "done", Interrupted: b.interrupted()})
	if b.interrupted() {
		say("interrupted: what was measured is in %s", b.opts.out)
		return exitInterrupted
	}
	say("done: results in %s", b.opts.out)
	return exitDone
}

// writeRecords writes the output files. The client library's log is kept only when calls
// failed: it holds the gRPC errors behind them, which the library does not pass on.
func (b *bench) writeRecords() error {
	b.record.endedAt = time.Now()
	b.record.interrupted = b.interrupted()
	if err := b.record.write(b.opts.out); err != nil {
		return err
	}
	switch {
	case b.failures > 0:
		say("%d calls failed; the client library's log is in %s", b.failures, b.logDir)
	case b.keepLog:
		say("the client library's log is in %s", b.logDir)
	default:
		_ = os.RemoveAll(b.logDir)
	}
	return nil
}
