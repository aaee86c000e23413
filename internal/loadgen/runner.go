package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Op runs one operation for worker (0 <= worker < Config.Clients). Workers
// run concurrently; each calls its Op sequentially.
type Op func(ctx context.Context, worker int) error

// Config says how a workload is driven.
type Config struct {
	// Clients is the number of concurrent workers.
	Clients int
	// Duration is how long operations are measured, after Warmup.
	Duration time.Duration
	// Warmup runs operations that are not counted.
	Warmup time.Duration
	// Rate is the total rate of an open loop, in operations per second;
	// 0 runs a closed loop.
	Rate float64
	// OpTimeout bounds each operation (0: no bound beyond the run's ctx).
	OpTimeout time.Duration
	// Progress receives one status line per second, rewritten in place
	// (nil: none).
	Progress io.Writer
	// Classify names an error for the error counts (default: its gRPC code).
	Classify func(error) string
}

// Validate reports a configuration that cannot run.
func (c Config) Validate() error {
	switch {
	case c.Clients < 1:
		return fmt.Errorf("clients: %d, want at least 1", c.Clients)
	case c.Duration <= 0:
		return fmt.Errorf("duration: %v, want a positive duration", c.Duration)
	case c.Warmup < 0:
		return fmt.Errorf("warmup: %v, want zero or more", c.Warmup)
	case c.Rate < 0:
		return fmt.Errorf("rate: %v, want zero (closed loop) or more", c.Rate)
	}
	return nil
}

// Result is what a run measured.
type Result struct {
	// Ops counts the operations that succeeded in the measured window.
	Ops uint64 `json:"ops"`
	// Errors counts the operations that failed, by gRPC code (or Classify).
	Errors map[string]uint64 `json:"errors"`
	// ErrorSamples holds the first error message seen for each code.
	ErrorSamples map[string]string `json:"error_samples,omitempty"`
	// Elapsed is the measured window.
	Elapsed time.Duration `json:"-"`
	// OpsPerSec is Ops / Elapsed.
	OpsPerSec float64 `json:"ops_per_sec"`
	// Latency summarises successful operations.
	Latency Latency `json:"latency"`
}

// ErrorCount is the total of Errors.
func (r Result) ErrorCount() uint64 {
	var n uint64
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// Latency is a latency summary.
type Latency struct {
	Mean time.Duration `json:"-"`
	P50  time.Duration `json:"-"`
	P90  time.Duration `json:"-"`
	P99  time.Duration `json:"-"`
	P999 time.Duration `json:"-"`
	Max  time.Duration `json:"-"`
}

// Summarize reads a Latency off h.
func Summarize(h *Histogram) Latency {
	return Latency{Mean: h.Mean(), P50: h.Quantile(0.50), P90: h.Quantile(0.90),
		P99: h.Quantile(0.99), P999: h.Quantile(0.999), Max: h.Max()}
}

// Run drives op with cfg until the measured window ends or ctx is
// cancelled, and returns what it measured. Operations still running at the
// end are waited for but not counted.
func Run(ctx context.Context, cfg Config, op Op) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if cfg.Classify == nil {
		cfg.Classify = ErrorCode
	}
	r := &run{cfg: cfg, op: op, errs: map[string]uint64{}, samples: map[string]string{}}
	r.start = time.Now()
	r.measureFrom = r.start.Add(cfg.Warmup)
	r.end = r.measureFrom.Add(cfg.Duration)
	if cfg.Rate > 0 {
		r.interval = time.Duration(float64(time.Second) / cfg.Rate)
	}
	rctx, cancel := context.WithDeadline(ctx, r.end)
	defer cancel()
	hists := make([]Histogram, cfg.Clients)
	var wg sync.WaitGroup
	for w := range cfg.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.worker(rctx, w, &hists[w])
		}()
	}
	stopProgress := r.progress()
	wg.Wait()
	stopProgress()
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	var all Histogram
	for i := range hists {
		all.Merge(&hists[i])
	}
	res := Result{Ops: all.Count(), Errors: r.errs, ErrorSamples: r.samples, Elapsed: cfg.Duration, Latency: Summarize(&all)}
	res.OpsPerSec = float64(res.Ops) / cfg.Duration.Seconds()
	return res, nil
}

