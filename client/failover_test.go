package client_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"coord/client"
	"coord/internal/testcluster"
)

func newClient(t *testing.T, c *testcluster.Cluster) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli, err := client.New(ctx, client.Config{Endpoints: c.Endpoints(), AttemptTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// TestFailoverDuringWritesLosesNoneAndDuplicatesNone writes sequentially to
// one key per worker while the leader is killed and restarted. Every put
// must be acknowledged, and each key's version (writes applied since
// creation) must equal the number of puts: a lost write leaves it lower, a
// write applied twice makes it higher.
func TestFailoverDuringWritesLosesNoneAndDuplicatesNone(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	cli := newClient(t, c)
	const workers, puts = 8, 40
	var done atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i <= puts; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				_, err := cli.Put(ctx, fmt.Sprintf("w%d", w), []byte(fmt.Sprint(i)))
				cancel()
				if err != nil {
					errs <- fmt.Errorf("worker %d put %d: %w", w, i, err)
					return
				}
				done.Add(1)
			}
		}()
	}
	// Kill the leader twice while the writes run.
	for round := 0; round < 2; round++ {
		target := done.Load() + workers*puts/4
		c.Eventually(30*time.Second, "writes to progress", func() bool { return done.Load() >= target })
		leader := c.Leader()
		leader.Kill()
		c.Leader()
		leader.Restart()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for w := 0; w < workers; w++ {
		resp, err := cli.Get(ctx, fmt.Sprintf("w%d", w))
		if err != nil || !resp.Found {
			t.Fatalf("get w%d: %v %v", w, resp, err)
		}
		if resp.Kv.Version != puts || string(resp.Kv.Value) != fmt.Sprint(puts) {
			t.Fatalf("w%d: version %d value %q; want version %d value %q", w, resp.Kv.Version, resp.Kv.Value, puts, fmt.Sprint(puts))
		}
	}
	c.WaitConverged(15 * time.Second)
}
