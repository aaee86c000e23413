//go:build chaosbug_nodedup

package fsm

import "coord/internal/cmdpb"

// result is a seeded bug for the chaos suite's negative control: stored
// results are never found, so a retried request is applied again.
func (s *sessions) result(uint64, uint64) (*cmdpb.Result, error) { return nil, nil }
