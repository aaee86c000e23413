package clienttest

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	coordv1 "coord/api/coord/v1"
)

// server implements the coord services for one node.
type server struct {
	coordv1.UnimplementedClusterServiceServer
	coordv1.UnimplementedKVServiceServer
	n *Node
}

// Put applies a put on the leader.
func (s *server) Put(ctx context.Context, req *coordv1.PutRequest) (*coordv1.PutResponse, error) {
	if err := s.n.requireLeader(); err != nil {
		return nil, err
	}
	if req.GetKey() == "" {
		return nil, status.Error(codes.InvalidArgument, "key: must not be empty")
	}
	c := s.n.c
	resp := c.applyOnce(ctx, func() proto.Message {
		cur := c.lookup(req.GetKey())
		out := &coordv1.PutResponse{Revision: c.rev}
		if req.ExpectedRevision != nil && req.GetExpectedRevision() != cur.GetModRevision() {
			if cur != nil {
				out.Kv = proto.Clone(cur).(*coordv1.KeyValue)
			}
			return out
		}
		kv := &coordv1.KeyValue{Key: req.GetKey(), Value: req.GetValue(), ModRevision: c.rev, CreateRevision: c.rev, Version: 1}
		if cur != nil {
			kv.CreateRevision, kv.Version = cur.GetCreateRevision(), cur.GetVersion()+1
		}
		if req.GetTtl() != nil {
			kv.ExpireTime = timestamppb.New(time.Now().Add(req.GetTtl().AsDuration()))
		}
		c.kv[req.GetKey()] = kv
		out.Succeeded, out.Kv = true, proto.Clone(kv).(*coordv1.KeyValue)
		return out
	})
	return resp.(*coordv1.PutResponse), nil
}

// Get reads a key: on the leader, or on any node for a stale read.
func (s *server) Get(_ context.Context, req *coordv1.GetRequest) (*coordv1.GetResponse, error) {
	if req.GetConsistency() != coordv1.ReadConsistency_READ_CONSISTENCY_STALE {
		if err := s.n.requireLeader(); err != nil {
			return nil, err
		}
	}
	c := s.n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	out := &coordv1.GetResponse{AppliedIndex: c.rev}
	if kv := c.lookup(req.GetKey()); kv != nil {
		out.Found, out.Kv = true, proto.Clone(kv).(*coordv1.KeyValue)
	}
	return out, nil
}

// Delete applies a delete on the leader.
func (s *server) Delete(ctx context.Context, req *coordv1.DeleteRequest) (*coordv1.DeleteResponse, error) {
	if err := s.n.requireLeader(); err != nil {
		return nil, err
	}
	c := s.n.c
	resp := c.applyOnce(ctx, func() proto.Message {
		cur := c.lookup(req.GetKey())
		out := &coordv1.DeleteResponse{Revision: c.rev}
		if req.ExpectedRevision != nil && req.GetExpectedRevision() != cur.GetModRevision() {
			return out
		}
		out.Succeeded, out.Deleted = true, cur != nil
		delete(c.kv, req.GetKey())
		return out
	})
	return resp.(*coordv1.DeleteResponse), nil
}

// ListMembers reports the members and the cluster's leader.
func (s *server) ListMembers(context.Context, *coordv1.ListMembersRequest) (*coordv1.ListMembersResponse, error) {
	return s.n.c.MembersResponse(s.n.c.Leader()), nil
}

// GetStatus reports every node; stopped nodes are unreachable.
func (s *server) GetStatus(context.Context, *coordv1.GetStatusRequest) (*coordv1.GetStatusResponse, error) {
	c := s.n.c
	out := &coordv1.GetStatusResponse{ClusterId: ClusterID, LeaderId: c.Leader()}
	for _, n := range c.Nodes {
		out.Members = append(out.Members, n.status())
	}
	return out, nil
}

// GetNodeStatus reports the receiving node.
func (s *server) GetNodeStatus(context.Context, *coordv1.GetNodeStatusRequest) (*coordv1.GetNodeStatusResponse, error) {
	return &coordv1.GetNodeStatusResponse{Status: s.n.status()}, nil
}

