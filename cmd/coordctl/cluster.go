package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/cobra"

	coordv1 "coord/api/coord/v1"
	"coord/client"
)

func (a *app) clusterCmd() *cobra.Command {
	cmd := groupCmd("cluster", "Inspect and manage the cluster's members",
		"Inspect and manage the cluster's members. Membership changes go to the leader.")
	cmd.AddCommand(
		a.clusterStatusCmd(), a.clusterMembersCmd(), a.clusterAddVoterCmd(), a.clusterRemoveCmd(),
		a.clusterTransferCmd(), a.clusterSnapshotCmd(), a.clusterHashCmd(),
	)
	return cmd
}

func (a *app) clusterStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show every member's status",
		Long: `Show every member's status as gathered by the leader.

Table columns: ID, ROLE (leader, follower, candidate, shutdown, unreachable),
TERM, COMMIT and APPLIED (log indexes), LAST CONTACT (time since the member
last heard from the leader; "-" for the leader), READY, HEALTHY, GRPC ADDR.

JSON: the coord.v1.GetStatusResponse message:
  {"cluster_id": "...", "leader_id": "...", "members": [NodeStatus, ...]}`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				st, err := c.Status(ctx)
				if err != nil {
					return fmt.Errorf("cluster status: %w", err)
				}
				if a.out().json {
					return a.out().message(st)
				}
				return a.out().table(statusHeader, statusRows(st, time.Now()))
			})
		},
	}
}

func (a *app) clusterMembersCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "members",
		Short: "List the Raft configuration",
		Long: `List the Raft configuration with each member's addresses.

Table columns: ID, VOTER, LEADER, RAFT ADDR, GRPC ADDR, HTTP ADDR.

JSON: the coord.v1.ListMembersResponse message:
  {"cluster_id": "...", "leader_id": "...", "members": [Member, ...]}`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				ms, err := c.Members(ctx)
				if err != nil {
					return fmt.Errorf("cluster members: %w", err)
				}
				if a.out().json {
					return a.out().message(ms)
				}
				return a.out().table(memberHeader, memberRows(ms.GetMembers()))
			})
		},
	}
}

func (a *app) clusterAddVoterCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "add-voter ID RAFT_ADDR",
		Short: "Add a node to the cluster as a voter",
		Long: `Add node ID, replicating at RAFT_ADDR (host:port), as a voter.

JSON: the coord.v1.AddVoterResponse message:
  {"cluster_id": "...", "members": [Member, ...]}`,
		Args: usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				resp, err := c.AddVoter(ctx, args[0], args[1])
				if err != nil {
					return fmt.Errorf("add voter %s: %w", args[0], err)
				}
				if a.out().json {
					return a.out().message(resp)
				}
				return a.out().line("added voter %s at %s; %d members", args[0], args[1], len(resp.GetMembers()))
			})
		},
	}
}

func (a *app) clusterRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a member from the cluster",
		Long: `Remove member ID from the Raft configuration.

JSON: the coord.v1.RemoveMemberResponse message:
  {"members": [Member, ...]}`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				resp, err := c.RemoveMember(ctx, args[0])
				if err != nil {
					return fmt.Errorf("remove %s: %w", args[0], err)
				}
				if a.out().json {
					return a.out().message(resp)
				}
				return a.out().line("removed member %s; %d members", args[0], len(resp.GetMembers()))
			})
		},
	}
}

func (a *app) clusterTransferCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "transfer-leader [ID]",
		Short: "Hand leadership to another voter",
		Long: `Ask the leader to hand leadership to voter ID, or to a voter of its
choice when ID is omitted.

JSON: the coord.v1.TransferLeadershipResponse message:
  {"leader_id": "..."}`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			to := ""
			if len(args) == 1 {
				to = args[0]
			}
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				id, err := c.TransferLeadership(ctx, to)
				if err != nil {
					return fmt.Errorf("transfer leadership: %w", err)
				}
				if a.out().json {
					return a.out().message(&coordv1.TransferLeadershipResponse{LeaderId: id})
				}
				return a.out().line("leader is now %s", id)
			})
		},
	}
}

