//go:build !chaosbug_staleread

package node

import "context"

// confirmLeadership confirms with a quorum that this node still leads
// (one coalesced VerifyLeader round).
func (n *Node) confirmLeadership(ctx context.Context) error { return n.verifier.verify(ctx) }
