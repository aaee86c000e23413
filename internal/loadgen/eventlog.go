package loadgen

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"coord/client"
)

// sentKey is the event metadata key that carries, with Subscribers > 0,
// the time (Unix nanoseconds) the append was sent.
const sentKey = "bench-sent"

// LogAppend appends PerRequest events of ValueSize bytes per operation, in
// one atomic Append, to the worker's own stream (Streams > 0 spreads the
// workers over that many streams instead). Event ids are left to the
// client, which makes one per event, as most callers do.
//
// With Subscribers > 0, that many subscriptions to every stream of the run
// (SubscribeAll with the run's stream prefix, started before the load)
// follow the appends, and Extra reports the subscription lag: for each
// event appended after Warmup, the time from sending its Append to its
// delivery to a subscriber, which includes the append's own commit.
type LogAppend struct {
	Pool        Pool
	Prefix      string
	ValueSize   int
	PerRequest  int
	Streams     int
	Subscribers int
	// Warmup is the run's warm-up: lag is measured for events sent after it.
	Warmup time.Duration

	payload     []byte
	measureFrom atomic.Int64  // Unix nanoseconds
	appended    atomic.Uint64 // events acknowledged, sent after measureFrom
	subs        []*lagSubscriber
	cancelSubs  context.CancelFunc
	subsDone    sync.WaitGroup
}

// lagSubscriber is one subscription and what it measured.
type lagSubscriber struct {
	hist      Histogram // owned by the subscriber's goroutine until it ends
	delivered atomic.Uint64
	err       error
}

// Setup implements Workload: it starts the subscribers and waits until
// each has started.
func (w *LogAppend) Setup(ctx context.Context, _ int) error {
	if w.PerRequest < 1 {
		return fmt.Errorf("events per request: %d, want at least 1", w.PerRequest)
	}
	if w.Subscribers < 0 {
		return fmt.Errorf("subscribers: %d, want zero or more", w.Subscribers)
	}
	w.payload = Value(w.ValueSize)
	if w.Subscribers == 0 {
		return nil
	}
	sctx, cancel := context.WithCancel(context.Background())
	w.cancelSubs = cancel
	started := make(chan error, w.Subscribers)
	for i := range w.Subscribers {
		s := &lagSubscriber{}
		w.subs = append(w.subs, s)
		w.subsDone.Add(1)
		go func() {
			defer w.subsDone.Done()
			s.follow(sctx, w.Pool.For(i), w.Prefix, &w.measureFrom, started)
		}()
	}
	for range w.Subscribers {
		select {
		case err := <-started:
			if err != nil {
				_ = w.Close(context.Background())
				return fmt.Errorf("subscribe: %w", err)
			}
		case <-ctx.Done():
			_ = w.Close(context.Background())
			return ctx.Err()
		}
	}
	w.measureFrom.Store(time.Now().Add(w.Warmup).UnixNano())
	return nil
}

// follow delivers events until ctx ends, recording the lag of those sent
// at or after measureFrom. It reports on started once the subscription
// has begun (its first checkpoint) or failed.
func (s *lagSubscriber) follow(ctx context.Context, c *client.Client, prefix string, measureFrom *atomic.Int64, started chan<- error) {
	first := true
	for m, err := range c.SubscribeAll(ctx, 0, client.Filter{StreamPrefix: prefix}, client.FromEnd()) {
		if err != nil {
			if first {
				started <- err
			} else {
				s.err = err
			}
			return
		}
		now := time.Now()
		if first {
			first = false
			started <- nil
		}
		ev := m.GetEvent()
		if ev == nil {
			continue
		}
		ns, err := strconv.ParseInt(ev.Metadata[sentKey], 10, 64)
		if err != nil {
			continue
		}
		if ns < measureFrom.Load() {
			continue
		}
		s.hist.Record(now.Sub(time.Unix(0, ns)))
		s.delivered.Add(1)
	}
}

// Op implements Workload.
func (w *LogAppend) Op(ctx context.Context, worker int) error {
	stream := worker
	if w.Streams > 0 {
		stream %= w.Streams
	}
	sent := time.Now()
	var meta map[string]string
	if w.Subscribers > 0 {
		meta = map[string]string{sentKey: strconv.FormatInt(sent.UnixNano(), 10)}
	}
	events := make([]client.Event, w.PerRequest)
	for i := range events {
		events[i] = client.Event{Type: "bench", Data: w.payload, Metadata: meta}
	}
	_, err := w.Pool.For(worker).Append(ctx, w.Prefix+"stream-"+KeyName(stream), events)
	if err == nil && w.Subscribers > 0 && sent.UnixNano() >= w.measureFrom.Load() {
		w.appended.Add(uint64(w.PerRequest))
	}
	return err
}

// subscriberGrace bounds how long Close waits for the subscribers to
// receive what was appended.
const subscriberGrace = 10 * time.Second

// Close implements Workload: it lets the subscribers catch up (within
// subscriberGrace or ctx) and stops them.
func (w *LogAppend) Close(ctx context.Context) error {
	if w.cancelSubs == nil {
		return nil
	}
	deadline := time.Now().Add(subscriberGrace)
	for time.Now().Before(deadline) && ctx.Err() == nil && !w.caughtUp() {
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	w.cancelSubs()
	w.subsDone.Wait()
	var errs []error
	for i, s := range w.subs {
		if s.err != nil {
			errs = append(errs, fmt.Errorf("subscriber %d: %w", i, s.err))
		}
	}
	return errors.Join(errs...)
}

// caughtUp reports whether every subscriber has received every event
// acknowledged in the measured window.
func (w *LogAppend) caughtUp() bool {
	want := w.appended.Load()
	for _, s := range w.subs {
		if s.delivered.Load() < want {
			return false
		}
	}
	return true
}

// Extra implements Workload.
func (w *LogAppend) Extra() map[string]any {
	out := map[string]any{"events_per_request": w.PerRequest}
	if w.Subscribers == 0 {
		return out
	}
	var h Histogram
	var delivered uint64
	for _, s := range w.subs {
		h.Merge(&s.hist)
		delivered += s.delivered.Load()
	}
	lag := Summarize(&h).MS()
	out["subscribers"] = w.Subscribers
	out["subscription_lag_ms"] = lag
	out["events_appended"] = w.appended.Load()
	out["events_delivered"] = delivered
	return out
}
