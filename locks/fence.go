//go:build !chaosbug_nofence

package locks

import (
	"coord/internal/sm"
)

// CheckFence implements sm.Fencer.
func (Machine) CheckFence(env sm.Env, tx sm.Tx, name string, token uint64) error {
	s := &store{env: env, tx: tx}
	st, err := s.lock(name)
	if err != nil {
		return err
	}
	var current []uint64
	if st != nil {
		for _, h := range st.Holders {
			ok, err := s.holderLive(h)
			if err != nil {
				return err
			}
			if ok && h.Token == token {
				return nil
			}
			if ok {
				current = append(current, h.Token)
			}
		}
	}
	if len(current) == 0 {
		return sm.Reject(sm.RejectFenced, "fenced: lock %q is not held; token %d is no longer valid", name, token)
	}
	return sm.Reject(sm.RejectFenced, "fenced: token %d is not current for lock %q (current: %v)", token, name, current)
}
