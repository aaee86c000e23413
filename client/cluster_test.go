package client

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	coordv1 "coord/api/coord/v1"
	"coord/client/clienttest"
)

func TestStatusAndMembers(t *testing.T) {
	fc := clienttest.Start(t, 3)
	c := newTestClient(t, fc.Addrs())
	st, err := c.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.GetMembers()) != 3 || st.GetLeaderId() != "n1" || st.GetMembers()[0].GetRole() != coordv1.Role_ROLE_LEADER {
		t.Fatalf("Status = %v", st)
	}
	ms, err := c.Members(t.Context())
	if err != nil || len(ms.GetMembers()) != 3 {
		t.Fatalf("Members = %v, %v", ms, err)
	}
	if got := fc.Calls("GetStatus"); got[0].Node != "n1" {
		t.Fatalf("GetStatus served by %s, want the leader", got[0].Node)
	}
}

func TestNodeStatusAndStateHash(t *testing.T) {
	fc := clienttest.Start(t, 3)
	c := newTestClient(t, fc.Addrs())
	if _, err := c.Put(t.Context(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	ns, err := c.NodeStatus(t.Context(), fc.Nodes[2].Addr)
	if err != nil || ns.GetId() != "n3" {
		t.Fatalf("NodeStatus(n3) = %v, %v", ns, err)
	}
	ns, err = c.NodeStatus(t.Context(), "")
	if err != nil || ns.GetId() != "n1" {
		t.Fatalf("NodeStatus(leader) = %v, %v", ns, err)
	}
	var hashes []string
	for _, addr := range fc.Addrs() {
		h, err := c.StateHash(t.Context(), addr)
		if err != nil || h.GetAppliedIndex() != 1 {
			t.Fatalf("StateHash(%s) = %v, %v", addr, h, err)
		}
		hashes = append(hashes, h.GetSha256())
	}
	if len(slices.Compact(slices.Clone(hashes))) != 1 {
		t.Fatalf("hashes differ: %v", hashes)
	}
	var nodes []string
	for _, call := range fc.Calls("GetStateHash") {
		nodes = append(nodes, call.Node)
	}
	if !slices.Equal(nodes, []string{"n1", "n2", "n3"}) {
		t.Fatalf("StateHash served by %v", nodes)
	}
}

func TestMembershipChangesAreWrites(t *testing.T) {
	fc := clienttest.Start(t, 3)
	c := newTestClient(t, []string{fc.Nodes[2].Addr})
	add, err := c.AddVoter(t.Context(), "n4", "127.0.0.1:17004")
	if err != nil || len(add.GetMembers()) != 4 {
		t.Fatalf("AddVoter = %v, %v", add, err)
	}
	rm, err := c.RemoveMember(t.Context(), "n3")
	if err != nil || len(rm.GetMembers()) != 3 {
		t.Fatalf("RemoveMember = %v, %v", rm, err)
	}
	if _, err := c.RemoveMember(t.Context(), "n9"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("RemoveMember(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := c.AddVoter(t.Context(), "", "x:1"); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("AddVoter without id = %v, want ErrInvalidArgument", err)
	}
	for _, call := range append(fc.Calls("AddVoter"), fc.Calls("RemoveMember")...) {
		if call.Node != "n1" || call.ClientID != c.ClientID() || call.Seq == 0 {
			t.Fatalf("membership change %+v: want it on the leader with a request id", call)
		}
	}
}

func TestTransferLeadershipFollowsNewLeader(t *testing.T) {
	fc := clienttest.Start(t, 3)
	c := newTestClient(t, fc.Addrs())
	id, err := c.TransferLeadership(t.Context(), "n2")
	if err != nil || id != "n2" {
		t.Fatalf("TransferLeadership = %q, %v", id, err)
	}
	if gotID, addr := c.Leader(); gotID != "n2" || addr != fc.Nodes[1].Addr {
		t.Fatalf("Leader() = %s %s, want n2 %s", gotID, addr, fc.Nodes[1].Addr)
	}
	if _, err := c.Put(t.Context(), "k", nil); err != nil {
		t.Fatal(err)
	}
	if calls := fc.Calls("Put"); len(calls) != 1 || calls[0].Node != "n2" {
		t.Fatalf("Put calls %+v, want one straight to n2", calls)
	}
}

func TestTakeSnapshotTargets(t *testing.T) {
	fc := clienttest.Start(t, 3)
	c := newTestClient(t, fc.Addrs())
	if _, err := c.TakeSnapshot(t.Context(), ""); err != nil {
		t.Fatal(err)
	}
	snap, err := c.TakeSnapshot(t.Context(), "n3")
	if err != nil || snap.GetId() == "" {
		t.Fatalf("TakeSnapshot(n3) = %v, %v", snap, err)
	}
	if _, err := c.TakeSnapshot(t.Context(), "n9"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("TakeSnapshot(n9) = %v, want ErrNotFound", err)
	}
	calls := fc.Calls("TakeSnapshot")
	if len(calls) != 2 || calls[0].Node != "n1" || calls[1].Node != "n3" {
		t.Fatalf("TakeSnapshot calls %+v, want n1 then n3", calls)
	}
}

// TestCallToADownNodeFailsFast: a call to one given node that is down
// reports Unavailable after a few attempts instead of retrying until the
// caller's deadline.
func TestCallToADownNodeFailsFast(t *testing.T) {
	fc := clienttest.Start(t, 3)
	c := newTestClient(t, fc.Addrs())
	down := fc.Nodes[2].Addr
	fc.Nodes[2].Stop()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, err := c.StateHash(ctx, down)
	if !errors.Is(err, ErrUnavailable) || ctx.Err() != nil {
		t.Fatalf("StateHash of a stopped node: %v (context: %v); want Unavailable before the deadline", err, ctx.Err())
	}
	if _, err := c.StateHash(ctx, fc.Nodes[0].Addr); err != nil {
		t.Fatalf("StateHash of a running node: %v", err)
	}
}
