//go:build chaosbug_earlyack

package node

import (
	"errors"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"coord/internal/cmdpb"
	"coord/internal/sm"
)

// applyFailed is a seeded bug for the chaos suite's negative control: a
// command that entered the leader's log but whose commit is unknown
// (leadership lost) is acknowledged as applied, although the next leader
// may discard it.
func (n *Node) applyFailed(f raft.ApplyFuture, p Proposal, err error) (*Applied, error) {
	if !errors.Is(err, raft.ErrLeadershipLost) {
		return nil, n.classify(err)
	}
	var body []byte
	if p.Machine == sm.MachineKV && p.Op == 1 {
		body, _ = proto.Marshal(&cmdpb.KVPutResult{Succeeded: true})
	}
	return &Applied{Result: &cmdpb.Result{Body: body}, Index: f.Index(), Now: n.cfg.Clock()}, nil
}
