//go:build chaosbug_nofence

package locks

import "coord/internal/sm"

// CheckFence implements sm.Fencer. It is a seeded bug for the chaos
// suite's negative control: every fence passes, so a holder whose lease
// expired still writes.
func (Machine) CheckFence(sm.Env, sm.Tx, string, uint64) error { return nil }
