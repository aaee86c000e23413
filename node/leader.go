package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"coord/fsm"
	"coord/internal/cmdpb"
	"coord/internal/sm"
)

// leadershipLoop follows leadership changes. On gaining leadership it runs
// leaderTerm until leadership is lost.
func (n *Node) leadershipLoop(ctx context.Context) {
	defer n.wg.Done()
	stopTerm := func() {}
	defer func() { stopTerm() }()
	for {
		select {
		case <-ctx.Done():
			return
		case isLeader := <-n.notifyCh:
			stopTerm()
			stopTerm = func() {}
			if !isLeader {
				n.readyTerm.Store(0)
				continue
			}
			lctx, cancel := context.WithCancel(ctx)
			stopTerm = cancel
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				n.leaderTerm(lctx)
			}()
		}
	}
}

// leaderTerm runs while this node leads: a barrier (everything committed by
// earlier leaders is applied), then the term's first command (OpNewLeader:
// leases are renewed for the time without a leader), and only then does the
// node accept client commands and linearizable reads; then cluster
// bookkeeping and the tick loop.
func (n *Node) leaderTerm(ctx context.Context) {
	term := n.raft.CurrentTerm()
	for {
		if err := n.raft.Barrier(n.cfg.ElectionTimeout).Error(); err == nil {
			break
		} else if ctx.Err() != nil || n.raft.State() != raft.Leader {
			return
		}
	}
	for {
		_, err := n.applyInternal(ctx, Proposal{Machine: sm.MachineFSM, Op: fsm.OpNewLeader})
		if err == nil {
			break
		}
		if ctx.Err() != nil || n.raft.State() != raft.Leader {
			return
		}
		n.log.Warn("first command of the term failed; retrying", "error", err)
	}
	n.readyTerm.Store(term)
	n.log.Info("leader ready", "term", term, "applied", n.fsm.AppliedIndex())
	n.ensureClusterMeta(ctx)
	n.tickLoop(ctx)
}

// leaderReady reports whether this node leads and has passed its barrier in
// the current term.
func (n *Node) leaderReady() bool {
	return n.raft.State() == raft.Leader && n.readyTerm.Load() == n.raft.CurrentTerm()
}

// ensureClusterMeta sets the cluster id (first leader only) and registers
// this node's client addresses.
func (n *Node) ensureClusterMeta(ctx context.Context) {
	if meta, err := n.fsm.Meta(); err == nil && meta.ClusterId == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		body, _ := proto.Marshal(&cmdpb.SetClusterID{ClusterId: hex.EncodeToString(b[:])})
		if _, err := n.applyInternal(ctx, Proposal{Machine: sm.MachineFSM, Op: fsm.OpSetClusterID, Body: body}); err != nil {
			n.log.Warn("setting the cluster id failed", "error", err)
		}
	}
	if err := n.RegisterSelf(ctx); err != nil {
		n.log.Warn("registering this node's addresses failed", "error", err)
	}
}

// SelfRegistered reports whether the cluster has this node's current addresses.
func (n *Node) SelfRegistered() bool {
	members, err := n.fsm.Members()
	if err != nil {
		return false
	}
	m := members[n.cfg.ID]
	return m != nil && m.GrpcAddress == n.cfg.GRPCAdvertise && m.HttpAddress == n.cfg.HTTPAdvertise
}

// RegisterSelf records this node's addresses if they changed (leader only).
func (n *Node) RegisterSelf(ctx context.Context) error {
	if n.SelfRegistered() {
		return nil
	}
	return n.SetMember(ctx, n.cfg.ID, n.cfg.GRPCAdvertise, n.cfg.HTTPAdvertise)
}

// SetMember records a member's client-facing addresses.
func (n *Node) SetMember(ctx context.Context, id, grpcAddr, httpAddr string) error {
	body, _ := proto.Marshal(&cmdpb.MemberMeta{Id: id, GrpcAddress: grpcAddr, HttpAddress: httpAddr})
	_, err := n.Apply(ctx, Proposal{Machine: sm.MachineCluster, Op: fsm.OpSetMember, Body: body})
	return err
}

// tickLoop proposes a Tick whenever the state machine has due work.
func (n *Node) tickLoop(ctx context.Context) {
	t := time.NewTicker(n.cfg.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		due, ok := n.fsm.NextDue()
		if !ok || due > n.cfg.Clock().UnixNano() {
			continue
		}
		_, err := n.applyInternal(ctx, Proposal{Machine: sm.MachineFSM, Op: fsm.OpTick})
		if err != nil && ctx.Err() == nil {
			n.log.Debug("tick failed", "error", err)
		}
	}
}