// AddVoter adds a member without a gRPC address.
func (s *server) AddVoter(ctx context.Context, req *coordv1.AddVoterRequest) (*coordv1.AddVoterResponse, error) {
	if err := s.n.requireLeader(); err != nil {
		return nil, err
	}
	c := s.n.c
	resp := c.applyOnce(ctx, func() proto.Message {
		c.extra = append(c.extra, &coordv1.Member{Id: req.GetId(), RaftAddress: req.GetRaftAddress(), Voter: true})
		return &coordv1.AddVoterResponse{ClusterId: ClusterID, Members: c.membersLocked(c.leader)}
	})
	return resp.(*coordv1.AddVoterResponse), nil
}

// RemoveMember removes a member; an unknown id is NotFound.
func (s *server) RemoveMember(ctx context.Context, req *coordv1.RemoveMemberRequest) (*coordv1.RemoveMemberResponse, error) {
	if err := s.n.requireLeader(); err != nil {
		return nil, err
	}
	c := s.n.c
	var notFound bool
	resp := c.applyOnce(ctx, func() proto.Message {
		notFound = !c.removeLocked(req.GetId())
		return &coordv1.RemoveMemberResponse{Members: c.membersLocked(c.leader)}
	})
	if notFound {
		return nil, status.Errorf(codes.NotFound, "no member %q", req.GetId())
	}
	return resp.(*coordv1.RemoveMemberResponse), nil
}

// TransferLeadership moves leadership to the named node, or the next one.
func (s *server) TransferLeadership(ctx context.Context, req *coordv1.TransferLeadershipRequest) (*coordv1.TransferLeadershipResponse, error) {
	if err := s.n.requireLeader(); err != nil {
		return nil, err
	}
	c := s.n.c
	to := req.GetId()
	if to == "" {
		to = c.next(s.n.ID)
	}
	if c.Node(to) == nil {
		return nil, status.Errorf(codes.InvalidArgument, "id: no voter %q", to)
	}
	resp := c.applyOnce(ctx, func() proto.Message {
		c.leader = to
		return &coordv1.TransferLeadershipResponse{LeaderId: to}
	})
	return resp.(*coordv1.TransferLeadershipResponse), nil
}

// TakeSnapshot pretends to snapshot the receiving node.
func (s *server) TakeSnapshot(context.Context, *coordv1.TakeSnapshotRequest) (*coordv1.TakeSnapshotResponse, error) {
	h := s.n.c.stateHash()
	return &coordv1.TakeSnapshotResponse{
		Id: fmt.Sprintf("%s-%d", s.n.ID, h.GetAppliedIndex()), Index: h.GetAppliedIndex(), Term: 1, SizeBytes: 1024,
	}, nil
}

// GetStateHash digests the shared state.
func (s *server) GetStateHash(context.Context, *coordv1.GetStateHashRequest) (*coordv1.GetStateHashResponse, error) {
	return s.n.c.stateHash(), nil
}

// status is the node's own status.
func (n *Node) status() *coordv1.NodeStatus {
	leader := n.c.Leader()
	h := n.c.stateHash()
	st := &coordv1.NodeStatus{
		Id: n.ID, RaftAddress: n.RaftAddr, GrpcAddress: n.Addr, Role: coordv1.Role_ROLE_FOLLOWER,
		Term: 1, CommitIndex: h.GetAppliedIndex(), AppliedIndex: h.GetAppliedIndex(),
		LastLogIndex: h.GetAppliedIndex(), LeaderId: leader, Ready: leader != "", ClusterId: ClusterID,
		Version: "fake",
	}
	switch {
	case n.Stopped():
		st = &coordv1.NodeStatus{Id: n.ID, GrpcAddress: n.Addr, Role: coordv1.Role_ROLE_UNREACHABLE, Error: "node stopped"}
	case leader == n.ID:
		st.Role = coordv1.Role_ROLE_LEADER
	default:
		st.LastContact = timestamppb.Now()
	}
	st.Healthy = st.GetReady()
	return st
}

// removeLocked removes member id and reports whether it existed.
func (c *Cluster) removeLocked(id string) bool {
	for i, m := range c.extra {
		if m.GetId() == id {
			c.extra = append(c.extra[:i], c.extra[i+1:]...)
			return true
		}
	}
	if c.Node(id) == nil || c.removed[id] {
		return false
	}
	c.removed[id] = true
	return true
}

// next returns the id of the node after id, cyclically.
func (c *Cluster) next(id string) string {
	for i, n := range c.Nodes {
		if n.ID == id {
			return c.Nodes[(i+1)%len(c.Nodes)].ID
		}
	}
	return ""
}
