package testcluster_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	coordv1 "coord/api/coord/v1"
	"coord/internal/testcluster"
)

// put writes through m, retrying while the cluster is between leaders (a
// plain put is idempotent, so a retry after an unknown outcome is harmless).
func put(t *testing.T, c *testcluster.Cluster, m *testcluster.Member, key, value string) *coordv1.PutResponse {
	t.Helper()
	var resp *coordv1.PutResponse
	var err error
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err = c.KV(m).Put(c.Ctx(5*time.Second), &coordv1.PutRequest{Key: key, Value: []byte(value)})
		if err == nil || status.Code(err) != codes.Unavailable || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("put %s via %s: %v", key, m.ID, err)
	}
	return resp
}

func mustGet(t *testing.T, c *testcluster.Cluster, m *testcluster.Member, key string, consistency coordv1.ReadConsistency) string {
	t.Helper()
	var resp *coordv1.GetResponse
	var err error
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err = c.KV(m).Get(c.Ctx(5*time.Second), &coordv1.GetRequest{Key: key, Consistency: consistency})
		if err == nil || status.Code(err) != codes.Unavailable || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("get %s via %s: %v", key, m.ID, err)
	}
	if !resp.Found {
		t.Fatalf("get %s via %s: not found", key, m.ID)
	}
	return string(resp.Kv.Value)
}

func TestFailoverKeepsCommittedState(t *testing.T) {
	for _, size := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d nodes", size), func(t *testing.T) {
			c := testcluster.New(t, size, testcluster.Options{})
			for round := 0; round < size/2+1; round++ {
				leader := c.Leader()
				for i := 0; i < 20; i++ {
					put(t, c, leader, fmt.Sprintf("r%d-k%d", round, i), fmt.Sprintf("v%d", i))
				}
				leader.Kill() // a majority survives: at most size/2 nodes are down at once
				next := c.Leader()
				if next == leader {
					t.Fatal("killed leader still leads")
				}
				for r := 0; r <= round; r++ {
					for i := 0; i < 20; i++ {
						// Writes through a follower are forwarded; reads through
						// a follower are linearizable via the leader.
						via := c.Followers(next)[0]
						if got := mustGet(t, c, via, fmt.Sprintf("r%d-k%d", r, i), 0); got != fmt.Sprintf("v%d", i) {
							t.Fatalf("round %d key %d = %q after failover", r, i, got)
						}
					}
				}
				leader.Restart()
			}
			c.WaitConverged(10 * time.Second)
		})
	}
}

func reason(err error) string {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.Reason
		}
	}
	return ""
}

func TestPartitionedOldLeaderCannotCommit(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	old := c.Leader()
	put(t, c, old, "k", "before")
	old.Isolate()

	// The isolated leader cannot commit: the write fails within its deadline.
	_, err := c.KV(old).Put(c.Ctx(time.Second), &coordv1.PutRequest{Key: "k", Value: []byte("lost")})
	if err == nil {
		t.Fatal("isolated old leader acknowledged a write")
	}
	if code := status.Code(err); code != codes.Unavailable && code != codes.DeadlineExceeded {
		t.Fatalf("isolated write failed with %v, want Unavailable or DeadlineExceeded", err)
	}
	// Nor can it serve a linearizable read.
	if _, err := c.KV(old).Get(c.Ctx(time.Second), &coordv1.GetRequest{Key: "k"}); err == nil {
		t.Fatal("isolated old leader served a linearizable read")
	}
	// A stale read is still served from its local state.
	if got := mustGet(t, c, old, "k", coordv1.ReadConsistency_READ_CONSISTENCY_STALE); got != "before" {
		t.Fatalf("stale read on the isolated node = %q", got)
	}

	// The majority elects a new leader and commits.
	var next *testcluster.Member
	c.Eventually(10*time.Second, "a new leader in the majority", func() bool {
		for _, m := range c.Followers(old) {
			if n := m.Node(); n != nil && n.IsLeader() {
				if ok, _ := n.Ready(); ok {
					next = m
					return true
				}
			}
		}
		return false
	})
	put(t, c, next, "k", "after")

	c.Heal()
	c.Leader()
	c.WaitConverged(10 * time.Second)
	for _, m := range c.Members {
		if got := mustGet(t, c, m, "k", coordv1.ReadConsistency_READ_CONSISTENCY_STALE); got != "after" {
			t.Fatalf("%s holds %q after healing; the isolated write must not survive", m.ID, got)
		}
	}
}

