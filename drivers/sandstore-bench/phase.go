package main

import (
	"context"
	"math"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// phaseClock: calls that start before measureStart are the warm-up; calls that start in
// [measureStart, measureEnd) are measured (and waited for); none start after.
type phaseClock struct {
	start        time.Time
	measureStart time.Time
	measureEnd   time.Time
}

func newPhaseClock(start time.Time, opts options) phaseClock {
	measureStart := start.Add(seconds(opts.warmupS))
	return phaseClock{start: start, measureStart: measureStart, measureEnd: measureStart.Add(seconds(opts.durationS))}
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func (c phaseClock) secondOf(t time.Time) int { return int(t.Sub(c.measureStart) / time.Second) }

// liveCounts are the numbers progress lines report while the workers run.
type liveCounts struct {
	warmupOK, warmupErrors, measureOK, measureErrors atomic.Int64
}

// phaseRun is one operation's closed loops.
type phaseRun struct {
	operation string
	load      workload
	clock     phaseClock
	workers   []*worker
	timeline  *timeline
	kinds     *errorKinds
	live      liveCounts
	stopped   atomic.Bool
	progress  *progressWriter
}

// measuredPhase is what a phase measured, for the output files.
type measuredPhase struct {
	operation    string
	startedAt    time.Time
	measuredS    float64
	complete     bool
	latency      *hdrhistogram.Histogram
	extremes     extremes
	ok, failed   int64
	errors       map[string]int64
	timeline     []timelineSecond
	warmupS      float64
	warmupOK     int64
	warmupErrors int64
	// cpuS is the driver's own CPU time (user and system) over the warm-up and the measured window.
	cpuS float64
}

// work is one worker's closed loop: the next call as soon as the last one returned.
func (p *phaseRun) work(w *worker) {
	defer close(w.done)
	for !p.stopped.Load() {
		now := time.Now()
		if !now.Before(p.clock.measureEnd) {
			break
		}
		measuring := !now.Before(p.clock.measureStart)
		if measuring {
			p.enterSecond(w, p.clock.secondOf(now))
		}
		w.state.Store(inCall)
		start := time.Now()
		sample, err := p.load.call(w.id)
		elapsed := time.Since(start)
		// Abandoned: the phase took this worker's record over while the call was in flight.
		if !w.state.CompareAndSwap(inCall, recording) {
			return
		}
		// A call that returns after the interrupt did not complete in the measured window.
		if !p.stopped.Load() {
			p.count(w, sample, measuring, elapsed, err)
		}
		w.state.Store(idle)
	}
	p.timeline.add(&w.second)
	w.lowestSecond.Store(math.MaxInt64)
}

func (p *phaseRun) count(w *worker, sample, measuring bool, elapsed time.Duration, err error) {
	switch {
	case !sample:
	case !measuring && err != nil:
		p.live.warmupErrors.Add(1)
	case !measuring:
		p.live.warmupOK.Add(1)
	case err != nil:
		w.record(elapsed, err, p.kinds)
		p.live.measureErrors.Add(1)
	default:
		w.record(elapsed, nil, p.kinds)
		p.live.measureOK.Add(1)
	}
}

// enterSecond hands the worker's finished second to the timeline when a call starts in a new one.
func (p *phaseRun) enterSecond(w *worker, index int) {
	if index == w.second.index {
		return
	}
	p.timeline.add(&w.second)
	w.second.index = index
	w.lowestSecond.Store(int64(index))
}

// run starts the workers and reports progress until they finish or ctx is cancelled (a signal).
// It returns the moment the phase was interrupted, zero when it ran to its end.
func (p *phaseRun) run(ctx context.Context, concurrency int) time.Time {
	p.workers = make([]*worker, concurrency)
	for i := range p.workers {
		p.workers[i] = newWorker(i)
		go p.work(p.workers[i])
	}
	finished := make(chan struct{})
	go func() {
		for _, w := range p.workers {
			<-w.done
		}
		close(finished)
	}()
	return p.watch(ctx, finished)
}

func (p *phaseRun) watch(ctx context.Context, finished <-chan struct{}) time.Time {
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	stage := newStageReport(p, time.Now().Before(p.clock.measureStart))
	stage.emit()
	toMeasure := time.NewTimer(time.Until(p.clock.measureStart))
	defer toMeasure.Stop()
	for {
		select {
		case <-finished:
			return time.Time{}
		case <-ctx.Done():
			interruptedAt := time.Now()
			p.abandon()
			return interruptedAt
		case <-toMeasure.C:
			if stage.warmup {
				stage = newStageReport(p, false)
				stage.emit()
			}
		case <-ticker.C:
			stage.tick()
			p.timeline.closeBefore(p.lowestOpenSecond())
		}
	}
}

func (p *phaseRun) lowestOpenSecond() int {
	lowest := int64(math.MaxInt64)
	for _, w := range p.workers {
		lowest = min(lowest, w.lowestSecond.Load())
	}
	return int(min(lowest, math.MaxInt))
}

// abandon stops the workers at once. A worker in a call is taken over (its record read here
// while its call goes on; it discards the call when it returns); any other worker is between two
// calls: it either exits within microseconds or enters a call, and is then taken over.
func (p *phaseRun) abandon() {
	p.stopped.Store(true)
	for _, w := range p.workers {
		p.takeOver(w)
	}
}

func (p *phaseRun) takeOver(w *worker) {
	for {
		if w.state.CompareAndSwap(inCall, abandoned) {
			p.timeline.add(&w.second)
			return
		}
		select {
		case <-w.done:
			return
		case <-time.After(time.Millisecond):
		}
	}
}

// result merges the workers' records. interruptedAt is zero when the phase ran to its end.
func (p *phaseRun) result(interruptedAt time.Time, warmupS, durationS float64) measuredPhase {
	measured := measuredPhase{operation: p.operation, startedAt: p.clock.measureStart, measuredS: durationS,
		complete: interruptedAt.IsZero(), latency: newPhaseHistogram(), errors: map[string]int64{}, warmupS: warmupS,
		warmupOK: p.live.warmupOK.Load(), warmupErrors: p.live.warmupErrors.Load()}
	if !measured.complete {
		end := interruptedAt
		if end.After(p.clock.measureEnd) {
			end = p.clock.measureEnd
		}
		measured.measuredS = max(end.Sub(p.clock.measureStart).Seconds(), 0)
		measured.warmupS = min(interruptedAt.Sub(p.clock.start).Seconds(), warmupS)
	}
	for _, w := range p.workers {
		measured.latency.Merge(w.latency)
		measured.extremes.merge(w.extremes)
		measured.ok += w.ok
		measured.failed += w.failed
		for kind, n := range w.errors {
			measured.errors[kind] += n
		}
	}
	measured.timeline = p.timeline.seconds(int(math.Ceil(measured.measuredS)))
	return measured
}

// stageReport makes the progress lines of one stage (warm-up or measured window).
type stageReport struct {
	phase    *phaseRun
	warmup   bool
	began    time.Time
	length   float64
	lastOK   int64
	lastTime time.Time
}

func newStageReport(p *phaseRun, warmup bool) *stageReport {
	began, length := p.clock.measureStart, p.clock.measureEnd.Sub(p.clock.measureStart).Seconds()
	if warmup {
		began, length = p.clock.start, p.clock.measureStart.Sub(p.clock.start).Seconds()
	}
	return &stageReport{phase: p, warmup: warmup, began: began, length: length, lastTime: time.Now()}
}

// tick emits the once-a-second line, unless a stage change just emitted one.
func (s *stageReport) tick() {
	if time.Since(s.lastTime) >= 500*time.Millisecond {
		s.emit()
	}
}

func (s *stageReport) emit() {
	now := time.Now()
	ok, failed := s.phase.live.measureOK.Load(), s.phase.live.measureErrors.Load()
	name := "measure"
	if s.warmup {
		ok, failed, name = s.phase.live.warmupOK.Load(), s.phase.live.warmupErrors.Load(), "warmup"
	}
	rate := 0.0
	if interval := now.Sub(s.lastTime).Seconds(); interval > 0.05 {
		rate = float64(ok-s.lastOK) / interval
	}
	s.lastOK, s.lastTime = ok, now
	s.phase.progress.write(progressLine{Type: "progress", Operation: s.phase.operation, Stage: name,
		ElapsedS: round3(max(now.Sub(s.began).Seconds(), 0)), StageS: round3(s.length), OK: ok, Errors: failed, Rate: round3(rate)})
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }
