package client_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	coordv1 "coord/api/coord/v1"
	"coord/client"
	"coord/internal/testcluster"
)

// collector gathers what a subscription delivers.
type collector struct {
	mu          sync.Mutex
	keys        []uint64 // versions (stream) or positions (all) of events
	checkpoints []uint64
	err         error
}

func (col *collector) run(seq func(func(*coordv1.SubscribeResponse, error) bool), byVersion bool) {
	for m, err := range seq {
		col.mu.Lock()
		switch {
		case err != nil:
			col.err = err
		case m.GetEvent() != nil && byVersion:
			col.keys = append(col.keys, m.GetEvent().Version)
		case m.GetEvent() != nil:
			col.keys = append(col.keys, m.GetEvent().Position)
		default:
			col.checkpoints = append(col.checkpoints, m.GetCheckpoint().ResumeFrom)
		}
		col.mu.Unlock()
	}
}

func (col *collector) snapshot() ([]uint64, []uint64, error) {
	col.mu.Lock()
	defer col.mu.Unlock()
	return slices.Clone(col.keys), slices.Clone(col.checkpoints), col.err
}

// TestEventLogSubscriptionsResumeAcrossFailover follows the log with three
// subscriptions (all streams, one stream, a filtered one) while a writer
// appends and first the subscriptions' node, then the leader, is killed and
// restarted. Each must deliver exactly the events it selects, in order,
// without a gap or a repeat, and the filtered one must checkpoint past the
// events it filters out.
func TestEventLogSubscriptionsResumeAcrossFailover(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	writer, reader := newClient(t, c), newClient(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var all, one, filtered collector
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); all.run(reader.SubscribeAll(ctx, 0, client.Filter{}), false) }()
	go func() { defer wg.Done(); one.run(reader.Subscribe(ctx, "s0", 0), true) }()
	go func() {
		defer wg.Done()
		filtered.run(reader.SubscribeAll(ctx, 0, client.Filter{StreamPrefix: "s1"}, client.CheckpointInterval(20*time.Millisecond)), false)
	}()

	const total = 300
	var mu sync.Mutex
	streamOf := map[uint64]string{}
	for i := range total {
		switch i {
		case total / 3:
			restart(c, c.Members[0]) // the node the subscriptions started on
		case 2 * total / 3:
			restart(c, c.Leader())
		}
		stream := fmt.Sprintf("s%d", i%3)
		resp := mustAppend(t, writer, stream, []client.Event{ev(fmt.Sprint(i), "")})
		mu.Lock()
		streamOf[resp.Positions[0]] = stream
		mu.Unlock()
	}
	var want1, wantFiltered []uint64
	for p := uint64(0); p < total; p++ {
		switch streamOf[p] {
		case "s0":
			want1 = append(want1, uint64(len(want1)))
		case "s1":
			wantFiltered = append(wantFiltered, p)
		}
	}
	waitFor(t, &all, seq(0, total), 0)
	waitFor(t, &one, want1, 0)
	waitFor(t, &filtered, wantFiltered, total)
	cancel()
	wg.Wait()
}

// restart kills m and restarts it once a new leader is elected.
func restart(c *testcluster.Cluster, m *testcluster.Member) {
	m.Kill()
	c.Leader()
	m.Restart()
}

// waitFor waits until col has delivered exactly want (and, when checkpoint
// is non-zero, a checkpoint at or past it), failing on a gap or repeat.
func waitFor(t *testing.T, col *collector, want []uint64, checkpoint uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, cps, err := col.snapshot()
		if err != nil {
			t.Fatalf("subscription failed: %v", err)
		}
		if len(got) > len(want) || !slices.Equal(got, want[:len(got)]) {
			t.Fatalf("subscription delivered %v; want a prefix of %v", got, want)
		}
		reached := checkpoint == 0 || len(cps) > 0 && cps[len(cps)-1] >= checkpoint
		if len(got) == len(want) && reached {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscription delivered %d of %d events; checkpoints %v", len(got), len(want), cps)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func seq(from, to uint64) []uint64 {
	var out []uint64
	for v := from; v < to; v++ {
		out = append(out, v)
	}
	return out
}

// TestEventLogCursorsSurviveRestartAndSnapshotInstall commits cursors while
// a follower is down long enough for the leader to compact its log, so the
// follower catches up by installing a snapshot; the cursors must be there,
// and after a restart of the whole cluster.
func TestEventLogCursorsSurviveRestartAndSnapshotInstall(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{SnapshotThreshold: 50, TrailingLogs: 10})
	cli := newClient(t, c)
	ctx := ctxFor(t, 60*time.Second)
	if _, err := cli.CommitCursor(ctx, "early", 7); err != nil {
		t.Fatal(err)
	}
	leader := c.Leader()
	f := c.Followers(leader)[0]
	f.Kill()
	for i := range 300 {
		if _, err := cli.CommitCursor(ctx, "reader", uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	c.Eventually(15*time.Second, "the leader to compact its log", func() bool {
		return leader.Node().Status().LastSnapshotIndex > 250
	})
	f.Restart()
	c.WaitConverged(15 * time.Second)
	if f.Node().Status().LastSnapshotIndex == 0 {
		t.Fatal("the follower caught up without installing a snapshot")
	}
	local, err := client.New(ctx, client.Config{Endpoints: []string{f.GRPCAddr}})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	checkCursor(t, local, "early", 7, client.Stale())
	checkCursor(t, local, "reader", 299, client.Stale())

	for _, m := range c.Members {
		m.Kill()
	}
	for _, m := range c.Members {
		m.Restart()
	}
	c.Leader()
	checkCursor(t, cli, "early", 7)
	checkCursor(t, cli, "reader", 299)
}

func checkCursor(t *testing.T, cli *client.Client, name string, want uint64, opts ...client.ReadOption) {
	t.Helper()
	cur, found, err := cli.Cursor(ctxFor(t, 20*time.Second), name, opts...)
	if err != nil || !found || cur.Position != want {
		t.Fatalf("cursor %s: %v found=%v (%v); want position %d", name, cur, found, err, want)
	}
}

// TestEventLogSubscriptionLeavesAPartitionedNode subscribes at a follower
// that is then cut off from its peers: its gRPC server still answers, but it
// receives no new entries. The node ends the subscription once it has had no
// leader for a while, and the client resumes at another node without a gap.
func TestEventLogSubscriptionLeavesAPartitionedNode(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	cut := c.Followers(c.Leader())[0]
	eps := []string{cut.GRPCAddr}
	for _, m := range c.Members {
		if m != cut {
			eps = append(eps, m.GRPCAddr)
		}
	}
	reader, err := client.New(ctxFor(t, 10*time.Second), client.Config{Endpoints: eps})
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	writer := newClient(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	var col collector
	done := make(chan struct{})
	go func() { defer close(done); col.run(reader.SubscribeAll(ctx, 0, client.Filter{}), false) }()
	mustAppend(t, writer, "s", []client.Event{ev("e0", "")})
	waitFor(t, &col, seq(0, 1), 0)
	cut.Isolate()
	for i := 1; i <= 5; i++ {
		mustAppend(t, writer, "s", []client.Event{ev(fmt.Sprintf("e%d", i), "")})
	}
	waitFor(t, &col, seq(0, 6), 0)
	cancel()
	<-done
	c.Heal()
}
