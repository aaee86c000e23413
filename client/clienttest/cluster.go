// Package clienttest runs fake coord clusters in process, for tests of
// package client and of code built on it.
//
// A fake Cluster is N gRPC servers on 127.0.0.1 that share one in-memory
// state: a key-value map, a member list and a leader. The leader serves
// writes and linearizable reads; followers answer them with NOT_LEADER
// naming the leader (coordd would forward them instead), or NO_LEADER when
// there is none. Stale reads and cluster reports are served by any node.
// Writes that carry a request id (coord-client-id, coord-seq) are applied
// at most once: a retry returns the first result, as the real state machine
// does.
//
// Every request is recorded as a Call, and a per-node Hook can replace or
// fail any request, so tests can script failures precisely.
package clienttest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	coordv1 "coord/api/coord/v1"
)

// ClusterID is the cluster id every fake cluster reports.
const ClusterID = "fake-cluster"

// Cluster is a fake coord cluster. Its methods are safe for concurrent use.
type Cluster struct {
	// Nodes are the cluster's nodes, with ids n1, n2, ...
	Nodes []*Node

	mu      sync.Mutex
	leader  string
	rev     uint64
	kv      map[string]*coordv1.KeyValue
	dedup   map[requestID]proto.Message
	applied int
	extra   []*coordv1.Member // voters added through AddVoter
	removed map[string]bool
	calls   []Call
}

type requestID struct{ client, seq uint64 }

// Start starts a cluster of n nodes with n1 as leader. The nodes stop when
// the test ends. opts are passed to every node's grpc.NewServer.
func Start(t testing.TB, n int, opts ...grpc.ServerOption) *Cluster {
	t.Helper()
	c := &Cluster{
		leader:  "n1",
		kv:      make(map[string]*coordv1.KeyValue),
		dedup:   make(map[requestID]proto.Message),
		removed: make(map[string]bool),
	}
	for i := range n {
		node := &Node{ID: fmt.Sprintf("n%d", i+1), c: c, opts: opts}
		node.RaftAddr = fmt.Sprintf("127.0.0.1:%d", 17001+i)
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			c.Stop()
			t.Fatalf("clienttest: listen: %v", err)
		}
		node.Addr = lis.Addr().String()
		node.serve(lis)
		c.Nodes = append(c.Nodes, node)
	}
	t.Cleanup(c.Stop)
	return c
}

// Stop stops every node.
func (c *Cluster) Stop() {
	for _, n := range c.Nodes {
		n.Stop()
	}
}

// Addrs returns the nodes' gRPC addresses in node order.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr
	}
	return addrs
}

// Node returns the node with the given id, or nil.
func (c *Cluster) Node(id string) *Node {
	for _, n := range c.Nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// SetLeader makes node id the leader; "" leaves the cluster without one.
func (c *Cluster) SetLeader(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leader = id
}

// Leader returns the leader's id ("" when none).
func (c *Cluster) Leader() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leader
}

// Calls returns the recorded calls of the given short method name (e.g.
// "Put"), or every call for "", in arrival order.
func (c *Cluster) Calls(method string) []Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Call
	for _, call := range c.calls {
		if method == "" || call.Method == method {
			out = append(out, call)
		}
	}
	return out
}

// Applied returns how many writes the cluster has applied; deduplicated
// retries do not count.
func (c *Cluster) Applied() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.applied
}

// Value returns the stored value of key and whether it is present.
func (c *Cluster) Value(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	kv := c.lookup(key)
	if kv == nil {
		return nil, false
	}
	return slices.Clone(kv.GetValue()), true
}

// MembersResponse returns the ListMembers answer naming leaderID as leader,
// for hooks that report a different view than the cluster's.
func (c *Cluster) MembersResponse(leaderID string) *coordv1.ListMembersResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &coordv1.ListMembersResponse{ClusterId: ClusterID, LeaderId: leaderID, Members: c.membersLocked(leaderID)}
}

func (c *Cluster) record(call Call) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, call)
}

// membersLocked lists the current members ordered by id.
func (c *Cluster) membersLocked(leaderID string) []*coordv1.Member {
	var ms []*coordv1.Member
	for _, n := range c.Nodes {
		if c.removed[n.ID] {
			continue
		}
		ms = append(ms, &coordv1.Member{
			Id: n.ID, RaftAddress: n.RaftAddr, GrpcAddress: n.Addr,
			HttpAddress: "127.0.0.1:0", Voter: true, Leader: n.ID == leaderID,
		})
	}
	for _, m := range c.extra {
		ms = append(ms, proto.Clone(m).(*coordv1.Member))
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].GetId() < ms[j].GetId() })
	return ms
}

// lookup returns key's record unless it is absent or expired.
func (c *Cluster) lookup(key string) *coordv1.KeyValue {
	kv := c.kv[key]
	if kv == nil {
		return nil
	}
	if kv.GetExpireTime() != nil && !time.Now().Before(kv.GetExpireTime().AsTime()) {
		delete(c.kv, key)
		return nil
	}
	return kv
}

// applyOnce runs apply for a write unless the request id was applied
// before, in which case it returns the stored result.
func (c *Cluster) applyOnce(ctx context.Context, apply func() proto.Message) proto.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	call := callFrom(ctx)
	id := requestID{call.ClientID, call.Seq}
	if call.ClientID != 0 {
		if prev, ok := c.dedup[id]; ok {
			return proto.Clone(prev)
		}
	}
	c.rev++
	c.applied++
	resp := apply()
	if call.ClientID != 0 {
		c.dedup[id] = proto.Clone(resp)
	}
	return resp
}

// stateHash digests the key-value state.
func (c *Cluster) stateHash() *coordv1.GetStateHashResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, 0, len(c.kv))
	for k := range c.kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(c.kv[k])
		h.Write(b)
	}
	return &coordv1.GetStateHashResponse{AppliedIndex: c.rev, Sha256: hex.EncodeToString(h.Sum(nil))}
}
