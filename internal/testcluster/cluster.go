// Package testcluster runs an in-process coord cluster for tests: N full
// nodes (Raft on an in-memory transport, state on disk in temporary
// directories, gRPC servers on loopback ports) with faults a test can inject:
// crash and restart, network isolation, and per-node clock skew.
package testcluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	coordv1 "coord/api/coord/v1"
	"coord/eventlog"
	"coord/internal/sm"
	"coord/kv"
	"coord/locks"
	"coord/node"
	"coord/server"
)

// Options tune a test cluster.
type Options struct {
	// SnapshotThreshold and TrailingLogs control log compaction (defaults
	// keep compaction out of the way).
	SnapshotThreshold, TrailingLogs uint64
	// Machines served (default: kv).
	Machines []sm.Machine
	// Verbose sends node logs to stderr.
	Verbose bool
}

// Cluster is a running in-process cluster.
type Cluster struct {
	t       testing.TB
	opts    Options
	peers   []node.Peer
	Members []*Member

	mu sync.Mutex // guards transport wiring
}

// Member is one node of the cluster and its servers.
type Member struct {
	ID       string
	RaftAddr raft.ServerAddress
	// GRPCAddr stays the same across restarts.
	GRPCAddr string
	Dir      string

	c      *Cluster
	offset atomic.Int64 // clock skew in nanoseconds
	halted atomic.Value // error

	mu      sync.Mutex
	node    *node.Node
	trans   *raft.InmemTransport
	gs      *grpc.Server
	srv     *server.Server
	alive   bool
	cut     bool // isolated from every peer
	stopReg context.CancelFunc
}

// New starts an n-node cluster and waits for a leader. Everything stops at
// test cleanup.
func New(t testing.TB, n int, opts Options) *Cluster {
	t.Helper()
	if opts.SnapshotThreshold == 0 {
		opts.SnapshotThreshold = 1 << 20
	}
	if opts.TrailingLogs == 0 {
		opts.TrailingLogs = 1 << 20
	}
	if opts.Machines == nil {
		opts.Machines = []sm.Machine{kv.Machine{}, locks.Machine{}, eventlog.Machine{}}
	}
	c := &Cluster{t: t, opts: opts}
	base := t.TempDir()
	for i := 1; i <= n; i++ {
		m := &Member{ID: fmt.Sprintf("n%d", i), RaftAddr: raft.ServerAddress(fmt.Sprintf("inmem-n%d", i)), Dir: filepath.Join(base, fmt.Sprintf("n%d", i)), c: c}
		m.GRPCAddr = claimPort(t)
		c.Members = append(c.Members, m)
		c.peers = append(c.peers, node.Peer{ID: m.ID, Address: string(m.RaftAddr)})
	}
	for _, m := range c.Members {
		if err := m.start(true); err != nil {
			t.Fatalf("start %s: %v", m.ID, err)
		}
	}
	t.Cleanup(c.Stop)
	c.Leader()
	return c
}

func (m *Member) start(bootstrap bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.c
	_, trans := raft.NewInmemTransport(m.RaftAddr)
	logOut := io.Discard
	if c.opts.Verbose {
		logOut = os.Stderr
	}
	cfg := node.Config{
		ID: m.ID, DataDir: m.Dir, Transport: trans,
		GRPCAdvertise: m.GRPCAddr, HTTPAdvertise: "",
		Bootstrap: bootstrap, InitialCluster: c.peers,
		HeartbeatTimeout: 400 * time.Millisecond, ElectionTimeout: 400 * time.Millisecond,
		LeaderLeaseTimeout: 200 * time.Millisecond, CommitTimeout: 5 * time.Millisecond,
		SnapshotThreshold: c.opts.SnapshotThreshold, TrailingLogs: c.opts.TrailingLogs,
		SnapshotInterval: 200 * time.Millisecond, TickInterval: 20 * time.Millisecond,
		Machines: c.opts.Machines,
		Clock:    func() time.Time { return time.Now().Add(time.Duration(m.offset.Load())) },
		Logger:   slog.New(slog.NewTextHandler(logOut, nil)).With("node", m.ID), RaftLogOutput: logOut,
		OnHalt: func(err error) { m.halted.Store(err) },
	}
	n, err := node.New(cfg)
	if err != nil {
		return err
	}
	lis, err := listenRetry(m.GRPCAddr)
	if err != nil {
		_ = n.Kill()
		return err
	}
	srv := server.New(n, cfg.Logger, "test")
	gs := grpc.NewServer(grpc.UnaryInterceptor(srv.UnaryInterceptor()))
	srv.Register(gs)
	go func() { _ = gs.Serve(lis) }()
	ctx, cancel := context.WithCancel(context.Background())
	go srv.KeepRegistered(ctx, m.GRPCAddr)
	m.node, m.trans, m.gs, m.srv, m.alive, m.cut, m.stopReg = n, trans, gs, srv, true, false, cancel
	c.wire(m)
	return nil
}