func TestFollowerAnswersNotLeaderWhenLeaderUnknown(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	leader := c.Leader()
	f := c.Followers(leader)[0]
	f.Isolate()
	// Once the isolated follower has lost the leader, it cannot forward.
	c.Eventually(10*time.Second, "the isolated follower to lose its leader", func() bool {
		id, _ := f.Node().Leader()
		return id == ""
	})
	_, err := c.KV(f).Put(c.Ctx(time.Second), &coordv1.PutRequest{Key: "k", Value: []byte("v")})
	if status.Code(err) != codes.Unavailable || reason(err) != coordv1.ReasonNoLeader {
		t.Fatalf("write to a leaderless node: %v (reason %q), want Unavailable NO_LEADER", err, reason(err))
	}
}

func TestRestartedNodeCatchesUpFromLog(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	leader := c.Leader()
	f := c.Followers(leader)[0]
	f.Kill()
	for i := 0; i < 100; i++ {
		put(t, c, leader, fmt.Sprintf("k%d", i), "v")
	}
	f.Restart()
	c.WaitConverged(10 * time.Second)
	if got := mustGet(t, c, f, "k99", coordv1.ReadConsistency_READ_CONSISTENCY_STALE); got != "v" {
		t.Fatalf("restarted node has k99 = %q", got)
	}
}

func TestRestartedNodeCatchesUpBySnapshotInstall(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{SnapshotThreshold: 50, TrailingLogs: 10})
	leader := c.Leader()
	f := c.Followers(leader)[0]
	f.Kill()
	for i := 0; i < 400; i++ {
		put(t, c, leader, fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i))
	}
	// Wait until the leader has compacted past what the follower has.
	fApplied := uint64(0)
	c.Eventually(15*time.Second, "the leader to compact its log", func() bool {
		st := leader.Node().Status()
		return st.LastSnapshotIndex > 300 && st.LastSnapshotIndex > fApplied+10
	})
	f.Restart()
	c.WaitConverged(15 * time.Second)
	if st := f.Node().Status(); st.LastSnapshotIndex == 0 {
		t.Fatal("the follower caught up without installing a snapshot")
	}
	for _, i := range []int{0, 199, 399} {
		if got := mustGet(t, c, f, fmt.Sprintf("k%d", i), coordv1.ReadConsistency_READ_CONSISTENCY_STALE); got != fmt.Sprintf("v%d", i) {
			t.Fatalf("k%d = %q on the restarted follower", i, got)
		}
	}
}

func TestWholeClusterRestartKeepsState(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{SnapshotThreshold: 30, TrailingLogs: 5})
	leader := c.Leader()
	for i := 0; i < 100; i++ {
		put(t, c, leader, fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i))
	}
	for _, m := range c.Members {
		m.Kill()
	}
	for _, m := range c.Members {
		m.Restart()
	}
	leader = c.Leader()
	for i := 0; i < 100; i++ {
		if got := mustGet(t, c, leader, fmt.Sprintf("k%d", i), 0); got != fmt.Sprintf("v%d", i) {
			t.Fatalf("k%d = %q after a full restart", i, got)
		}
	}
	c.WaitConverged(10 * time.Second)
}

func TestLeaderClockSkewNeverMovesTimeBackwards(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	leader := c.Leader()
	leader.SetClockOffset(time.Hour) // a leader with a fast clock
	put(t, c, leader, "a", "1")
	high := leader.Node().FSM().Now()
	leader.Kill()
	next := c.Leader()
	put(t, c, next, "b", "2")
	if now := next.Node().FSM().Now(); now < high {
		t.Fatalf("state-machine time went back from %d to %d", high, now)
	}
}

func TestOversizedAndInvalidRequestsAreRefused(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	leader := c.Leader()
	before := leader.Node().FSM().AppliedIndex()
	cases := map[string]*coordv1.PutRequest{
		"empty key":    {Key: "", Value: []byte("v")},
		"space in key": {Key: "a b", Value: []byte("v")},
		"huge value":   {Key: "k", Value: make([]byte, 1<<20)},
		"long key":     {Key: string(make([]byte, 600)), Value: nil},
	}
	for name, req := range cases {
		_, err := c.KV(leader).Put(c.Ctx(time.Second), req)
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
	}
	if after := leader.Node().FSM().AppliedIndex(); after != before {
		t.Fatalf("invalid requests changed the applied index from %d to %d", before, after)
	}
	if errors.Is(nil, nil) != true {
		t.Fatal("unreachable")
	}
}
