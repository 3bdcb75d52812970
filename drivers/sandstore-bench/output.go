package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

const (
	driverVersion = "1"
	summarySchema = "sandstore-deploy/driver-summary/v1"
)

// csvColumns are upstream's clients/bench columns, then ours (record.ts CSV_COLUMNS).
var csvColumns = []string{"operation", "concurrency", "block_size_bytes", "p50_ms", "p95_ms", "p99_ms", "p100_ms", "total_ops", "error_count", "ops_per_s"}

// progressWriter prints the JSON lines on standard output, one whole line at a time.
type progressWriter struct {
	mu  sync.Mutex
	out io.Writer
}

type progressLine struct {
	Type      string  `json:"type"`
	Operation string  `json:"operation"`
	Stage     string  `json:"stage"`
	ElapsedS  float64 `json:"elapsed_s"`
	StageS    float64 `json:"stage_s"`
	OK        int64   `json:"ok"`
	Errors    int64   `json:"errors"`
	Rate      float64 `json:"rate"`
}

type phaseLine struct {
	Type      string  `json:"type"`
	Operation string  `json:"operation"`
	OpsPerS   float64 `json:"ops_per_s"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
	Errors    int64   `json:"errors"`
}

type doneLine struct {
	Type        string `json:"type"`
	Interrupted bool   `json:"interrupted"`
}

func (p *progressWriter) write(line any) {
	encoded, err := json.Marshal(line)
	if err != nil {
		return // the lines are plain structs of numbers and strings
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = p.out.Write(append(encoded, '\n'))
}

// The summary.json shapes (record.ts DriverSummary).
type summaryFile struct {
	Schema      string         `json:"schema"`
	Driver      driverInfo     `json:"driver"`
	Options     summaryOptions `json:"options"`
	StartedAt   string         `json:"started_at"`
	EndedAt     string         `json:"ended_at"`
	Interrupted bool           `json:"interrupted"`
	Phases      []phaseSummary `json:"phases"`
	Memory      memoryUse      `json:"memory"`
}

type driverInfo struct {
	Version string `json:"version"`
	Go      string `json:"go"`
}

type summaryOptions struct {
	Seeds          []string `json:"seeds"`
	Concurrency    int      `json:"concurrency"`
	BlockSizeBytes int      `json:"block_size_bytes"`
	DurationS      float64  `json:"duration_s"`
	WarmupS        float64  `json:"warmup_s"`
	Operations     []string `json:"operations"`
}

type phaseSummary struct {
	Operation  string           `json:"operation"`
	StartedAt  string           `json:"started_at"`
	MeasuredS  float64          `json:"measured_s"`
	Complete   bool             `json:"complete"`
	TotalOps   int64            `json:"total_ops"`
	OKOps      int64            `json:"ok_ops"`
	ErrorCount int64            `json:"error_count"`
	Errors     map[string]int64 `json:"errors"`
	OpsPerS    float64          `json:"ops_per_s"`
	LatencyMs  latencySummary   `json:"latency_ms"`
	Histogram  string           `json:"histogram"`
	Timeline   []timelineSecond `json:"timeline"`
	Warmup     warmupSummary    `json:"warmup"`
	CPUS       float64          `json:"cpu_s"`
}

type latencySummary struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	P100 float64 `json:"p100"`
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
}

type warmupSummary struct {
	Seconds float64 `json:"seconds"`
	Ops     int64   `json:"ops"`
	Errors  int64   `json:"errors"`
}

type memoryUse struct {
	MaxRSSBytes int64 `json:"max_rss_bytes"`
	Samples     int64 `json:"samples"`
}

// timeFormat: UTC with milliseconds, which record.ts's ISO date-time check accepts.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

func opsPerSecond(p measuredPhase) float64 {
	if p.measuredS <= 0 {
		return 0
	}
	return round3(float64(p.ok) / p.measuredS)
}

func summarisePhase(p measuredPhase) (phaseSummary, error) {
	encoded, err := p.latency.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return phaseSummary{}, fmt.Errorf("encoding the %s histogram: %w", p.operation, err)
	}
	h, e := p.latency, p.extremes
	return phaseSummary{
		Operation: p.operation, StartedAt: formatTime(p.startedAt), MeasuredS: round3(p.measuredS), Complete: p.complete,
		TotalOps: p.ok + p.failed, OKOps: p.ok, ErrorCount: p.failed, Errors: p.errors, OpsPerS: opsPerSecond(p),
		LatencyMs: latencySummary{
			P50: quantileMs(h, 50, e), P90: quantileMs(h, 90, e), P95: quantileMs(h, 95, e),
			P99: quantileMs(h, 99, e), P999: quantileMs(h, 99.9, e), P100: millis(e.max),
			Min: millis(e.min), Mean: round3(h.Mean() / 1000),
		},
		Histogram: string(encoded), Timeline: p.timeline,
		Warmup: warmupSummary{Seconds: round3(p.warmupS), Ops: p.warmupOK + p.warmupErrors, Errors: p.warmupErrors},
		CPUS:   round3(p.cpuS),
	}, nil
}

// runRecord is everything the output files are made from.
type runRecord struct {
	opts        options
	startedAt   time.Time
	endedAt     time.Time
	interrupted bool
	phases      []measuredPhase
}

func (r runRecord) summary() (summaryFile, error) {
	phases := make([]phaseSummary, 0, len(r.phases))
	var samples int64
	for _, p := range r.phases {
		summary, err := summarisePhase(p)
		if err != nil {
			return summaryFile{}, err
		}
		phases = append(phases, summary)
		samples += p.ok + p.failed + p.warmupOK + p.warmupErrors
	}
	return summaryFile{
		Schema: summarySchema, Driver: driverInfo{Version: driverVersion, Go: runtime.Version()},
		Options: summaryOptions{Seeds: r.opts.seeds, Concurrency: r.opts.concurrency, BlockSizeBytes: r.opts.blockSize,
			DurationS: r.opts.durationS, WarmupS: r.opts.warmupS, Operations: r.opts.operations},
		StartedAt: formatTime(r.startedAt), EndedAt: formatTime(r.endedAt), Interrupted: r.interrupted,
		Phases: phases, Memory: memoryUse{MaxRSSBytes: maxRSSBytes(), Samples: samples},
	}, nil
}

// cpuSeconds is the CPU time (user and system) the driver has used so far: what a phase's calls
// cost the driver itself, so that its own ceiling can be told apart from the target's.
func cpuSeconds() float64 {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	seconds := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return seconds(usage.Utime) + seconds(usage.Stime)
}

// maxRSSBytes is the driver's peak resident memory (Linux reports ru_maxrss in KiB).
func maxRSSBytes() int64 {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	return usage.Maxrss * 1024
}

func (r runRecord) csv() ([]byte, error) {
	var buffer bytes.Buffer
	w := csv.NewWriter(&buffer)
	_ = w.Write(csvColumns)
	for _, p := range r.phases {
		h, e := p.latency, p.extremes
		_ = w.Write([]string{
			p.operation, strconv.Itoa(r.opts.concurrency), strconv.Itoa(r.opts.blockSize),
			formatFloat(quantileMs(h, 50, e)), formatFloat(quantileMs(h, 95, e)),
			formatFloat(quantileMs(h, 99, e)), formatFloat(millis(e.max)),
			strconv.FormatInt(p.ok+p.failed, 10), strconv.FormatInt(p.failed, 10), formatFloat(opsPerSecond(p)),
		})
	}
	w.Flush()
	return buffer.Bytes(), w.Error()
}

func formatFloat(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

// hgrm is HdrHistogram's percentile distribution text of a phase, values in milliseconds.
func hgrm(p measuredPhase) ([]byte, error) {
	var buffer bytes.Buffer
	if _, err := p.latency.PercentilesPrint(&buffer, 5, 1000.0); err != nil {
		return nil, err
	}
	return buffer.Bytes(), nil
}

// writeRecords writes <op>.hgrm, results.csv and, last, summary.json: a summary.json means the
// others are complete.
func (r runRecord) write(dir string) error {
	for _, p := range r.phases {
		text, err := hgrm(p)
		if err != nil {
			return fmt.Errorf("printing the %s histogram: %w", p.operation, err)
		}
		if err := writeFileAtomic(dir, p.operation+".hgrm", text); err != nil {
			return err
		}
	}
	table, err := r.csv()
	if err != nil {
		return fmt.Errorf("formatting results.csv: %w", err)
	}
	if err := writeFileAtomic(dir, "results.csv", table); err != nil {
		return err
	}
	summary, err := r.summary()
	if err != nil {
		return err
	}
	encoded, err := json.MarshalIndent(summary, "", "  ")
	if err != nil {
		return fmt.Errorf("formatting summary.json: %w", err)
	}
	return writeFileAtomic(dir, "summary.json", append(encoded, '\n'))
}

// writeFileAtomic writes a temporary file beside the target and renames it, so that a crash
// leaves either no file or the whole file.
func writeFileAtomic(dir, name string, data []byte) error {
	temp, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Join(dir, name), err)
	}
	_, writeErr := temp.Write(data)
	syncErr := temp.Sync()
	closeErr := temp.Close()
	if err := firstError(writeErr, syncErr, closeErr, os.Chmod(temp.Name(), 0o644)); err != nil {
		_ = os.Remove(temp.Name())
		return fmt.Errorf("writing %s: %w", filepath.Join(dir, name), err)
	}
	if err := os.Rename(temp.Name(), filepath.Join(dir, name)); err != nil {
		_ = os.Remove(temp.Name())
		return fmt.Errorf("writing %s: %w", filepath.Join(dir, name), err)
	}
	return nil
}

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
