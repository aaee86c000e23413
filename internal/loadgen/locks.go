package loadgen

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	coordv1 "coord/api/coord/v1"
	"coord/client"
)

// leaseTTL is the TTL of the workers' leases; a background loop renews them.
const leaseTTL = time.Minute

// leases gives every worker a lease for the run and keeps them alive, as a
// long-lived service holds one session for all its locks.
type leases struct {
	pool Pool
	ids  []uint64
	stop context.CancelFunc
	done chan struct{}
}

func (ls *leases) grant(ctx context.Context, clients int) error {
	ls.ids = make([]uint64, clients)
	err := Parallel(ctx, clients, 64, func(ctx context.Context, w int) error {
		l, err := ls.pool.For(w).GrantLease(ctx, leaseTTL, fmt.Sprintf("bench-%d", w))
		if err == nil {
			ls.ids[w] = l.Id
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("grant leases: %w", err)
	}
	kctx, cancel := context.WithCancel(context.Background())
	ls.stop, ls.done = cancel, make(chan struct{})
	go ls.keepAlive(kctx)
	return nil
}

// keepAlive renews every lease each TTL/4, up to client.MaxKeepAlive per call.
func (ls *leases) keepAlive(ctx context.Context) {
	defer close(ls.done)
	t := time.NewTicker(leaseTTL / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for chunk := range slices.Chunk(ls.ids, 1000) {
			cctx, cancel := context.WithTimeout(ctx, leaseTTL/4)
			_, _ = ls.pool[0].KeepAlive(cctx, chunk...)
			cancel()
		}
	}
}

func (ls *leases) revoke(ctx context.Context) error {
	if ls.stop == nil {
		return nil
	}
	ls.stop()
	<-ls.done
	return Parallel(ctx, len(ls.ids), 64, func(ctx context.Context, w int) error {
		return ls.pool.For(w).RevokeLease(ctx, ls.ids[w])
	})
}

// Lock acquires and releases a lock per operation, under the worker's
// lease: one lock per worker, or with Contended one lock for all, whose
// grants are then checked for FIFO order through a watch.
type Lock struct {
	Pool      Pool
	Prefix    string
	Contended bool

	leases leases
	names  []string
	fifo   *FIFOChecker
	stop   context.CancelFunc
	done   chan struct{}
}

// Setup implements Workload.
func (w *Lock) Setup(ctx context.Context, clients int) error {
	w.leases.pool = w.Pool
	if err := w.leases.grant(ctx, clients); err != nil {
		return err
	}
	w.names = make([]string, clients)
	for i := range w.names {
		w.names[i] = w.Prefix + "lock/" + KeyName(i)
		if w.Contended {
			w.names[i] = w.Prefix + "hot"
		}
	}
	if w.Contended {
		return w.watch(ctx)
	}
	return nil
}

// watch feeds the contended lock's events to a FIFO checker until Close.
func (w *Lock) watch(ctx context.Context) error {
	wctx, cancel := context.WithCancel(context.Background())
	events, err := w.Pool[0].WatchLock(wctx, w.names[0], 0)
	if err != nil {
		cancel()
		return err
	}
	w.fifo, w.stop, w.done = &FIFOChecker{}, cancel, make(chan struct{})
	go func() {
		defer close(w.done)
		for ev := range events {
			w.fifo.Event(ev)
		}
	}()
	// The first event is the lock's snapshot; wait for it so that no grant
	// of the run goes unseen.
	deadline := time.Now().Add(opTime)
	for !w.fifo.Synced() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("watch %s: no snapshot within %v", w.names[0], opTime)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// Op implements Workload.
func (w *Lock) Op(ctx context.Context, worker int) error {
	c := w.Pool.For(worker)
	l, err := c.Lock(ctx, w.names[worker], client.WithLease(w.leases.ids[worker]), client.Owner("bench"))
	if err != nil {
		return err
	}
	return l.Unlock(ctx)
}

// Close implements Workload.
func (w *Lock) Close(ctx context.Context) error {
	err := w.leases.revoke(ctx)
	if w.stop != nil {
		// Let the watch deliver the releases of the run's last grants.
		time.Sleep(200 * time.Millisecond)
		w.stop()
		<-w.done
	}
	return err
}

// Extra implements Workload: for a contended lock, the FIFO check.
func (w *Lock) Extra() map[string]any {
	if w.fifo == nil {
		return nil
	}
	return w.fifo.Report()
}

// FIFOChecker follows a lock's watch events and checks that every grant
// goes to the head of the queue (or, with an empty queue, to the caller).
type FIFOChecker struct {
	mu         sync.Mutex
	synced     bool
	queue      []uint64 // lease ids of the waiters, in queue order
	grants     uint64
	violations uint64
	resyncs    uint64
	first      string // the first violation
}

// Event processes one watch event.
func (f *FIFOChecker) Event(ev *coordv1.WatchLockResponse) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch ev.Type {
	case coordv1.LockEventType_LOCK_EVENT_TYPE_SNAPSHOT:
		if f.synced {
			f.resyncs++ // the watch fell behind the kept history
		}
		f.synced = true
		f.queue = f.queue[:0]
		for _, wt := range ev.GetLock().GetWaiters() {
			f.queue = append(f.queue, wt.LeaseId)
		}
	case coordv1.LockEventType_LOCK_EVENT_TYPE_QUEUED:
		f.queue = append(f.queue, ev.LeaseId)
	case coordv1.LockEventType_LOCK_EVENT_TYPE_WAIT_ENDED:
		if i := slices.Index(f.queue, ev.LeaseId); i >= 0 {
			f.queue = slices.Delete(f.queue, i, i+1)
		}
	case coordv1.LockEventType_LOCK_EVENT_TYPE_GRANTED:
		f.granted(ev)
	}
}

func (f *FIFOChecker) granted(ev *coordv1.WatchLockResponse) {
	f.grants++
	switch i := slices.Index(f.queue, ev.LeaseId); {
	case i == 0:
		f.queue = f.queue[1:]
	case i < 0 && len(f.queue) == 0:
		// granted on arrival: nobody was waiting
	default:
		f.violations++
		if f.first == "" {
			f.first = fmt.Sprintf("revision %d granted lease %d (token %d) at queue position %d of %d",
				ev.Revision, ev.LeaseId, ev.Token, i, len(f.queue))
		}
		if i > 0 {
			f.queue = slices.Delete(f.queue, i, i+1)
		}
	}
}

// Synced reports whether the first snapshot has arrived.
func (f *FIFOChecker) Synced() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.synced
}

// Violations is the number of grants out of FIFO order.
func (f *FIFOChecker) Violations() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.violations
}

// Report returns the check's figures.
func (f *FIFOChecker) Report() map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := map[string]any{
		"fifo_grants_checked": f.grants,
		"fifo_violations":     f.violations,
		"watch_resyncs":       f.resyncs,
	}
	if f.first != "" {
		r["first_violation"] = f.first
	}
	return r
}
