package client

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	coordv1 "coord/api/coord/v1"
)

func clusterClient(cc grpc.ClientConnInterface) coordv1.ClusterServiceClient {
	return coordv1.NewClusterServiceClient(cc)
}

// Status returns the status of every member, as gathered by the leader (or,
// while no leader is known, by whichever node answers).
func (c *Client) Status(ctx context.Context) (*coordv1.GetStatusResponse, error) {
	var resp *coordv1.GetStatusResponse
	err := c.read(ctx, coordv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE, func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
		resp, err = clusterClient(cc).GetStatus(ctx, &coordv1.GetStatusRequest{})
		return err
	})
	return resp, err
}

// Members returns the Raft configuration with each member's addresses, as
// the leader (or, while no leader is known, any node) sees it. The client
// also learns the members' gRPC addresses and the leader from the answer.
func (c *Client) Members(ctx context.Context) (*coordv1.ListMembersResponse, error) {
	var resp *coordv1.ListMembersResponse
	err := c.read(ctx, coordv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE, func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
		resp, err = clusterClient(cc).ListMembers(ctx, &coordv1.ListMembersRequest{})
		return err
	})
	if err != nil {
		return nil, err
	}
	c.applyMembers(resp.GetLeaderId(), resp.GetMembers())
	return resp, nil
}

// NodeStatus returns the status of the node serving gRPC at addr, in its
// own view; an empty addr means the leader.
func (c *Client) NodeStatus(ctx context.Context, addr string) (*coordv1.NodeStatus, error) {
	var resp *coordv1.GetNodeStatusResponse
	err := c.readNode(ctx, addr, func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
		resp, err = clusterClient(cc).GetNodeStatus(ctx, &coordv1.GetNodeStatusRequest{})
		return err
	})
	return resp.GetStatus(), err
}

// StateHash returns the digest of the replicated state of the node at addr
// (empty: the leader). Nodes at the same applied index have equal digests.
func (c *Client) StateHash(ctx context.Context, addr string) (*coordv1.GetStateHashResponse, error) {
	var resp *coordv1.GetStateHashResponse
	err := c.readNode(ctx, addr, func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
		resp, err = clusterClient(cc).GetStateHash(ctx, &coordv1.GetStateHashRequest{})
		return err
	})
	return resp, err
}

// AddVoter adds node id, replicating at raftAddr, as a voter. It is a write:
// it goes to the leader and is retried with the same request id.
func (c *Client) AddVoter(ctx context.Context, id, raftAddr string) (*coordv1.AddVoterResponse, error) {
	if id == "" || raftAddr == "" {
		return nil, invalidArgument("add voter: id and raft address are required")
	}
	req := &coordv1.AddVoterRequest{Id: id, RaftAddress: raftAddr}
	var resp *coordv1.AddVoterResponse
	err := c.write(ctx, func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
		resp, err = clusterClient(cc).AddVoter(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	c.applyMembers("", resp.GetMembers())
	return resp, nil
}

// RemoveMember removes member id from the cluster. It is a write: it goes to
// the leader and is retried with the same request id.
func (c *Client) RemoveMember(ctx context.Context, id string) (*coordv1.RemoveMemberResponse, error) {
	if id == "" {
		return nil, invalidArgument("remove member: id is required")
	}
	req := &coordv1.RemoveMemberRequest{Id: id}
	var resp *coordv1.RemoveMemberResponse
	err := c.write(ctx, func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
		resp, err = clusterClient(cc).RemoveMember(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	c.applyMembers("", resp.GetMembers())
	return resp, nil
}

// TransferLeadership asks the leader to hand leadership to voter id (empty:
// the leader chooses) and returns the new leader's id. The client follows
// the new leader at once. A retry after an unknown outcome may transfer
// leadership a second time.
func (c *Client) TransferLeadership(ctx context.Context, id string) (newLeaderID string, err error) {
	req := &coordv1.TransferLeadershipRequest{Id: id}
	var resp *coordv1.TransferLeadershipResponse
	err = c.write(ctx, func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
		resp, err = clusterClient(cc).TransferLeadership(ctx, req)
		return err
	})
	if err != nil {
		return "", err
	}
	c.setLeaderID(resp.GetLeaderId())
	return resp.GetLeaderId(), nil
}

// TakeSnapshot makes a node snapshot its state and compact its log: the
// leader when nodeID is empty, else member nodeID (reached at the gRPC
// address the cluster lists for it).
func (c *Client) TakeSnapshot(ctx context.Context, nodeID string) (*coordv1.TakeSnapshotResponse, error) {
	addr := ""
	if nodeID != "" {
		var err error
		if addr, err = c.resolveMember(ctx, nodeID); err != nil {
			return nil, err
		}
	}
	var resp *coordv1.TakeSnapshotResponse
	err := c.readNode(ctx, addr, func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
		resp, err = clusterClient(cc).TakeSnapshot(ctx, &coordv1.TakeSnapshotRequest{})
		return err
	})
	return resp, err
}

// readNode runs fn on addr, or on the leader when addr is empty.
func (c *Client) readNode(ctx context.Context, addr string, fn callFunc) error {
	if addr == "" {
		return c.read(ctx, coordv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE, fn)
	}
	return c.readAt(ctx, addr, fn)
}

// resolveMember returns member id's gRPC address, asking the cluster when
// the client does not know it. An unknown member is ErrNotFound.
func (c *Client) resolveMember(ctx context.Context, id string) (string, error) {
	if addr := c.memberAddress(id); addr != "" {
		return addr, nil
	}
	if _, err := c.Members(ctx); err != nil {
		return "", err
	}
	if addr := c.memberAddress(id); addr != "" {
		return addr, nil
	}
	return "", &Error{Code: codes.NotFound, Message: fmt.Sprintf("no member %q with a gRPC address", id)}
}