// listenRetry binds addr, retrying briefly while a previous listener on the
// same port is being torn down.
func listenRetry(addr string) (net.Listener, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		lis, err := net.Listen("tcp", addr)
		if err == nil || time.Now().After(deadline) {
			return lis, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wire connects m's transport with every live, non-isolated peer.
func (c *Cluster) wire(m *Member) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.Members {
		if p == m || p.trans == nil || !p.isAlive() || p.cut {
			continue
		}
		m.trans.Connect(p.RaftAddr, p.trans)
		p.trans.Connect(m.RaftAddr, m.trans)
	}
}

func (m *Member) isAlive() bool { return m.alive }

// Node returns the member's node (nil while it is down).
func (m *Member) Node() *node.Node {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.alive {
		return nil
	}
	return m.node
}

// Alive reports whether the member is running.
func (m *Member) Alive() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.alive
}

// Halted returns the error the member's state machine halted on, if any.
func (m *Member) Halted() error {
	if v := m.halted.Load(); v != nil {
		return v.(error)
	}
	return nil
}

// SetClockOffset skews the member's leader clock.
func (m *Member) SetClockOffset(d time.Duration) { m.offset.Store(int64(d)) }

// Kill crashes the member: no leadership transfer, state left on disk.
func (m *Member) Kill() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.alive {
		return
	}
	m.alive = false
	m.c.mu.Lock()
	for _, p := range m.c.Members {
		if p != m && p.trans != nil {
			p.trans.Disconnect(m.RaftAddr)
		}
	}
	m.trans.DisconnectAll()
	m.c.mu.Unlock()
	m.stopReg()
	m.gs.Stop()
	_ = m.srv.Close()
	if err := m.node.Kill(); err != nil {
		m.c.t.Logf("kill %s: %v", m.ID, err)
	}
}

// AddMember starts a new, empty node and adds it to the cluster as a voter
// through the leader, as `coordd --join` does.
func (c *Cluster) AddMember() *Member {
	c.t.Helper()
	leader := c.Leader()
	i := len(c.Members) + 1
	m := &Member{ID: fmt.Sprintf("n%d", i), RaftAddr: raft.ServerAddress(fmt.Sprintf("inmem-n%d", i)), Dir: filepath.Join(c.t.TempDir(), fmt.Sprintf("n%d", i)), c: c}
	m.GRPCAddr = claimPort(c.t)
	c.mu.Lock()
	c.Members = append(c.Members, m)
	c.mu.Unlock()
	if err := m.start(false); err != nil {
		c.t.Fatalf("start %s: %v", m.ID, err)
	}
	ctx := c.Ctx(10 * time.Second)
	if err := leader.Node().AddVoter(ctx, m.ID, string(m.RaftAddr)); err != nil {
		c.t.Fatalf("add voter %s: %v", m.ID, err)
	}
	if err := m.Node().CheckJoin(leader.Node().ClusterID()); err != nil {
		c.t.Fatal(err)
	}
	return m
}

// Restart starts a killed member again from its data directory.
func (m *Member) Restart() {
	m.c.t.Helper()
	if err := m.start(true); err != nil {
		m.c.t.Fatalf("restart %s: %v", m.ID, err)
	}
}

