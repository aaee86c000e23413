package chaos

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	coordv1 "coord/api/coord/v1"
	"coord/client"
)

// Lock workload shape.
const (
	lockClients   = 5
	lockNames     = 2
	lockTTL       = 2 * time.Second
	lockWait      = 3 * time.Second
	lockOpTimeout = 5 * time.Second
	// slowHolder is the share of grants whose holder stalls for longer
	// than its lease before touching the resources, as a process pause
	// would make it: its writes must then be refused.
	slowHolder = 0.1
	slowStall  = lockTTL + time.Second
)

// lockWorkload has clients take locks (LockService Acquire with a lease
// and a wait), then, as holders, read-modify-write a fenced resource kept
// by the runner and put a value under a fence on coord itself, and release.
type lockWorkload struct {
	env       *runEnv
	locks     []string
	clients   []*client.Client
	resources map[string]*fencedResource
}

func newLockWorkload(env *runEnv) *lockWorkload {
	w := &lockWorkload{env: env, resources: map[string]*fencedResource{}}
	for i := range lockNames {
		name := fmt.Sprintf("chaos/lock/l%d", i)
		w.locks = append(w.locks, name)
		w.resources[name] = &fencedResource{}
	}
	return w
}

func fencedKey(lock string) string { return "chaos/fenced/" + lock }

func (w *lockWorkload) name() string { return "lock" }

func (w *lockWorkload) setup(ctx context.Context) error {
	for range lockClients {
		c, err := w.env.newClient(ctx)
		if err != nil {
			return err
		}
		w.clients = append(w.clients, c)
	}
	return nil
}

func (w *lockWorkload) close() {
	for _, c := range w.clients {
		c.Close()
	}
}

func (w *lockWorkload) run(ctx context.Context) {
	var wg sync.WaitGroup
	for i, c := range w.clients {
		wg.Add(1)
		go func() { defer wg.Done(); w.clientLoop(ctx, i, c) }()
	}
	wg.Wait()
}

func (w *lockWorkload) clientLoop(ctx context.Context, ci int, c *client.Client) {
	rng := w.env.rng(300 + uint64(ci))
	for n := 0; ctx.Err() == nil; n++ {
		name := w.locks[rng.IntN(len(w.locks))]
		token, lease, ok := w.acquire(ctx, ci, c, name)
		if !ok {
			sleepCtx(ctx, 20*time.Millisecond)
			continue
		}
		if rng.Float64() < slowHolder {
			sleepCtx(ctx, slowStall)
		} else {
			sleepCtx(ctx, time.Duration(rng.IntN(20))*time.Millisecond)
		}
		res := w.resources[name]
		v, readOK := res.read(token)
		w.fencedPut(ctx, ci, c, name, token, fmt.Sprintf("c%d-%d", ci, n))
		if readOK {
			res.write(token, ci, v, w.env.hist.now())
		}
		w.release(ctx, ci, c, name, token, lease)
	}
}

func (w *lockWorkload) acquire(ctx context.Context, ci int, c *client.Client, name string) (token, lease uint64, ok bool) {
	op := w.env.hist.begin(&Op{Workload: "lock", Client: ci, Kind: "acquire", Key: name})
	octx, cancel := context.WithTimeout(ctx, lockWait+lockOpTimeout)
	defer cancel()
	resp, err := c.AcquireLock(octx, &coordv1.AcquireRequest{
		Name: name, Owner: fmt.Sprintf("chaos-c%d", ci),
		Ttl: durationpb.New(lockTTL), Wait: durationpb.New(lockWait),
	})
	if err != nil {
		w.env.hist.end(op, writeOutcome(err), err)
		return 0, 0, false
	}
	op.OK = resp.GetAcquired()
	if op.OK {
		op.Token, op.Lease = resp.GetHolder().GetToken(), resp.GetLease().GetId()
	}
	w.env.hist.end(op, StatusOK, nil)
	return op.Token, op.Lease, op.OK
}

func (w *lockWorkload) fencedPut(ctx context.Context, ci int, c *client.Client, name string, token uint64, value string) {
	op := w.env.hist.begin(&Op{Workload: "lock", Client: ci, Kind: "fput", Key: name, Token: token, Value: value})
	octx, cancel := context.WithTimeout(ctx, lockOpTimeout)
	defer cancel()
	resp, err := c.Put(octx, fencedKey(name), []byte(value), client.WithFence(&coordv1.Fence{Lock: name, Token: token}))
	switch {
	case err == nil:
		op.OK, op.Revision = resp.GetSucceeded(), resp.GetRevision()
		w.env.hist.end(op, StatusOK, nil)
	case errors.Is(err, client.ErrFenced):
		op.Fenced = true
		w.env.hist.end(op, StatusOK, err)
	default:
		w.env.hist.end(op, writeOutcome(err), err)
	}
}

