//go:build chaosbug_verifyleader

package node

// round is a seeded bug for the chaos suite's negative control: it confirms
// leadership with raft.VerifyLeader alone, which also counts replies to
// heartbeats sent before the round began, so a deposed leader that receives
// delayed replies confirms itself.
func (v *verifier) round(uint64) error { return v.r.VerifyLeader().Error() }
