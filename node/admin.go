package node

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"coord/fsm"
	"coord/internal/cmdpb"
	"coord/internal/sm"
)

// Member is a member of the Raft configuration with its registered addresses.
type Member struct {
	ID, RaftAddress, GRPCAddress, HTTPAddress string
	Voter, Leader                             bool
}

// Members lists the Raft configuration, ordered by id.
func (n *Node) Members() ([]Member, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	meta, err := n.fsm.Members()
	if err != nil {
		return nil, err
	}
	_, leader := n.raft.LeaderWithID()
	var out []Member
	for _, s := range f.Configuration().Servers {
		m := Member{ID: string(s.ID), RaftAddress: string(s.Address), Voter: s.Suffrage == raft.Voter, Leader: s.ID == leader}
		if mm := meta[m.ID]; mm != nil {
			m.GRPCAddress, m.HTTPAddress = mm.GrpcAddress, mm.HttpAddress
		}
		if m.ID == n.cfg.ID {
			m.GRPCAddress, m.HTTPAddress = n.cfg.GRPCAdvertise, n.cfg.HTTPAdvertise
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Status is this node's view of itself.
type Status struct {
	ID, RaftAddress, GRPCAddress, HTTPAddress string
	Role                                      string // leader, follower, candidate or shutdown
	Term, CommitIndex, AppliedIndex           uint64
	LastLogIndex, LastSnapshotIndex           uint64
	LastContact                               time.Time
	LeaderID, ClusterID                       string
	Ready                                     bool
	StateTime                                 time.Time
	Halted                                    bool
}

// Status reports this node's Raft and state-machine progress.
func (n *Node) Status() Status {
	stats := n.raft.Stats()
	num := func(k string) uint64 { v, _ := strconv.ParseUint(stats[k], 10, 64); return v }
	_, leader := n.raft.LeaderWithID()
	st := Status{
		ID: n.cfg.ID, RaftAddress: n.cfg.RaftAdvertise, GRPCAddress: n.cfg.GRPCAdvertise, HTTPAddress: n.cfg.HTTPAdvertise,
		Role: roleName(n.raft.State()), Term: n.raft.CurrentTerm(), CommitIndex: n.raft.CommitIndex(),
		AppliedIndex: n.fsm.AppliedIndex(), LastLogIndex: n.raft.LastIndex(),
		LastSnapshotIndex: num("last_snapshot_index"), LeaderID: string(leader),
		ClusterID: n.ClusterID(), StateTime: time.Unix(0, n.fsm.Now()), Halted: n.fsm.Halted(),
	}
	if n.raft.State() != raft.Leader {
		st.LastContact = n.raft.LastContact()
	}
	st.Ready, _ = n.Ready()
	return st
}

// Ready reports whether the node can serve: a member of a cluster with a
// known leader, caught up with what it knows to be committed. The string
// says why not.
func (n *Node) Ready() (bool, string) {
	if n.fsm.Halted() {
		return false, "state machine halted"
	}
	state := n.raft.State()
	if state == raft.Shutdown {
		return false, "shut down"
	}
	_, leader := n.raft.LeaderWithID()
	if leader == "" {
		return false, "no known leader"
	}
	if !n.isMember() {
		return false, "not a member of the cluster configuration"
	}
	if state == raft.Leader && !n.leaderReady() {
		return false, "leader has not yet committed an entry of its term"
	}
	commit, applied := n.raft.CommitIndex(), n.fsm.AppliedIndex()
	if state != raft.Leader && commit == 0 {
		// Raft starts with commit index 0 and learns the leader's from the
		// first entries it accepts; heartbeats do not carry it. Until then
		// this node cannot know how far behind it is.
		return false, "waiting for the leader's commit index"
	}
	if target := n.readIndex(commit); applied < target {
		return false, fmt.Sprintf("applying: applied index %d, commit index %d", applied, commit)
	}
	if !n.SelfRegistered() {
		return false, "this node's client addresses are not yet registered in the cluster"
	}
	return true, ""
}

func (n *Node) isMember() bool {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == n.cfg.ID {
			return true
		}
	}
	return false
}

// AddVoter adds a voter (leader only).
func (n *Node) AddVoter(ctx context.Context, id, raftAddr string) error {
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	if err := n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, n.enqueueTimeout(ctx)).Error(); err != nil {
		return n.classify(err)
	}
	return nil
}

// RemoveMember removes a member (leader only) and forgets its addresses.
func (n *Node) RemoveMember(ctx context.Context, id string) error {
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	found := false
	members, err := n.Members()
	if err != nil {
		return err
	}
	for _, m := range members {
		found = found || m.ID == id
	}
	if !found {
		return fmt.Errorf("%w: %q", ErrUnknownMember, id)
	}
	if err := n.raft.RemoveServer(raft.ServerID(id), 0, n.enqueueTimeout(ctx)).Error(); err != nil {
		return n.classify(err)
	}
	body, _ := proto.Marshal(&cmdpb.DeleteMember{Id: id})
	_, err = n.Apply(ctx, Proposal{Machine: sm.MachineCluster, Op: fsm.OpDeleteMember, Body: body})
	return err
}

// TransferLeadership hands leadership to id (or a peer of Raft's choice when
// id is empty) and returns the new leader once known.
func (n *Node) TransferLeadership(ctx context.Context, id string) (string, error) {
	if n.raft.State() != raft.Leader {
		return "", n.notLeader()
	}
	var f raft.Future
	if id == "" {
		f = n.raft.LeadershipTransfer()
	} else {
		members, err := n.Members()
		if err != nil {
			return "", err
		}
		addr := ""
		for _, m := range members {
			if m.ID == id && m.Voter {
				addr = m.RaftAddress
			}
		}
		if addr == "" {
			return "", fmt.Errorf("%w: %q is not a voter", ErrUnknownMember, id)
		}
		f = n.raft.LeadershipTransferToServer(raft.ServerID(id), raft.ServerAddress(addr))
	}
	if err := f.Error(); err != nil {
		return "", fmt.Errorf("%w: %w", ErrNotApplied, err)
	}
	for ctx.Err() == nil {
		if _, leader := n.raft.LeaderWithID(); leader != "" && string(leader) != n.cfg.ID {
			return string(leader), nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
	return "", ctx.Err()
}

// SnapshotInfo describes a snapshot taken on request.
type SnapshotInfo struct {
	ID          string
	Index, Term uint64
	Size        int64
}

// Snapshot takes a snapshot now and compacts the log.
func (n *Node) Snapshot() (SnapshotInfo, error) {
	f := n.raft.Snapshot()
	if err := f.Error(); err != nil {
		return SnapshotInfo{}, err
	}
	meta, rc, err := f.Open()
	if err != nil {
		return SnapshotInfo{}, err
	}
	_ = rc.Close()
	return SnapshotInfo{ID: meta.ID, Index: meta.Index, Term: meta.Term, Size: meta.Size}, nil
}

// StateHash returns the applied index and the SHA-256 of the state.
func (n *Node) StateHash() (uint64, [32]byte, error) { return n.fsm.Hash() }

func roleName(s raft.RaftState) string {
	switch s {
	case raft.Leader:
		return "leader"
	case raft.Follower:
		return "follower"
	case raft.Candidate:
		return "candidate"
	default:
		return "shutdown"
	}
}