func (a *app) clusterSnapshotCmd() *cobra.Command {
	var node string
	cmd := &cobra.Command{
		Use:   "snapshot [--node ID]",
		Short: "Make a node snapshot its state and compact its log",
		Long: `Make a node snapshot its state now and compact its log: the leader, or
member ID with --node.

Table columns: NODE, SNAPSHOT (the snapshot's id), INDEX, TERM, SIZE (bytes).

JSON: the coord.v1.TakeSnapshotResponse message:
  {"id": "...", "index": "N", "term": "N", "size_bytes": "N"}`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				snap, err := c.TakeSnapshot(ctx, node)
				if err != nil {
					return fmt.Errorf("snapshot: %w", err)
				}
				if a.out().json {
					return a.out().message(snap)
				}
				who := node
				if who == "" {
					who, _ = c.Leader()
				}
				return a.out().table([]string{"NODE", "SNAPSHOT", "INDEX", "TERM", "SIZE"}, [][]string{{
					dash(who), snap.GetId(), fmt.Sprint(snap.GetIndex()), fmt.Sprint(snap.GetTerm()), fmt.Sprint(snap.GetSizeBytes()),
				}})
			})
		},
	}
	cmd.Flags().StringVar(&node, "node", "", "member id to snapshot (default: the leader)")
	return cmd
}

// nodeHash is one member's line of "cluster hash".
type nodeHash struct {
	ID           string `json:"id"`
	GrpcAddress  string `json:"grpc_address"`
	AppliedIndex uint64 `json:"applied_index,string"`
	SHA256       string `json:"sha256"`
	Error        string `json:"error"`
}

func (a *app) clusterHashCmd() *cobra.Command {
	var node string
	cmd := &cobra.Command{
		Use:   "hash [--node ID]",
		Short: "Show the state digest of every member (or one)",
		Long: `Show the SHA-256 digest of each member's replicated state and the index it
was taken at. Members at the same applied index have equal digests. All
members are asked at once; --node asks one.

Table columns: NODE, APPLIED, SHA256, one line per member.

JSON:
  {"hashes": [{"id": "n1", "grpc_address": "host:port",
               "applied_index": "N", "sha256": "hex", "error": ""}, ...]}
applied_index is a decimal string as in the API's JSON; error is empty
unless the member did not answer, in which case the command exits 1 after
printing.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				targets, err := hashTargets(ctx, c, node)
				if err != nil {
					return err
				}
				hashes := collectHashes(ctx, c, targets)
				if err := a.printHashes(hashes); err != nil {
					return err
				}
				return hashFailures(hashes)
			})
		},
	}
	cmd.Flags().StringVar(&node, "node", "", "member id to ask (default: every member)")
	return cmd
}

// hashTargets lists the members to ask: all, or the one named.
func hashTargets(ctx context.Context, c *client.Client, node string) ([]*coordv1.Member, error) {
	ms, err := c.Members(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster hash: %w", err)
	}
	if node == "" {
		return ms.GetMembers(), nil
	}
	for _, m := range ms.GetMembers() {
		if m.GetId() == node {
			return []*coordv1.Member{m}, nil
		}
	}
	return nil, fmt.Errorf("cluster hash: no member %q", node)
}

// collectHashes asks every target concurrently.
func collectHashes(ctx context.Context, c *client.Client, targets []*coordv1.Member) []nodeHash {
	out := make([]nodeHash, len(targets))
	var wg sync.WaitGroup
	for i, m := range targets {
		out[i] = nodeHash{ID: m.GetId(), GrpcAddress: m.GetGrpcAddress()}
		if m.GetGrpcAddress() == "" {
			out[i].Error = "no gRPC address registered"
			continue
		}
		wg.Go(func() {
			h, err := c.StateHash(ctx, m.GetGrpcAddress())
			if err != nil {
				out[i].Error = oneLine(err.Error())
				return
			}
			out[i].AppliedIndex, out[i].SHA256 = h.GetAppliedIndex(), h.GetSha256()
		})
	}
	wg.Wait()
	return out
}

func (a *app) printHashes(hashes []nodeHash) error {
	if a.out().json {
		return a.out().value(struct {
			Hashes []nodeHash `json:"hashes"`
		}{hashes})
	}
	rows := make([][]string, 0, len(hashes))
	for _, h := range hashes {
		if h.Error != "" {
			rows = append(rows, []string{h.ID, "-", "error: " + h.Error})
			continue
		}
		rows = append(rows, []string{h.ID, strconv.FormatUint(h.AppliedIndex, 10), h.SHA256})
	}
	return a.out().table([]string{"NODE", "APPLIED", "SHA256"}, rows)
}

// hashFailures summarises members that did not answer.
func hashFailures(hashes []nodeHash) error {
	var failed []nodeHash
	for _, h := range hashes {
		if h.Error != "" {
			failed = append(failed, h)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return fmt.Errorf("cluster hash: %d of %d members did not answer (%s: %s)",
		len(failed), len(hashes), failed[0].ID, failed[0].Error)
}
