package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	coordv1 "coord/api/coord/v1"
	"coord/node"
)

// maybeJoin asks a running cluster (--join) to add this node as a voter,
// retrying until it succeeds, the node is already a member, or ctx ends.
func maybeJoin(ctx context.Context, log *slog.Logger, n *node.Node, o *options) error {
	if o.join == "" {
		return nil
	}
	endpoints := strings.Split(o.join, ",")
	for attempt := 0; ctx.Err() == nil; attempt++ {
		if members, err := n.Members(); err == nil && isMember(members, o.id) {
			return nil
		}
		ep := strings.TrimSpace(endpoints[attempt%len(endpoints)])
		clusterID, err := addVoter(ctx, ep, o.id, o.raftAdvertise)
		if err == nil {
			if err := n.CheckJoin(clusterID); err != nil {
				return err
			}
			log.Info("joined the cluster", "via", ep, "cluster_id", clusterID)
			return nil
		}
		log.Warn("join attempt failed; retrying", "endpoint", ep, "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil
}

func isMember(ms []node.Member, id string) bool {
	for _, m := range ms {
		if m.ID == id {
			return true
		}
	}
	return false
}

func addVoter(ctx context.Context, endpoint, id, raftAddr string) (string, error) {
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return "", fmt.Errorf("--join: %q: %w", endpoint, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := coordv1.NewClusterServiceClient(conn).AddVoter(ctx, &coordv1.AddVoterRequest{Id: id, RaftAddress: raftAddr})
	if err != nil {
		return "", err
	}
	return resp.ClusterId, nil
}