// Isolate cuts every Raft link between the member and its peers. Its gRPC
// server stays reachable, as for a node on the wrong side of a partition.
func (m *Member) Isolate() {
	m.c.mu.Lock()
	defer m.c.mu.Unlock()
	m.cut = true
	if m.trans != nil {
		m.trans.DisconnectAll()
	}
	for _, p := range m.c.Members {
		if p != m && p.trans != nil {
			p.trans.Disconnect(m.RaftAddr)
		}
	}
}

// Heal reconnects every live member with every other.
func (c *Cluster) Heal() {
	c.mu.Lock()
	for _, m := range c.Members {
		m.cut = false
	}
	c.mu.Unlock()
	for _, m := range c.Members {
		if m.Alive() {
			c.wire(m)
		}
	}
}

// Stop shuts every member down.
func (c *Cluster) Stop() {
	for _, m := range c.Members {
		m.Kill()
	}
}

// Endpoints lists every member's gRPC address.
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, m := range c.Members {
		out = append(out, m.GRPCAddr)
	}
	return out
}

// Leader waits (up to 10s) for exactly one ready leader among the live,
// connected members and returns it.
func (c *Cluster) Leader() *Member {
	c.t.Helper()
	var leader *Member
	c.Eventually(10*time.Second, "a single ready leader", func() bool {
		leader = nil
		for _, m := range c.Members {
			n := m.Node()
			if n == nil || m.cut || !n.IsLeader() {
				continue
			}
			if ok, _ := n.Ready(); !ok || leader != nil {
				return false
			}
			leader = m
		}
		return leader != nil && c.registered(leader)
	})
	return leader
}

// registered reports whether every live, connected member is registered in
// the leader's state and knows the leader's gRPC address.
func (c *Cluster) registered(leader *Member) bool {
	meta, err := leader.Node().FSM().Members()
	if err != nil {
		return false
	}
	for _, m := range c.Members {
		n := m.Node()
		if n == nil || m.cut {
			continue
		}
		if mm := meta[m.ID]; mm == nil || mm.GrpcAddress != m.GRPCAddr {
			return false
		}
		if _, addr := n.Leader(); addr != leader.GRPCAddr {
			return false
		}
	}
	return true
}

// Followers returns the live members other than the leader.
func (c *Cluster) Followers(leader *Member) []*Member {
	var out []*Member
	for _, m := range c.Members {
		if m != leader && m.Alive() {
			out = append(out, m)
		}
	}
	return out
}

// Eventually polls cond every 10ms until it holds or timeout passes.
func (c *Cluster) Eventually(timeout time.Duration, what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitConverged waits until every live member has applied the same index and
// holds a byte-identical state, and returns that index.
func (c *Cluster) WaitConverged(timeout time.Duration) uint64 {
	c.t.Helper()
	var idx uint64
	c.Eventually(timeout, "all live members to converge", func() bool {
		var first *[32]byte
		for _, m := range c.Members {
			n := m.Node()
			if n == nil {
				continue
			}
			i, h, err := n.StateHash()
			if err != nil {
				return false
			}
			if first == nil {
				first, idx = &h, i
			} else if *first != h || i != idx {
				return false
			}
		}
		return first != nil
	})
	return idx
}

// Conn dials a member's gRPC address.
func (c *Cluster) Conn(m *Member) *grpc.ClientConn {
	c.t.Helper()
	conn, err := grpc.NewClient(m.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// Locks returns a LockService client for a member.
func (c *Cluster) Locks(m *Member) coordv1.LockServiceClient {
	return coordv1.NewLockServiceClient(c.Conn(m))
}

// KV returns a KV client for a member.
func (c *Cluster) KV(m *Member) coordv1.KVServiceClient { return coordv1.NewKVServiceClient(c.Conn(m)) }

// Ctx returns a context with a timeout that ends with the test.
func (c *Cluster) Ctx(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	c.t.Cleanup(cancel)
	return ctx
}
