package locks

import (
	"bytes"
	"fmt"

	"google.golang.org/protobuf/proto"

	"coord/internal/cmdpb"
	"coord/internal/sm"
)

func (s *store) grantLeaseOp(req *cmdpb.LockGrantLease) (*cmdpb.LockLease, error) {
	if err := ValidateOwner(req.Owner); err != nil {
		return nil, sm.Reject(sm.RejectInvalidArgument, "%v", err)
	}
	if err := within("ttl", dur(req.Ttl), MinTTL, MaxTTL); err != nil {
		return nil, sm.Reject(sm.RejectInvalidArgument, "%v", err)
	}
	return s.grantLease(req.Owner, req.Ttl)
}

// grantLease creates a lease whose id is the current log index.
func (s *store) grantLease(owner string, ttl int64) (*cmdpb.LockLease, error) {
	l := &cmdpb.LockLease{Id: s.env.Index, Owner: owner, Ttl: ttl, ExpiresAt: s.env.Now + ttl, GrantedAt: s.env.Now}
	v, err := marshal(l)
	if err != nil {
		return nil, err
	}
	if err := s.tx.AscendingBucket(bucketLeases).Put(sm.U64(l.Id), v); err != nil { // ids are log indexes
		return nil, err
	}
	return l, s.setTimer(l.ExpiresAt, timerLease, "", l.Id)
}

func (s *store) keepAlive(req *cmdpb.LockKeepAlive) (*cmdpb.LockKeepAliveResult, error) {
	if len(req.LeaseIds) > MaxKeepAlive {
		return nil, sm.Reject(sm.RejectInvalidArgument, "%d leases in one keep-alive; the limit is %d", len(req.LeaseIds), MaxKeepAlive)
	}
	res := &cmdpb.LockKeepAliveResult{}
	for _, id := range req.LeaseIds {
		l, err := s.lease(id)
		if err != nil {
			return nil, err
		}
		if l == nil || l.ExpiresAt <= s.env.Now {
			if l != nil { // expired but not yet collected: let go of it now
				if err := s.endLease(l, false); err != nil {
					return nil, err
				}
			}
			res.Missing = append(res.Missing, id)
			continue
		}
		if err := s.clearTimer(l.ExpiresAt, timerLease, "", id); err != nil {
			return nil, err
		}
		l.ExpiresAt = s.env.Now + l.Ttl
		if err := s.put(bucketLeases, sm.U64(id), l); err != nil {
			return nil, err
		}
		if err := s.setTimer(l.ExpiresAt, timerLease, "", id); err != nil {
			return nil, err
		}
		res.Leases = append(res.Leases, l)
	}
	return res, nil
}

func (s *store) revoke(req *cmdpb.LockRevokeLease) (*cmdpb.LockRevokeLeaseResult, error) {
	l, err := s.lease(req.LeaseId)
	if err != nil || l == nil {
		return &cmdpb.LockRevokeLeaseResult{}, err
	}
	expired := l.ExpiresAt <= s.env.Now
	if err := s.endLease(l, !expired); err != nil {
		return nil, err
	}
	return &cmdpb.LockRevokeLeaseResult{Found: !expired}, nil
}

// endLease deletes a lease and lets go of everything held or awaited under
// it: grants end as released (revoked) or expired (otherwise, with the
// locks' lock-delay), queue entries are withdrawn, and waiters behind are
// granted.
func (s *store) endLease(l *cmdpb.LockLease, revoked bool) error {
	if err := s.clearTimer(l.ExpiresAt, timerLease, "", l.Id); err != nil {
		return err
	}
	if err := s.tx.Bucket(bucketLeases).Delete(sm.U64(l.Id)); err != nil {
		return err
	}
	if revoked {
		if s.revoked == nil {
			s.revoked = map[uint64]bool{}
		}
		s.revoked[l.Id] = true
	}
	prefix := sm.U64(l.Id)
	type entry struct {
		name string
		seq  uint64
	}
	var entries []entry
	c := s.tx.Bucket(bucketLeaseLocks).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		seq, _ := sm.DecodeU64(v)
		entries = append(entries, entry{name: string(k[8:]), seq: seq})
	}
	for _, e := range entries {
		if err := s.tx.Bucket(bucketLeaseLocks).Delete(sm.Join(prefix, []byte(e.name))); err != nil {
			return err
		}
		if e.seq != 0 {
			if err := s.removeWaiter(e.name, e.seq); err != nil {
				return err
			}
		}
		if _, err := s.settle(e.name); err != nil {
			return err
		}
	}
	return nil
}

func leaseLockKey(lease uint64, name string) []byte { return sm.Join(sm.U64(lease), []byte(name)) }

// trackLease records that lease holds (seq 0) or awaits (seq) lock name.
func (s *store) trackLease(lease uint64, name string, seq uint64) error {
	return s.tx.Bucket(bucketLeaseLocks).Put(leaseLockKey(lease, name), sm.U64(seq))
}

func (s *store) untrackLease(lease uint64, name string) error {
	return s.tx.Bucket(bucketLeaseLocks).Delete(leaseLockKey(lease, name))
}

// waiterOf returns the queue entry of lease on lock name (0: none).
func (s *store) waiterOf(lease uint64, name string) uint64 {
	v := s.tx.Bucket(bucketLeaseLocks).Get(leaseLockKey(lease, name))
	seq, _ := sm.DecodeU64(v)
	return seq
}

// LeaderChanged implements sm.LeaderObserver. Keep-alives cannot be applied
// while there is no leader, so leases must not expire because of a failover:
// every lease still alive when the last leader's last entry was applied
// (expiry after prevNow) is renewed for a full TTL from the new leader's
// time. A lease whose holder has died is thus kept for at most one more TTL
// per leader change.
func (Machine) LeaderChanged(env sm.Env, tx sm.Tx, prevNow int64) error {
	s := &store{env: env, tx: tx}
	var renew []*cmdpb.LockLease
	c := tx.Bucket(bucketLeases).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var l cmdpb.LockLease
		if err := proto.Unmarshal(v, &l); err != nil {
			return fmt.Errorf("corrupt lease %x: %w", k, err)
		}
		if l.ExpiresAt > prevNow && l.ExpiresAt < env.Now+l.Ttl {
			renew = append(renew, &l)
		}
	}
	for _, l := range renew {
		if err := s.clearTimer(l.ExpiresAt, timerLease, "", l.Id); err != nil {
			return err
		}
		l.ExpiresAt = env.Now + l.Ttl
		if err := s.put(bucketLeases, sm.U64(l.Id), l); err != nil {
			return err
		}
		if err := s.setTimer(l.ExpiresAt, timerLease, "", l.Id); err != nil {
			return err
		}
	}
	return nil
}
