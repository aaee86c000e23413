//go:build chaosbug_staleread

package node

import (
	"context"

	"github.com/hashicorp/raft"
)

// confirmLeadership is a seeded bug for the chaos suite's negative
// control: it trusts this node's own view of its role instead of asking a
// quorum, so a paused or cut-off old leader serves stale reads.
func (n *Node) confirmLeadership(context.Context, uint64) error {
	if n.raft.State() != raft.Leader {
		return raft.ErrNotLeader
	}
	return nil
}
