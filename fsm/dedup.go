//go:build !chaosbug_nodedup

package fsm

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"coord/internal/cmdpb"
	"coord/internal/sm"
)

// result returns the stored result of a client's request, or nil.
func (s *sessions) result(client, seq uint64) (*cmdpb.Result, error) {
	v := s.results.Get(sm.Join(sm.U64(client), sm.U64(seq)))
	if v == nil {
		return nil, nil
	}
	var r cmdpb.Result
	if err := proto.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("corrupt result %d/%d: %w", client, seq, err)
	}
	return &r, nil
}
