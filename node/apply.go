package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"

	"coord/fsm"
	"coord/internal/cmdpb"
	"coord/internal/sm"
)

// Proposal is a command to replicate.
type Proposal struct {
	// ClientID, Seq and AckedBelow identify the request for deduplication
	// (ClientID 0: no deduplication).
	ClientID, Seq, AckedBelow uint64
	// Machine and Op select the operation; Body is its encoding.
	Machine, Op uint32
	Body        []byte
	// Fences must hold for the command to be applied.
	Fences []*cmdpb.Fence
}

// Applied is the outcome of an applied command.
type Applied struct {
	// Result is the machine's result; a rejection is a result, not an error.
	Result *cmdpb.Result
	// Index is the log index of the entry.
	Index uint64
	// Now is the state-machine time the entry was applied at.
	Now time.Time
}

// Apply replicates a command and returns its result once applied here. It
// must be called on the leader; elsewhere it returns a *NotLeaderError.
func (n *Node) Apply(ctx context.Context, p Proposal) (*Applied, error) {
	if n.raft.State() == raft.Leader && !n.leaderReady() {
		return nil, fmt.Errorf("%w: the new leader is not ready yet", ErrNoLeader)
	}
	return n.applyInternal(ctx, p)
}

// applyInternal is Apply without the readiness check, for the leader's own
// commands at the start of its term.
func (n *Node) applyInternal(ctx context.Context, p Proposal) (*Applied, error) {
	start := time.Now()
	res, err := n.apply(ctx, p)
	if n.cfg.Metrics != nil {
		n.cfg.Metrics.ApplyObserved(time.Since(start), err == nil)
	}
	return res, err
}

func (n *Node) apply(ctx context.Context, p Proposal) (*Applied, error) {
	if n.raft.State() != raft.Leader {
		return nil, n.notLeader()
	}
	data, err := fsm.EncodeCommand(&cmdpb.Command{
		ClientId: p.ClientID, Seq: p.Seq, AckedBelow: p.AckedBelow,
		LeaderTime: n.cfg.Clock().UnixNano(),
		Machine:    p.Machine, Op: p.Op, Body: p.Body, Fences: p.Fences,
	})
	if err != nil {
		return nil, err
	}
	if len(data) > MaxCommandBytes {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxCommandBytes)
	}
	f := n.raft.Apply(data, n.enqueueTimeout(ctx))
	done := make(chan struct{})
	go func() { _ = f.Error(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrOutcomeUnknown, ctx.Err())
	}
	if err := f.Error(); err != nil {
		return n.applyFailed(f, p, err)
	}
	resp, ok := f.Response().(*fsm.Response)
	if !ok || resp == nil {
		return nil, fmt.Errorf("%w: unexpected state machine response %T", ErrOutcomeUnknown, f.Response())
	}
	if resp.Err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHalted, resp.Err)
	}
	return &Applied{Result: resp.Result, Index: resp.Index, Now: time.Unix(0, resp.Now)}, nil
}

func (n *Node) enqueueTimeout(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		if d := time.Until(dl); d > 0 {
			return d
		}
		return time.Millisecond
	}
	return n.cfg.ApplyTimeout
}

// classify maps Raft's errors onto whether the command may have been applied.
func (n *Node) classify(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		return n.notLeader()
	case errors.Is(err, raft.ErrEnqueueTimeout), errors.Is(err, raft.ErrLeadershipTransferInProgress),
		errors.Is(err, raft.ErrAbortedByRestore):
		return fmt.Errorf("%w: %w", ErrNotApplied, err)
	case errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: %w: %w", ErrOutcomeUnknown, ErrShutdown, err)
	default:
		return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	}
}

// notLeader builds the error for a request that reached a non-leader.
func (n *Node) notLeader() error {
	_, id := n.raft.LeaderWithID()
	if id == "" {
		return ErrNoLeader
	}
	return &NotLeaderError{LeaderID: string(id), LeaderAddress: n.grpcAddrOf(string(id))}
}

func (n *Node) grpcAddrOf(id string) string {
	if id == n.cfg.ID {
		return n.cfg.GRPCAdvertise
	}
	members, err := n.fsm.Members()
	if err != nil || members[id] == nil {
		return ""
	}
	return members[id].GrpcAddress
}

// Leader returns the leader's id and gRPC address ("" when unknown).
func (n *Node) Leader() (id, grpcAddr string) {
	_, lid := n.raft.LeaderWithID()
	if lid == "" {
		return "", ""
	}
	return string(lid), n.grpcAddrOf(string(lid))
}

// ReadBarrier returns once this node's state reflects every write
// acknowledged before the call: Raft's read-index protocol on the leader.
func (n *Node) ReadBarrier(ctx context.Context) error {
	term := n.raft.CurrentTerm()
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	if !n.leaderReady() {
		return fmt.Errorf("%w: the new leader has not yet committed an entry of its term", ErrNoLeader)
	}
	commit := n.raft.CommitIndex()
	if err := n.confirmLeadership(ctx, term); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return n.classifyRead(err)
	}
	target := n.readIndex(commit)
	if !n.fsm.WaitApplied(ctx.Done(), target) {
		return ctx.Err()
	}
	return nil
}

func (n *Node) classifyRead(err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
		return n.notLeader()
	}
	if errors.Is(err, raft.ErrRaftShutdown) {
		return ErrShutdown
	}
	return fmt.Errorf("%w: %w", ErrNoLeader, err)
}

// readIndex returns the index the state machine must reach to reflect every
// entry up to commit. Raft hands the state machine only command and
// configuration entries, so trailing no-op and barrier entries are skipped;
// entries already compacted into a snapshot are in the state machine.
func (n *Node) readIndex(commit uint64) uint64 {
	applied := n.fsm.AppliedIndex()
	for idx := commit; idx > applied; idx-- {
		var l raft.Log
		if err := n.logs.GetLog(idx, &l); err != nil {
			return applied
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			return idx
		}
	}
	return applied
}

// Watch returns a channel closed after the next change a machine notified
// on topic (see fsm.FSM.Watch).
func (n *Node) Watch(machine uint32, topic string) <-chan struct{} {
	return n.fsm.Watch(machine, topic)
}

// Read runs fn on a machine's state. A linearizable read first passes
// ReadBarrier (and so must run on the leader); a stale one reads the local
// state as it is.
func (n *Node) Read(ctx context.Context, linearizable bool, machine uint32, fn func(env sm.Env, tx sm.Tx) error) error {
	if linearizable {
		if err := n.ReadBarrier(ctx); err != nil {
			return err
		}
	}
	return n.fsm.View(machine, fn)
}

func resolveTCP(addr string) (*net.TCPAddr, error) {
	return net.ResolveTCPAddr("tcp", addr)
}
