//go:build !chaosbug_earlyack

package node

import "github.com/hashicorp/raft"

// applyFailed reports a command whose apply future failed.
func (n *Node) applyFailed(_ raft.ApplyFuture, _ Proposal, err error) (*Applied, error) {
	return nil, n.classify(err)
}
