package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"coord/client"
)

// Workload is a benchmark workload: Setup prepares what Op needs (keys,
// leases) before the clock starts, Op is what is measured, Close cleans up.
type Workload interface {
	// Setup prepares the workload for clients workers.
	Setup(ctx context.Context, clients int) error
	// Op runs one measured operation for a worker.
	Op(ctx context.Context, worker int) error
	// Close releases what Setup created.
	Close(ctx context.Context) error
	// Extra returns workload-specific figures for the report (or nil).
	Extra() map[string]any
}

// Pool is a set of coord clients shared by the workers: worker w uses
// client w mod len(pool), so --conns 1 multiplexes every worker over one
// connection per node.
type Pool []*client.Client

// NewPool connects n clients to endpoints.
func NewPool(ctx context.Context, n int, cfg client.Config) (Pool, error) {
	var p Pool
	for range n {
		c, err := client.New(ctx, cfg)
		if err != nil {
			p.Close()
			return nil, err
		}
		p = append(p, c)
	}
	return p, nil
}

// For returns the client of worker w.
func (p Pool) For(w int) *client.Client { return p[w%len(p)] }

// Close closes every client.
func (p Pool) Close() {
	for _, c := range p {
		_ = c.Close()
	}
}

// RunID returns a short random string that keeps the keys and lock names of
// concurrent or successive runs apart.
func RunID() string { return fmt.Sprintf("%06x", rand.Uint32()&0xffffff) }

// Value returns a value of n bytes.
func Value(n int) []byte { return []byte(strings.Repeat("x", n)) }

// KVPut writes Value(ValueSize) to one of Keys keys per operation.
type KVPut struct {
	Pool      Pool
	Prefix    string
	Keys      int
	ValueSize int
	value     []byte
}

// Setup implements Workload.
func (w *KVPut) Setup(context.Context, int) error {
	if w.Keys < 1 {
		return fmt.Errorf("keys: %d, want at least 1", w.Keys)
	}
	w.value = Value(w.ValueSize)
	return nil
}

// Op implements Workload.
func (w *KVPut) Op(ctx context.Context, worker int) error {
	_, err := w.Pool.For(worker).Put(ctx, w.Prefix+KeyName(rand.IntN(w.Keys)), w.value)
	return err
}

// Close implements Workload.
func (w *KVPut) Close(context.Context) error { return nil }

// Extra implements Workload.
func (w *KVPut) Extra() map[string]any { return nil }

// KeyName is the name of key i of a key space.
func KeyName(i int) string { return fmt.Sprintf("%08d", i) }

// Read reads one of Keys keys (written by Setup) per operation:
// linearizably, or from the nearest node's state with Stale.
type Read struct {
	Pool      Pool
	Prefix    string
	Keys      int
	ValueSize int
	Stale     bool
}

// Setup implements Workload: it writes every key, 64 at a time.
func (w *Read) Setup(ctx context.Context, _ int) error {
	if w.Keys < 1 {
		return fmt.Errorf("keys: %d, want at least 1", w.Keys)
	}
	value := Value(w.ValueSize)
	return Parallel(ctx, w.Keys, 64, func(ctx context.Context, i int) error {
		_, err := w.Pool.For(i).Put(ctx, w.Prefix+KeyName(i), value)
		return err
	})
}

// Op implements Workload.
func (w *Read) Op(ctx context.Context, worker int) error {
	var opts []client.ReadOption
	if w.Stale {
		opts = append(opts, client.Stale())
	}
	resp, err := w.Pool.For(worker).Get(ctx, w.Prefix+KeyName(rand.IntN(w.Keys)), opts...)
	if err == nil && !resp.Found {
		return errors.New("a key written by setup was not found")
	}
	return err
}

// Close implements Workload.
func (w *Read) Close(context.Context) error { return nil }

// Extra implements Workload.
func (w *Read) Extra() map[string]any { return nil }

// Parallel runs fn(i) for i in [0, n) on width goroutines and returns the
// first error.
func Parallel(ctx context.Context, n, width int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		next  int
		first error
		wg    sync.WaitGroup
	)
	for range min(width, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil
				mu.Unlock()
				if stop || i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
						cancel()
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// opTime is how long setup and cleanup calls may take.
const opTime = 30 * time.Second
