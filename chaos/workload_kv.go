package chaos

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	coordv1 "coord/api/coord/v1"
	"coord/client"
)

// KV workload shape.
const (
	kvKeys        = 5
	kvClients     = 5
	kvOpTimeout   = 5 * time.Second
	pinInterval   = 40 * time.Millisecond // per node
	pinTimeout    = 10 * time.Second
	pinMaxPending = 100 // per node
)

// kvWorkload writes unique values to a few keys and reads them back
// linearizably, through the client library (leader discovery, retries with
// the same request id) and through "pinned" readers that send Get straight
// to one node each, without client-side failover. A pinned read sent to a
// paused or isolated old leader waits there, so a node that answers reads
// without confirming its leadership is caught serving stale data.
type kvWorkload struct {
	env     *runEnv
	keys    []string
	clients []*client.Client
	pins    []*grpc.ClientConn
}

func newKVWorkload(env *runEnv) *kvWorkload {
	w := &kvWorkload{env: env}
	for i := range kvKeys {
		w.keys = append(w.keys, fmt.Sprintf("chaos/kv/k%d", i))
	}
	return w
}

func (w *kvWorkload) name() string { return "kv" }

func (w *kvWorkload) setup(ctx context.Context) error {
	for range kvClients {
		c, err := w.env.newClient(ctx)
		if err != nil {
			return err
		}
		w.clients = append(w.clients, c)
	}
	for _, ep := range w.env.cl.Endpoints() {
		cc, err := grpc.NewClient(ep, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		w.pins = append(w.pins, cc)
	}
	return nil
}

func (w *kvWorkload) close() {
	for _, c := range w.clients {
		c.Close()
	}
	for _, cc := range w.pins {
		cc.Close()
	}
}

func (w *kvWorkload) run(ctx context.Context) {
	var wg sync.WaitGroup
	for i, c := range w.clients {
		wg.Add(1)
		go func() { defer wg.Done(); w.clientLoop(ctx, i, c) }()
	}
	for i := range w.pins {
		wg.Add(1)
		go func() { defer wg.Done(); w.pinLoop(ctx, i) }()
	}
	wg.Wait()
}

// clientLoop alternates puts of unique values and linearizable gets.
func (w *kvWorkload) clientLoop(ctx context.Context, ci int, c *client.Client) {
	rng := w.env.rng(100 + uint64(ci))
	for n := 0; ctx.Err() == nil; n++ {
		key := w.keys[rng.IntN(len(w.keys))]
		if rng.IntN(2) == 0 {
			w.put(ctx, ci, c, key, fmt.Sprintf("c%d-%d", ci, n))
		} else {
			w.get(ctx, ci, c, key, "")
		}
	}
}

func (w *kvWorkload) put(ctx context.Context, ci int, c *client.Client, key, value string) {
	op := w.env.hist.begin(&Op{Workload: "kv", Client: ci, Kind: "put", Key: key, Value: value})
	octx, cancel := context.WithTimeout(ctx, kvOpTimeout)
	defer cancel()
	resp, err := c.Put(octx, key, []byte(value))
	if err != nil {
		w.env.hist.end(op, writeOutcome(err), err)
		return
	}
	op.OK, op.Revision = resp.GetSucceeded(), resp.GetRevision()
	w.env.hist.end(op, StatusOK, nil)
}

func (w *kvWorkload) get(ctx context.Context, ci int, c *client.Client, key, extra string) error {
	op := w.env.hist.begin(&Op{Workload: "kv", Client: ci, Kind: "get", Key: key, Extra: extra})
	octx, cancel := context.WithTimeout(ctx, kvOpTimeout)
	defer cancel()
	resp, err := c.Get(octx, key)
	if err != nil {
		w.env.hist.end(op, StatusFail, err)
		return err
	}
	readResult(op, resp)
	w.env.hist.end(op, StatusOK, nil)
	return nil
}

func readResult(op *Op, resp *coordv1.GetResponse) {
	op.Found = resp.GetFound()
	if op.Found {
		op.Value, op.Revision = string(resp.GetKv().GetValue()), resp.GetKv().GetModRevision()
	}
}

// pinLoop sends a linearizable Get straight to node i every pinInterval,
// each in its own goroutine, so reads keep being issued (and queue up)
// while the node is paused or cut off.
func (w *kvWorkload) pinLoop(ctx context.Context, i int) {
	rng := w.env.rng(200 + uint64(i))
	kv := coordv1.NewKVServiceClient(w.pins[i])
	sem := make(chan struct{}, pinMaxPending)
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(pinInterval)
	defer t.Stop()
	client := kvClients + i
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			continue
		}
		key := w.keys[rng.IntN(len(w.keys))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			op := w.env.hist.begin(&Op{Workload: "kv", Client: client, Kind: "get", Key: key, Node: fmt.Sprintf("n%d", i+1)})
			octx, cancel := context.WithTimeout(ctx, pinTimeout)
			defer cancel()
			resp, err := kv.Get(octx, &coordv1.GetRequest{Key: key})
			if err != nil {
				w.env.hist.end(op, StatusFail, err)
				return
			}
			readResult(op, resp)
			w.env.hist.end(op, StatusOK, nil)
		}()
	}
}

// final reads every key once more (linearizably, retrying until it works).
func (w *kvWorkload) final(ctx context.Context) error {
	c := w.clients[0]
	for _, key := range w.keys {
		for {
			if err := w.get(ctx, 0, c, key, "final"); err == nil {
				break
			}
			if ctx.Err() != nil {
				return fmt.Errorf("final read of %s: %w", key, ctx.Err())
			}
		}
	}
	return nil
}

func (w *kvWorkload) check(ops []*Op, cc checkConfig) workloadResult {
	return checkRegisters("kv", ops, cc)
}