func (w *lockWorkload) release(ctx context.Context, ci int, c *client.Client, name string, token, lease uint64) {
	op := w.env.hist.begin(&Op{Workload: "lock", Client: ci, Kind: "release", Key: name, Token: token, Lease: lease})
	octx, cancel := context.WithTimeout(ctx, lockOpTimeout)
	defer cancel()
	resp, err := c.ReleaseLock(octx, name, token, lease)
	if err != nil {
		w.env.hist.end(op, writeOutcome(err), err)
		return
	}
	op.OK = resp.GetReleased()
	w.env.hist.end(op, StatusOK, nil)
}

// final reads every fenced key, so that unknown fenced puts can be
// resolved against the final value.
func (w *lockWorkload) final(ctx context.Context) error {
	c := w.clients[0]
	for _, name := range w.locks {
		for {
			op := w.env.hist.begin(&Op{Workload: "lock", Kind: "fget", Key: name, Extra: "final"})
			resp, err := c.Get(ctx, fencedKey(name))
			if err == nil {
				readResult(op, resp)
				w.env.hist.end(op, StatusOK, nil)
				break
			}
			w.env.hist.end(op, StatusFail, err)
			if ctx.Err() != nil {
				return fmt.Errorf("final read of %s: %w", fencedKey(name), ctx.Err())
			}
		}
	}
	return nil
}

func (w *lockWorkload) check(ops []*Op, cc checkConfig) workloadResult {
	res := checkLocks(ops, cc)
	for _, name := range w.locks {
		res.Anomalies = append(res.Anomalies, w.resources[name].check(name)...)
		r := w.resources[name].summary()
		res.Notes = append(res.Notes, fmt.Sprintf("resource %s: %d writes accepted, %d accesses refused as stale, final value %d", name, r.accepted, r.refused, r.value))
	}
	return res
}

// fencedResource stands for a storage service protected by a lock's
// fencing tokens. Every access carries the holder's token; the resource
// refuses a token older than the newest it has seen and remembers the
// newest. Writes are read-modify-write increments of a counter: each
// accepted write must build on the value its writer read, or an update
// was lost.
type fencedResource struct {
	mu       sync.Mutex
	highest  uint64
	value    int64
	refused  int
	accepted []resourceWrite
	lost     []resourceWrite
}

type resourceWrite struct {
	Token  uint64 `json:"token"`
	Client int    `json:"client"`
	Read   int64  `json:"read"`  // value the writer read
	Before int64  `json:"prior"` // value just before the write
	At     int64  `json:"at"`
}

// read returns the value if token is not older than the newest seen.
func (r *fencedResource) read(token uint64) (int64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if token < r.highest {
		r.refused++
		return 0, false
	}
	r.highest = token
	return r.value, true
}

// write stores read+1 if token is not older than the newest seen.
func (r *fencedResource) write(token uint64, client int, read int64, at int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if token < r.highest {
		r.refused++
		return false
	}
	r.highest = token
	w := resourceWrite{Token: token, Client: client, Read: read, Before: r.value, At: at}
	if r.value != read {
		r.lost = append(r.lost, w)
	}
	r.accepted = append(r.accepted, w)
	r.value = read + 1
	return true
}

type resourceSummary struct {
	accepted, refused int
	value             int64
}

func (r *fencedResource) summary() resourceSummary {
	r.mu.Lock()
	defer r.mu.Unlock()
	return resourceSummary{len(r.accepted), r.refused, r.value}
}

// check reports lost updates and accepted tokens that went backwards.
func (r *fencedResource) check(name string) []Anomaly {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Anomaly
	for _, w := range r.lost {
		out = append(out, anomalyf("lost-update", "lock", nil,
			"resource %s: client %d wrote with token %d on top of value %d, but the value was %d: an acknowledged update was lost (two holders shared a token)",
			name, w.Client, w.Token, w.Read, w.Before))
	}
	for i := 1; i < len(r.accepted); i++ {
		if r.accepted[i].Token < r.accepted[i-1].Token {
			out = append(out, anomalyf("resource-stale-token", "lock", nil, "resource %s accepted token %d after token %d", name, r.accepted[i].Token, r.accepted[i-1].Token))
		}
	}
	if int64(len(r.accepted)) != r.value && len(r.lost) == 0 {
		out = append(out, anomalyf("lost-update", "lock", nil, "resource %s: %d writes accepted but the counter is %d", name, len(r.accepted), r.value))
	}
	return out
}
