package testcluster_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	coordv1 "coord/api/coord/v1"
	"coord/internal/testcluster"
	"coord/node"
)

func TestJoinAddsAVoterThatCatchesUp(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	leader := c.Leader()
	for i := 0; i < 20; i++ {
		put(t, c, leader, "before-join", "v")
	}
	m := c.AddMember()
	c.WaitConverged(10 * time.Second)
	members, err := leader.Node().Members()
	if err != nil || len(members) != 4 {
		t.Fatalf("members after join: %v %v", members, err)
	}
	if got := mustGet(t, c, m, "before-join", coordv1.ReadConsistency_READ_CONSISTENCY_STALE); got != "v" {
		t.Fatalf("joined node has %q", got)
	}
	// The new node records the cluster it joined.
	c.Eventually(5*time.Second, "node.json to record the cluster", func() bool {
		b, err := os.ReadFile(filepath.Join(m.Dir, "node.json"))
		return err == nil && strings.Contains(string(b), leader.Node().ClusterID())
	})
	if err := m.Node().CheckJoin("another-cluster"); err == nil {
		t.Fatal("a node of one cluster agreed to join another")
	}
}

func TestDataDirOfAnotherNodeIsRefused(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	m := c.Members[0]
	m.Kill()
	_, err := node.New(node.Config{ID: "someone-else", DataDir: m.Dir, RaftBind: "127.0.0.1:0", RaftAdvertise: "127.0.0.1:1"})
	if err == nil || !strings.Contains(err.Error(), "belongs to node") {
		t.Fatalf("starting another node id on n1's data dir: %v", err)
	}
}

func TestDataDirOfAnotherClusterIsRefused(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	leader := c.Leader()
	c.Eventually(5*time.Second, "the cluster id to be recorded", func() bool {
		b, err := os.ReadFile(filepath.Join(leader.Dir, "node.json"))
		return err == nil && strings.Contains(string(b), "cluster_id")
	})
	leader.Kill()
	path := filepath.Join(leader.Dir, "node.json")
	b, _ := os.ReadFile(path)
	var ident map[string]string
	if err := json.Unmarshal(b, &ident); err != nil {
		t.Fatal(err)
	}
	ident["cluster_id"] = "0000000000000000000000000000dead"
	b, _ = json.Marshal(ident)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := node.New(node.Config{ID: leader.ID, DataDir: leader.Dir, RaftBind: "127.0.0.1:0", RaftAdvertise: "127.0.0.1:1"})
	if err == nil || !strings.Contains(err.Error(), "cluster") {
		t.Fatalf("starting on a data dir of another cluster: %v", err)
	}
}

func TestWritesWithoutQuorumFailWithinTheDeadline(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	leader := c.Leader()
	for _, f := range c.Followers(leader) {
		f.Kill()
	}
	for _, via := range []*testcluster.Member{leader} {
		start := time.Now()
		_, err := c.KV(via).Put(c.Ctx(2*time.Second), &coordv1.PutRequest{Key: "k", Value: []byte("v")})
		took := time.Since(start)
		if code := status.Code(err); code != codes.Unavailable && code != codes.DeadlineExceeded {
			t.Fatalf("write without quorum: %v", err)
		}
		if took > 3*time.Second {
			t.Fatalf("write without quorum took %v with a 2s deadline", took)
		}
	}
	// A stale read is still served.
	if _, err := c.KV(leader).Get(c.Ctx(2*time.Second), &coordv1.GetRequest{Key: "k", Consistency: coordv1.ReadConsistency_READ_CONSISTENCY_STALE}); err != nil {
		t.Fatalf("stale read without quorum: %v", err)
	}
}

func TestGracefulCloseHandsLeadershipOver(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	leader := c.Leader()
	before := leader.Node().Status().Term
	if err := leader.Node().Close(); err != nil {
		t.Fatal(err)
	}
	leader.Kill() // tears down the servers; the node is already closed
	next := c.Leader()
	if st := next.Node().Status(); st.Term != before+1 {
		t.Fatalf("term went from %d to %d; a transfer takes exactly one election", before, st.Term)
	}
}

func TestSnapshotOnRequest(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	leader := c.Leader()
	put(t, c, leader, "k", "v")
	resp, err := coordv1.NewClusterServiceClient(c.Conn(leader)).TakeSnapshot(c.Ctx(5*time.Second), &coordv1.TakeSnapshotRequest{})
	if err != nil || resp.Index == 0 || resp.SizeBytes == 0 {
		t.Fatalf("snapshot: %v %v", resp, err)
	}
	if st := leader.Node().Status(); st.LastSnapshotIndex != resp.Index {
		t.Fatalf("last snapshot index %d, want %d", st.LastSnapshotIndex, resp.Index)
	}
}

func TestClusterStatusReportsEveryMember(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	leader := c.Leader()
	f := c.Followers(leader)[0]
	f.Kill()
	resp, err := coordv1.NewClusterServiceClient(c.Conn(leader)).GetStatus(c.Ctx(10*time.Second), &coordv1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]coordv1.Role{}
	for _, m := range resp.Members {
		roles[m.Id] = m.Role
	}
	if len(roles) != 3 || roles[leader.ID] != coordv1.Role_ROLE_LEADER || roles[f.ID] != coordv1.Role_ROLE_UNREACHABLE || resp.LeaderId != leader.ID || resp.ClusterId == "" {
		t.Fatalf("status: %v", resp)
	}
}

// TestRestartedFollowerIsNotReadyAtItsOldIndex: a follower restarted after
// missing writes learns of the leader from a heartbeat before it learns the
// leader's commit index; it must not report ready before it has applied
// entries it missed.
func TestRestartedFollowerIsNotReadyAtItsOldIndex(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	leader := c.Leader()
	f := c.Followers(leader)[0]
	c.WaitConverged(10 * time.Second)
	old := f.Node().FSM().AppliedIndex()
	f.Kill()
	for i := 0; i < 50; i++ {
		put(t, c, leader, fmt.Sprintf("k%d", i), "v")
	}
	f.Restart()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if ok, _ := f.Node().Ready(); ok {
			if applied := f.Node().FSM().AppliedIndex(); applied <= old {
				t.Fatalf("%s reported ready at applied index %d, where it stopped; the leader had applied 50 more entries", f.ID, applied)
			}
			return
		}
		if time.Now().After(deadline) {
			_, why := f.Node().Ready()
			t.Fatalf("%s not ready after 15s: %s", f.ID, why)
		}
		time.Sleep(time.Millisecond)
	}
}
