package loadgen

import (
	"context"
	"errors"
	"math/rand"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	coordv1 "coord/api/coord/v1"
)

// TestHistogramQuantiles compares the histogram with exact quantiles of
// sorted samples: within the bucket precision, and never below.
func TestHistogramQuantiles(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var h, a, b Histogram
	var all []time.Duration
	for i := range 100000 {
		d := time.Duration(rng.ExpFloat64() * float64(3*time.Millisecond))
		if i%1000 == 0 {
			d *= 50 // a tail
		}
		all = append(all, d)
		h.Record(d)
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(&b)
	slices.Sort(all)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		exact := all[min(int(q*float64(len(all))+0.5), len(all))-1]
		for name, hist := range map[string]*Histogram{"direct": &h, "merged": &a} {
			got := hist.Quantile(q)
			if got < exact || float64(got-exact) > 0.01*float64(exact)+1 {
				t.Errorf("%s p%v = %v, exact %v", name, q*100, got, exact)
			}
		}
	}
	if h.Max() != all[len(all)-1] || a.Max() != h.Max() {
		t.Errorf("max %v / %v, want %v", h.Max(), a.Max(), all[len(all)-1])
	}
	if h.Count() != uint64(len(all)) || a.Count() != h.Count() {
		t.Errorf("count %d / %d, want %d", h.Count(), a.Count(), len(all))
	}
}

func TestHistogramEdges(t *testing.T) {
	var h Histogram
	if h.Quantile(0.99) != 0 || h.Mean() != 0 {
		t.Fatal("an empty histogram reports values")
	}
	h.Record(-time.Second) // counts as zero
	h.Record(50 * time.Hour)
	if h.Quantile(0) != 0 || h.Quantile(1) != 50*time.Hour {
		t.Fatalf("quantiles %v, %v", h.Quantile(0), h.Quantile(1))
	}
}

func TestRunCountsAndClassifies(t *testing.T) {
	var calls atomic.Int64
	op := func(ctx context.Context, w int) error {
		n := calls.Add(1)
		time.Sleep(time.Millisecond)
		switch n % 10 {
		case 0:
			return status.Error(codes.Unavailable, "down")
		case 5:
			return &fakeCoded{}
		}
		return nil
	}
	res, err := Run(context.Background(), Config{Clients: 4, Duration: 300 * time.Millisecond, Warmup: 50 * time.Millisecond}, op)
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops == 0 || res.Errors["Unavailable"] == 0 || res.Errors["NotFound"] == 0 {
		t.Fatalf("result %+v", res)
	}
	if res.ErrorSamples["Unavailable"] == "" {
		t.Fatalf("no sample message: %v", res.ErrorSamples)
	}
	if counted := res.Ops + res.ErrorCount(); counted >= uint64(calls.Load()) {
		t.Fatalf("counted %d of %d calls: the warm-up's calls must not count", counted, calls.Load())
	}
}

// fakeCoded is an error that carries a gRPC status, as client.Error does.
type fakeCoded struct{}

func (*fakeCoded) Error() string              { return "not here" }
func (*fakeCoded) GRPCStatus() *status.Status { return status.New(codes.NotFound, "not here") }

func TestErrorCode(t *testing.T) {
	cases := map[error]string{
		context.DeadlineExceeded:                      "DeadlineExceeded",
		context.Canceled:                              "Canceled",
		status.Error(codes.ResourceExhausted, "full"): "ResourceExhausted",
		&fakeCoded{}:                                  "NotFound",
		errors.New("plain"):                           "Unknown",
	}
	for err, want := range cases {
		if got := ErrorCode(err); got != want {
			t.Errorf("ErrorCode(%v) = %s, want %s", err, got, want)
		}
	}
}

// TestOpenLoopKeepsToItsSchedule: an open loop starts operations on its
// schedule, not as fast as the workers could go.
func TestOpenLoopKeepsToItsSchedule(t *testing.T) {
	var calls atomic.Int64
	op := func(context.Context, int) error { calls.Add(1); return nil }
	res, err := Run(context.Background(), Config{Clients: 8, Duration: 500 * time.Millisecond, Rate: 100}, op)
	if err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n > 51 || res.Ops == 0 {
		t.Fatalf("%d calls (%d counted) in 0.5s at 100/s", n, res.Ops)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []Config{
		{Clients: 0, Duration: time.Second},
		{Clients: 1},
		{Clients: 1, Duration: time.Second, Warmup: -1},
		{Clients: 1, Duration: time.Second, Rate: -1},
	}
	for _, c := range bad {
		if _, err := Run(context.Background(), c, nil); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
}

func lockEvent(typ coordv1.LockEventType, lease uint64) *coordv1.WatchLockResponse {
	return &coordv1.WatchLockResponse{Type: typ, LeaseId: lease}
}

func TestFIFOChecker(t *testing.T) {
	const (
		snap    = coordv1.LockEventType_LOCK_EVENT_TYPE_SNAPSHOT
		queued  = coordv1.LockEventType_LOCK_EVENT_TYPE_QUEUED
		granted = coordv1.LockEventType_LOCK_EVENT_TYPE_GRANTED
		left    = coordv1.LockEventType_LOCK_EVENT_TYPE_WAIT_ENDED
	)
	var f FIFOChecker
	f.Event(&coordv1.WatchLockResponse{Type: snap, Lock: &coordv1.Lock{Waiters: []*coordv1.LockWaiter{{LeaseId: 7}}}})
	for _, ev := range []*coordv1.WatchLockResponse{
		lockEvent(queued, 1), lockEvent(queued, 2), lockEvent(queued, 3),
		lockEvent(granted, 7), lockEvent(left, 2), lockEvent(granted, 1), lockEvent(granted, 3),
		lockEvent(granted, 9), // nobody waits: granted on arrival
	} {
		f.Event(ev)
	}
	if f.Violations() != 0 || !f.Synced() {
		t.Fatalf("in-order grants reported: %v", f.Report())
	}
	f.Event(lockEvent(queued, 4))
	f.Event(lockEvent(queued, 5))
	f.Event(lockEvent(granted, 5)) // ahead of 4
	f.Event(lockEvent(queued, 6))
	f.Event(lockEvent(granted, 8)) // ahead of everyone
	if f.Violations() != 2 {
		t.Fatalf("violations = %d, want 2: %v", f.Violations(), f.Report())
	}
	if r := f.Report(); r["first_violation"] == nil || r["fifo_grants_checked"] != uint64(6) {
		t.Fatalf("report %v", r)
	}
}
