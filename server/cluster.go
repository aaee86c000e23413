package server

import (
	"context"
	"encoding/hex"
	"sort"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	coordv1 "coord/api/coord/v1"
	"coord/node"
)

// statusTimeout bounds how long GetStatus waits for each member.
const statusTimeout = 2 * time.Second

type clusterService struct {
	coordv1.UnimplementedClusterServiceServer
	s *Server
}

func (c *clusterService) GetNodeStatus(context.Context, *coordv1.GetNodeStatusRequest) (*coordv1.GetNodeStatusResponse, error) {
	return &coordv1.GetNodeStatusResponse{Status: c.s.localStatus()}, nil
}

func (s *Server) localStatus() *coordv1.NodeStatus {
	st := s.node.Status()
	out := &coordv1.NodeStatus{
		Id: st.ID, RaftAddress: st.RaftAddress, GrpcAddress: st.GRPCAddress, HttpAddress: st.HTTPAddress,
		Role: roleOf(st.Role), Term: st.Term, CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex,
		LastLogIndex: st.LastLogIndex, LeaderId: st.LeaderID, Ready: st.Ready, Healthy: st.Ready,
		ClusterId: st.ClusterID, LastSnapshotIndex: st.LastSnapshotIndex, Version: s.version,
		StateTime: timestamppb.New(st.StateTime),
	}
	if !st.LastContact.IsZero() {
		out.LastContact = timestamppb.New(st.LastContact)
	}
	return out
}

func roleOf(r string) coordv1.Role {
	switch r {
	case "leader":
		return coordv1.Role_ROLE_LEADER
	case "follower":
		return coordv1.Role_ROLE_FOLLOWER
	case "candidate":
		return coordv1.Role_ROLE_CANDIDATE
	default:
		return coordv1.Role_ROLE_SHUTDOWN
	}
}

// GetStatus asks every member for its status in parallel.
func (c *clusterService) GetStatus(ctx context.Context, _ *coordv1.GetStatusRequest) (*coordv1.GetStatusResponse, error) {
	members, err := c.s.node.Members()
	if err != nil {
		return nil, err
	}
	leader, _ := c.s.node.Leader()
	out := &coordv1.GetStatusResponse{ClusterId: c.s.node.ClusterID(), LeaderId: leader, Members: make([]*coordv1.NodeStatus, len(members))}
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out.Members[i] = c.s.memberStatus(ctx, m)
		}()
	}
	wg.Wait()
	return out, nil
}

func (s *Server) memberStatus(ctx context.Context, m node.Member) *coordv1.NodeStatus {
	if m.ID == s.node.ID() {
		return s.localStatus()
	}
	down := &coordv1.NodeStatus{Id: m.ID, RaftAddress: m.RaftAddress, GrpcAddress: m.GRPCAddress, HttpAddress: m.HTTPAddress, Role: coordv1.Role_ROLE_UNREACHABLE}
	if m.GRPCAddress == "" {
		down.Error = "the member has not registered its gRPC address"
		return down
	}
	conn, err := s.conns.get(m.GRPCAddress)
	if err != nil {
		down.Error = err.Error()
		return down
	}
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	resp, err := coordv1.NewClusterServiceClient(conn).GetNodeStatus(ctx, &coordv1.GetNodeStatusRequest{})
	if err != nil {
		down.Error = err.Error()
		return down
	}
	return resp.Status
}

func (c *clusterService) ListMembers(context.Context, *coordv1.ListMembersRequest) (*coordv1.ListMembersResponse, error) {
	members, err := c.s.members()
	if err != nil {
		return nil, err
	}
	leader, _ := c.s.node.Leader()
	return &coordv1.ListMembersResponse{ClusterId: c.s.node.ClusterID(), LeaderId: leader, Members: members}, nil
}

func (s *Server) members() ([]*coordv1.Member, error) {
	ms, err := s.node.Members()
	if err != nil {
		return nil, err
	}
	out := make([]*coordv1.Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, &coordv1.Member{Id: m.ID, RaftAddress: m.RaftAddress, GrpcAddress: m.GRPCAddress, HttpAddress: m.HTTPAddress, Voter: m.Voter, Leader: m.Leader})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Id < out[j].Id })
	return out, nil
}

func (c *clusterService) AddVoter(ctx context.Context, req *coordv1.AddVoterRequest) (*coordv1.AddVoterResponse, error) {
	if err := validateNodeID("id", req.Id); err != nil {
		return nil, err
	}
	if err := validateHostPort("raft_address", req.RaftAddress); err != nil {
		return nil, err
	}
	if err := c.s.node.AddVoter(ctx, req.Id, req.RaftAddress); err != nil {
		return nil, err
	}
	members, err := c.s.members()
	if err != nil {
		return nil, err
	}
	return &coordv1.AddVoterResponse{ClusterId: c.s.node.ClusterID(), Members: members}, nil
}

func (c *clusterService) UpdateMember(ctx context.Context, req *coordv1.UpdateMemberRequest) (*coordv1.UpdateMemberResponse, error) {
	if err := validateNodeID("id", req.Id); err != nil {
		return nil, err
	}
	if err := validateHostPort("grpc_address", req.GrpcAddress); err != nil {
		return nil, err
	}
	if req.HttpAddress != "" {
		if err := validateHostPort("http_address", req.HttpAddress); err != nil {
			return nil, err
		}
	}
	if err := c.s.node.SetMember(ctx, req.Id, req.GrpcAddress, req.HttpAddress); err != nil {
		return nil, err
	}
	return &coordv1.UpdateMemberResponse{}, nil
}

func (c *clusterService) RemoveMember(ctx context.Context, req *coordv1.RemoveMemberRequest) (*coordv1.RemoveMemberResponse, error) {
	if err := validateNodeID("id", req.Id); err != nil {
		return nil, err
	}
	if err := c.s.node.RemoveMember(ctx, req.Id); err != nil {
		return nil, err
	}
	members, err := c.s.members()
	if err != nil {
		return nil, err
	}
	return &coordv1.RemoveMemberResponse{Members: members}, nil
}

func (c *clusterService) TransferLeadership(ctx context.Context, req *coordv1.TransferLeadershipRequest) (*coordv1.TransferLeadershipResponse, error) {
	if req.Id != "" {
		if err := validateNodeID("id", req.Id); err != nil {
			return nil, err
		}
	}
	leader, err := c.s.node.TransferLeadership(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return &coordv1.TransferLeadershipResponse{LeaderId: leader}, nil
}

func (c *clusterService) TakeSnapshot(context.Context, *coordv1.TakeSnapshotRequest) (*coordv1.TakeSnapshotResponse, error) {
	info, err := c.s.node.Snapshot()
	if err != nil {
		return nil, err
	}
	return &coordv1.TakeSnapshotResponse{Id: info.ID, Index: info.Index, Term: info.Term, SizeBytes: info.Size}, nil
}

func (c *clusterService) GetStateHash(context.Context, *coordv1.GetStateHashRequest) (*coordv1.GetStateHashResponse, error) {
	idx, sum, err := c.s.node.StateHash()
	if err != nil {
		return nil, err
	}
	return &coordv1.GetStateHashResponse{AppliedIndex: idx, Sha256: hex.EncodeToString(sum[:])}, nil
}
