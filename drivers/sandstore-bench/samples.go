package main

import (
	"context"
	"errors"
	"math"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Latencies are recorded in microseconds from 1 µs to 60 s (the library's own operation timeout
// is 30 s, so nothing successful lies beyond). A phase's histogram keeps 3 significant figures;
// the per-second histograms 2, which is plenty for a timeline and keeps a worker's second
// small (20 KiB against 136 KiB) when there are a thousand workers.
const (
	highestMicros  = 60_000_000
	phaseFigures   = 3
	timelineFigure = 2
)

func newPhaseHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, highestMicros, phaseFigures)
}

func newSecondHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, highestMicros, timelineFigure)
}

func micros(elapsed time.Duration) int64 {
	return min(max(elapsed.Microseconds(), 0), highestMicros)
}

func millis(micros int64) float64 { return float64(micros) / 1000 }

// quantileMs is a percentile of h in milliseconds, kept within the exact extremes: the histogram
// answers with the top of a value's bucket, which may lie just above the exact maximum.
func quantileMs(h *hdrhistogram.Histogram, percentile float64, e extremes) float64 {
	if !e.seen {
		return 0
	}
	return millis(min(max(h.ValueAtQuantile(percentile), e.min), e.max))
}

// Worker states: the handshake that lets the phase stop at once on an interrupt without waiting
// for calls in flight, while each worker's histograms stay its own (no lock on the hot path).
const (
	idle int32 = iota
	inCall
	recording
	abandoned
)

// worker is one closed loop's own record of the measured window.
type worker struct {
	id      int
	latency *hdrhistogram.Histogram
	// extremes are exact (the histogram's are rounded to its precision): p100 and min as measured.
	extremes extremes
	ok       int64
	failed   int64
	errors   map[string]int64
	second   secondRecord
	state    atomic.Int32
	// lowestSecond is the earliest timeline second this worker may still add to, so that the
	// timeline can summarise (and free) the seconds before every worker's.
	lowestSecond atomic.Int64
	done         chan struct{}
}

// secondRecord is what a worker measured in the current second of the window.
type secondRecord struct {
	index    int
	latency  *hdrhistogram.Histogram
	extremes extremes
	ok       int64
	errors   int64
}

// extremes are the exact lowest and highest latencies recorded, in microseconds.
type extremes struct {
	seen     bool
	min, max int64
}

func (e *extremes) add(micros int64) {
	if !e.seen || micros < e.min {
		e.min = micros
	}
	if !e.seen || micros > e.max {
		e.max = micros
	}
	e.seen = true
}

func (e *extremes) merge(other extremes) {
	if other.seen {
		e.add(other.min)
		e.add(other.max)
	}
}

func newWorker(id int) *worker {
	return &worker{id: id, latency: newPhaseHistogram(), errors: map[string]int64{},
		second: secondRecord{latency: newSecondHistogram()}, done: make(chan struct{})}
}

func (w *worker) record(elapsed time.Duration, err error, kinds *errorKinds) {
	if err != nil {
		w.failed++
		w.second.errors++
		w.errors[kinds.of(err)]++
		return
	}
	us := micros(elapsed)
	// In range by construction: RecordValue cannot fail.
	_ = w.latency.RecordValue(us)
	_ = w.second.latency.RecordValue(us)
	w.extremes.add(us)
	w.second.extremes.add(us)
	w.ok++
	w.second.ok++
}

// timeline gathers the workers' seconds. A second is summarised (and its histogram dropped) once
// no worker can add to it any more, so that a day-long phase does not keep a day of histograms.
type timeline struct {
	mu     sync.Mutex
	open   map[int]*secondRecord
	closed map[int]timelineSecond
}

type timelineSecond struct {
	T      int     `json:"t"`
	OK     int64   `json:"ok"`
	Errors int64   `json:"errors"`
	P50Ms  float64 `json:"p50_ms"`
	P99Ms  float64 `json:"p99_ms"`
	MaxMs  float64 `json:"max_ms"`
}

func newTimeline() *timeline {
	return &timeline{open: map[int]*secondRecord{}, closed: map[int]timelineSecond{}}
}

// add merges a worker's second into the timeline; the worker then reuses its histogram.
func (t *timeline) add(s *secondRecord) {
	if s.ok == 0 && s.errors == 0 {
		return
	}
	t.mu.Lock()
	total := t.open[s.index]
	if total == nil {
		total = &secondRecord{index: s.index, latency: newSecondHistogram()}
		t.open[s.index] = total
	}
	total.latency.Merge(s.latency)
	total.extremes.merge(s.extremes)
	total.ok += s.ok
	total.errors += s.errors
	t.mu.Unlock()
	s.latency.Reset()
	s.extremes = extremes{}
	s.ok, s.errors = 0, 0
}

// closeBefore summarises every second before limit.
func (t *timeline) closeBefore(limit int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for index, total := range t.open {
		if index < limit {
			t.closed[index] = summariseSecond(total)
			delete(t.open, index)
		}
	}
}

// seconds is the whole timeline of a window of n seconds, seconds without calls included.
func (t *timeline) seconds(n int) []timelineSecond {
	t.closeBefore(math.MaxInt)
	out := make([]timelineSecond, 0, n)
	for index := range n {
		second, ok := t.closed[index]
		if !ok {
			second = timelineSecond{T: index}
		}
		out = append(out, second)
	}
	return out
}

func summariseSecond(s *secondRecord) timelineSecond {
	return timelineSecond{T: s.index, OK: s.ok, Errors: s.errors,
		P50Ms: quantileMs(s.latency, 50, s.extremes), P99Ms: quantileMs(s.latency, 99, s.extremes), MaxMs: millis(s.extremes.max)}
}

// errorKinds names failed calls so that they group into few, stable kinds: the gRPC code when
// the error carries one, then the message with the run id, ids, addresses and numbers masked.
type errorKinds struct{ run string }

var (
	uuidPattern   = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)
	digitsPattern = regexp.MustCompile(`[0-9]+`)
	spacePattern  = regexp.MustCompile(`\s+`)
)

const maxKindLength = 100

func (k *errorKinds) of(err error) string {
	message := err.Error()
	if k.run != "" {
		message = strings.ReplaceAll(message, k.run, "<run>")
	}
	message = uuidPattern.ReplaceAllString(message, "<id>")
	message = digitsPattern.ReplaceAllString(message, "N")
	message = strings.TrimSpace(spacePattern.ReplaceAllString(message, " "))
	if code := grpcCode(err); code != codes.Unknown && code != codes.OK {
		message = code.String() + ": " + message
	}
	if runes := []rune(message); len(runes) > maxKindLength {
		message = string(runes[:maxKindLength])
	}
	return message
}

// grpcCode is the error's gRPC status code, looking through wrapped errors (status.Code uses
// errors.As since grpc-go 1.55); Unknown when it carries none.
func grpcCode(err error) codes.Code {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	}
	return status.Code(err)
}
