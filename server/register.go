package server

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	coordv1 "coord/api/coord/v1"
)

// KeepRegistered makes sure the cluster knows this node's client addresses,
// until ctx ends. The leader records its own when elected; a follower asks
// the leader through its own gRPC server at selfAddr, which forwards the call.
func (s *Server) KeepRegistered(ctx context.Context, selfAddr string) {
	conn, err := grpc.NewClient(selfAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		s.log.Error("cannot dial own gRPC address", "addr", selfAddr, "error", err)
		return
	}
	defer conn.Close()
	cli := coordv1.NewClusterServiceClient(conn)
	for ctx.Err() == nil {
		wait := 200 * time.Millisecond
		// Registration needs a leader whose address is known (the call is
		// forwarded to it); readiness itself waits for the registration.
		if id, addr := s.node.Leader(); id != "" && addr != "" {
			if s.node.SelfRegistered() {
				wait = 2 * time.Second
			} else {
				st := s.node.Status()
				actx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := cli.UpdateMember(actx, &coordv1.UpdateMemberRequest{Id: st.ID, GrpcAddress: st.GRPCAddress, HttpAddress: st.HTTPAddress})
				cancel()
				if err != nil {
					s.log.Debug("registering addresses failed; retrying", "error", err)
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}
