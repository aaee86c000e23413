package server

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	coordv1 "coord/api/coord/v1"
	"coord/node"
)

// leaderOnly lists the methods that must run on the leader. Reads that carry
// a ReadConsistency are decided per request by needsLeader.
var leaderOnly = map[string]bool{
	coordv1.KVService_Put_FullMethodName:                     true,
	coordv1.KVService_Delete_FullMethodName:                  true,
	coordv1.ClusterService_AddVoter_FullMethodName:           true,
	coordv1.ClusterService_RemoveMember_FullMethodName:       true,
	coordv1.ClusterService_UpdateMember_FullMethodName:       true,
	coordv1.ClusterService_TransferLeadership_FullMethodName: true,
	coordv1.LockService_GrantLease_FullMethodName:            true,
	coordv1.LockService_KeepAlive_FullMethodName:             true,
	coordv1.LockService_RevokeLease_FullMethodName:           true,
	coordv1.LockService_Acquire_FullMethodName:               true,
	coordv1.LockService_Release_FullMethodName:               true,
	coordv1.EventLogService_Append_FullMethodName:            true,
	coordv1.EventLogService_DeleteStream_FullMethodName:      true,
	coordv1.EventLogService_SetRetention_FullMethodName:      true,
	coordv1.EventLogService_CommitCursor_FullMethodName:      true,
}

// consistencyReader is implemented by read requests.
type consistencyReader interface {
	GetConsistency() coordv1.ReadConsistency
}

func needsLeader(method string, req any) bool {
	if leaderOnly[method] {
		return true
	}
	if r, ok := req.(consistencyReader); ok {
		return r.GetConsistency() != coordv1.ReadConsistency_READ_CONSISTENCY_STALE
	}
	return false
}

// UnaryInterceptor forwards leader-only calls from a follower to the leader
// and maps handler errors to gRPC statuses.
func (s *Server) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if needsLeader(info.FullMethod, req) && !s.node.IsLeader() {
			resp, err := s.forward(ctx, info.FullMethod, req)
			return resp, toStatus(err)
		}
		resp, err := handler(ctx, req)
		return resp, toStatus(err)
	}
}

// forward sends the call to the leader, carrying the request-id metadata.
func (s *Server) forward(ctx context.Context, method string, req any) (any, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if len(md.Get(coordv1.HeaderForwarded)) > 0 {
		return nil, s.notLeader() // never forward twice
	}
	id, addr := s.node.Leader()
	if id == "" || addr == "" {
		return nil, s.notLeader()
	}
	conn, err := s.conns.get(addr)
	if err != nil {
		return nil, err
	}
	out := metadata.MD{}
	for k, v := range md {
		if strings.HasPrefix(k, "coord-") {
			out[k] = v
		}
	}
	out.Set(coordv1.HeaderForwarded, s.node.ID())
	resp, err := newResponse(method)
	if err != nil {
		return nil, err
	}
	if err := conn.Invoke(metadata.NewOutgoingContext(ctx, out), method, req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

func (s *Server) notLeader() error {
	id, addr := s.node.Leader()
	if id == "" {
		return node.ErrNoLeader
	}
	return &node.NotLeaderError{LeaderID: id, LeaderAddress: addr}
}

// newResponse allocates the response message of a method from the registry.
func newResponse(method string) (proto.Message, error) {
	full := strings.TrimPrefix(method, "/")
	svc, m, ok := strings.Cut(full, "/")
	if !ok {
		return nil, fmt.Errorf("malformed method name %q", method)
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc))
	if err != nil {
		return nil, err
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, fmt.Errorf("%s is not a service", svc)
	}
	md := sd.Methods().ByName(protoreflect.Name(m))
	if md == nil {
		return nil, fmt.Errorf("unknown method %q", method)
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
	if err != nil {
		return nil, err
	}
	return mt.New().Interface(), nil
}
