//go:build !chaosbug_staleread

package node

import "context"

// confirmLeadership confirms with a quorum that this node still led term
// after the call began (one coalesced round, see verifier).
func (n *Node) confirmLeadership(ctx context.Context, term uint64) error {
	return n.verifier.verify(ctx, term)
}
