//go:build chaosbug_memfence

package locks

import "sync/atomic"

// memToken is the last token handed out by this process.
var memToken atomic.Uint64

// nextToken is a seeded bug for the chaos suite's negative control: the
// token counter lives in process memory instead of the replicated state, so
// it restarts with the process and differs between replicas.
func (s *store) nextToken() (uint64, error) { return memToken.Add(1), nil }