// run is the state shared by the workers of one Run.
type run struct {
	cfg                     Config
	op                      Op
	start, measureFrom, end time.Time
	interval                time.Duration // open loop: time between scheduled starts
	slot                    atomic.Int64  // open loop: next schedule slot

	done, failed atomic.Uint64 // counted operations, for progress
	mu           sync.Mutex
	errs         map[string]uint64
	samples      map[string]string
}

// next returns when the worker's next operation is due: now in a closed
// loop, the next free slot of the schedule in an open loop.
func (r *run) next() time.Time {
	if r.interval == 0 {
		return time.Now()
	}
	k := r.slot.Add(1) - 1
	return r.start.Add(time.Duration(k) * r.interval)
}

func (r *run) worker(ctx context.Context, w int, h *Histogram) {
	for {
		due := r.next()
		if !due.Before(r.end) {
			return
		}
		if d := time.Until(due); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
		}
		err := r.once(ctx, w)
		finished := time.Now()
		if !finished.Before(r.end) || ctx.Err() != nil {
			return // ended with the run (and maybe cut short by it): not counted
		}
		if due.Before(r.measureFrom) {
			continue
		}
		if err != nil {
			r.fail(err)
			continue
		}
		h.Record(finished.Sub(due))
		r.done.Add(1)
	}
}

func (r *run) once(ctx context.Context, w int) error {
	if r.cfg.OpTimeout <= 0 {
		return r.op(ctx, w)
	}
	octx, cancel := context.WithTimeout(ctx, r.cfg.OpTimeout)
	defer cancel()
	return r.op(octx, w)
}

func (r *run) fail(err error) {
	code := r.cfg.Classify(err)
	r.mu.Lock()
	r.errs[code]++
	if _, ok := r.samples[code]; !ok {
		r.samples[code] = err.Error()
	}
	r.mu.Unlock()
	r.failed.Add(1)
}

// progress prints a status line every second until the returned function
// is called, which also clears the line.
func (r *run) progress() func() {
	if r.cfg.Progress == nil {
		return func() {}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var last uint64
		for {
			select {
			case <-stop:
				fmt.Fprint(r.cfg.Progress, "\r\033[K")
				return
			case now := <-t.C:
				cur := r.done.Load()
				fmt.Fprintf(r.cfg.Progress, "\r\033[K%s", r.statusLine(now, cur-last, cur))
				last = cur
			}
		}
	}()
	return func() { close(stop); <-done }
}

func (r *run) statusLine(now time.Time, lastSecond, total uint64) string {
	if now.Before(r.measureFrom) {
		return fmt.Sprintf("warming up: %s left", r.measureFrom.Sub(now).Round(time.Second))
	}
	return fmt.Sprintf("%s/%s  %d ops/s (last second)  %d ops  %d errors",
		now.Sub(r.measureFrom).Round(time.Second), r.cfg.Duration, lastSecond, total, r.failed.Load())
}

// ErrorCode names an error by its gRPC status code; context errors count as
// DeadlineExceeded or Canceled.
func ErrorCode(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded.String()
	case errors.Is(err, context.Canceled):
		return codes.Canceled.String()
	}
	var coded interface{ GRPCStatus() *status.Status }
	if errors.As(err, &coded) {
		return coded.GRPCStatus().Code().String()
	}
	if s, ok := status.FromError(err); ok {
		return s.Code().String()
	}
	return codes.Unknown.String()
}

// SortedCodes returns the keys of an error count map in order.
func SortedCodes(m map[string]uint64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
