package locks

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"coord/internal/cmdpb"
	"coord/internal/sm"
)

// ValidateAcquire reports what is wrong with an acquire, or nil.
func ValidateAcquire(req *cmdpb.LockAcquire) error {
	if err := ValidateName(req.Name); err != nil {
		return err
	}
	if req.LeaseId == 0 {
		if err := ValidateOwner(req.Owner); err != nil {
			return err
		}
		if err := within("ttl", dur(req.Ttl), MinTTL, MaxTTL); err != nil {
			return err
		}
	}
	if req.Limit < 1 || req.Limit > MaxLimit {
		return fmt.Errorf("limit %d is outside [1, %d]", req.Limit, MaxLimit)
	}
	if err := within("wait", dur(req.Wait), 0, MaxWait); err != nil {
		return err
	}
	if err := within("lock delay", dur(req.LockDelay), 0, MaxLockDelay); err != nil {
		return err
	}
	if req.MaxHold != 0 {
		if err := within("max hold", dur(req.MaxHold), MinMaxHold, MaxMaxHold); err != nil {
			return err
		}
	}
	return nil
}

// precheck refuses an acquire before anything is written: bad input, an
// unknown lease, a limit that differs from the lock's, or a full queue.
func (s *store) precheck(req *cmdpb.LockAcquire) error {
	if err := ValidateAcquire(req); err != nil {
		return sm.Reject(sm.RejectInvalidArgument, "%v", err)
	}
	if req.LeaseId != 0 {
		l, err := s.liveLease(req.LeaseId)
		if err != nil {
			return err
		}
		if l == nil {
			return sm.Reject(sm.RejectNotFound, "lease %d does not exist or has expired", req.LeaseId)
		}
	}
	st, err := s.lock(req.Name)
	if err != nil || st == nil {
		return err
	}
	live := 0
	for _, h := range st.Holders {
		ok, err := s.holderLive(h)
		if err != nil {
			return err
		}
		if ok {
			live++
		}
	}
	if (live > 0 || st.Waiters > 0) && st.Limit != req.Limit {
		return sm.Reject(sm.RejectFailedPrecondition, "lock %q admits %d holders while it is in use; this request asks for %d", req.Name, st.Limit, req.Limit)
	}
	if st.Waiters >= MaxWaiters && req.Wait > 0 {
		return sm.Reject(sm.RejectResourceExhausted, "lock %q already has %d waiters; the limit is %d", req.Name, st.Waiters, MaxWaiters)
	}
	return nil
}

func (s *store) acquire(req *cmdpb.LockAcquire) (*cmdpb.LockAcquireResult, error) {
	if err := s.precheck(req); err != nil {
		return nil, err
	}
	st, err := s.settle(req.Name)
	if err != nil {
		return nil, err
	}
	var lease *cmdpb.LockLease
	if req.LeaseId != 0 {
		lease, err = s.liveLease(req.LeaseId)
	} else {
		lease, err = s.grantLease(req.Owner, req.Ttl)
	}
	if err != nil {
		return nil, err
	}
	if st == nil || (len(st.Holders) == 0 && st.Waiters == 0) {
		st = s.reset(st, req)
	}
	res := &cmdpb.LockAcquireResult{Lease: lease, State: st}
	for _, h := range st.Holders {
		if h.LeaseId == lease.Id { // already held under this lease
			res.Outcome, res.Holder = cmdpb.LockAcquireOutcome_LOCK_ACQUIRE_OUTCOME_GRANTED, h
			return res, nil
		}
	}
	if seq := s.waiterOf(lease.Id, req.Name); seq != 0 { // already queued
		res.Outcome, res.WaiterSeq = cmdpb.LockAcquireOutcome_LOCK_ACQUIRE_OUTCOME_QUEUED, seq
		return res, nil
	}
	switch {
	case len(st.Holders) < int(st.Limit) && st.Waiters == 0 && s.env.Now >= st.DelayUntil:
		h, err := s.grant(st, lease)
		if err != nil {
			return nil, err
		}
		res.Outcome, res.Holder = cmdpb.LockAcquireOutcome_LOCK_ACQUIRE_OUTCOME_GRANTED, h
	case req.Wait == 0:
		res.Outcome = cmdpb.LockAcquireOutcome_LOCK_ACQUIRE_OUTCOME_BUSY
	default:
		seq, err := s.enqueue(st, lease, req.Wait)
		if err != nil {
			return nil, err
		}
		res.Outcome, res.WaiterSeq = cmdpb.LockAcquireOutcome_LOCK_ACQUIRE_OUTCOME_QUEUED, seq
	}
	return res, s.finish(st)
}

// reset (re)creates an idle lock's record with the request's settings.
func (s *store) reset(st *cmdpb.LockState, req *cmdpb.LockAcquire) *cmdpb.LockState {
	if st == nil {
		st = &cmdpb.LockState{Name: req.Name}
	}
	st.Limit, st.LockDelay, st.MaxHold = req.Limit, req.LockDelay, req.MaxHold
	return st
}

// grant makes lease a holder of st with a fresh fencing token.
func (s *store) grant(st *cmdpb.LockState, lease *cmdpb.LockLease) (*cmdpb.LockHolder, error) {
	token, err := s.nextToken()
	if err != nil {
		return nil, err
	}
	h := &cmdpb.LockHolder{Token: token, LeaseId: lease.Id, Owner: lease.Owner, GrantedAt: s.env.Now}
	if st.MaxHold > 0 {
		h.HoldUntil = s.env.Now + st.MaxHold
		if err := s.setTimer(h.HoldUntil, timerHold, st.Name, token); err != nil {
			return nil, err
		}
	}
	st.Holders = append(st.Holders, h)
	if err := s.trackLease(lease.Id, st.Name, 0); err != nil {
		return nil, err
	}
	return h, s.event(st, cmdpb.LockEventType_LOCK_EVENT_TYPE_GRANTED, token, lease.Id, lease.Owner)
}

func (s *store) enqueue(st *cmdpb.LockState, lease *cmdpb.LockLease, wait int64) (uint64, error) {
	w := &cmdpb.LockWaiter{Seq: s.env.Index, LeaseId: lease.Id, Owner: lease.Owner, EnqueuedAt: s.env.Now, Deadline: s.env.Now + wait}
	if err := s.put(bucketWaiters, waiterKey(st.Name, w.Seq), w); err != nil {
		return 0, err
	}
	st.Waiters++
	if err := s.setTimer(w.Deadline, timerWait, st.Name, w.Seq); err != nil {
		return 0, err
	}
	if err := s.trackLease(lease.Id, st.Name, w.Seq); err != nil {
		return 0, err
	}
	return w.Seq, s.event(st, cmdpb.LockEventType_LOCK_EVENT_TYPE_QUEUED, 0, lease.Id, lease.Owner)
}

func (s *store) release(req *cmdpb.LockRelease) (*cmdpb.LockReleaseResult, error) {
	if err := ValidateName(req.Name); err != nil {
		return nil, sm.Reject(sm.RejectInvalidArgument, "%v", err)
	}
	if req.Token == 0 {
		return nil, sm.Reject(sm.RejectInvalidArgument, "token must be non-zero")
	}
	st, err := s.settle(req.Name)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return &cmdpb.LockReleaseResult{Reason: fmt.Sprintf("lock %q is not held", req.Name)}, nil
	}
	for i, h := range st.Holders {
		if h.Token != req.Token {
			continue
		}
		if req.LeaseId != 0 && h.LeaseId != req.LeaseId {
			return &cmdpb.LockReleaseResult{Reason: fmt.Sprintf("token %d of lock %q belongs to lease %d, not %d", req.Token, req.Name, h.LeaseId, req.LeaseId)}, nil
		}
		if err := s.dropHolder(st, i, cmdpb.LockEventType_LOCK_EVENT_TYPE_RELEASED); err != nil {
			return nil, err
		}
		if err := s.grantWaiters(st); err != nil {
			return nil, err
		}
		return &cmdpb.LockReleaseResult{Released: true}, s.finish(st)
	}
	return &cmdpb.LockReleaseResult{Reason: fmt.Sprintf("lock %q is not held with token %d (current tokens: %v)", req.Name, req.Token, tokens(st))}, nil
}

func tokens(st *cmdpb.LockState) []uint64 {
	out := []uint64{}
	for _, h := range st.Holders {
		out = append(out, h.Token)
	}
	return out
}

func (s *store) abandon(req *cmdpb.LockAbandon) (*cmdpb.LockAbandonResult, error) {
	if err := ValidateName(req.Name); err != nil {
		return nil, sm.Reject(sm.RejectInvalidArgument, "%v", err)
	}
	st, err := s.settle(req.Name)
	if err != nil || st == nil {
		return &cmdpb.LockAbandonResult{}, err
	}
	res := &cmdpb.LockAbandonResult{}
	if seq := s.waiterOf(req.LeaseId, req.Name); seq != 0 {
		if err := s.untrackLease(req.LeaseId, req.Name); err != nil {
			return nil, err
		}
		if err := s.removeWaiter(req.Name, seq); err != nil {
			return nil, err
		}
		res.Dequeued = true
		st, err = s.lock(req.Name) // removeWaiter saved the record
		if err != nil {
			return nil, err
		}
	}
	for i, h := range st.Holders {
		if h.LeaseId == req.LeaseId {
			if err := s.dropHolder(st, i, cmdpb.LockEventType_LOCK_EVENT_TYPE_RELEASED); err != nil {
				return nil, err
			}
			res.Released = true
			break
		}
	}
	if err := s.grantWaiters(st); err != nil {
		return nil, err
	}
	return res, s.finish(st)
}

// dropHolder removes holder i, recording why.
func (s *store) dropHolder(st *cmdpb.LockState, i int, why cmdpb.LockEventType) error {
	h := st.Holders[i]
	st.Holders = append(st.Holders[:i], st.Holders[i+1:]...)
	if h.HoldUntil != 0 {
		if err := s.clearTimer(h.HoldUntil, timerHold, st.Name, h.Token); err != nil {
			return err
		}
	}
	if s.waiterOf(h.LeaseId, st.Name) == 0 {
		if err := s.untrackLease(h.LeaseId, st.Name); err != nil {
			return err
		}
	}
	if why == cmdpb.LockEventType_LOCK_EVENT_TYPE_EXPIRED && st.LockDelay > 0 {
		until := s.env.Now + st.LockDelay
		if until > st.DelayUntil {
			st.DelayUntil = until
			if err := s.setTimer(until, timerDelay, st.Name, 0); err != nil {
				return err
			}
		}
	}
	return s.event(st, why, h.Token, h.LeaseId, h.Owner)
}

// settle applies everything due on one lock at env.Now: grants whose lease
// or max-hold ended are dropped, and waiters are granted where slots are
// free. It returns the lock's record after saving it (nil: no record).
func (s *store) settle(name string) (*cmdpb.LockState, error) {
	st, err := s.lock(name)
	if err != nil || st == nil {
		return nil, err
	}
	for i := 0; i < len(st.Holders); {
		h := st.Holders[i]
		live, err := s.holderLive(h)
		if err != nil {
			return nil, err
		}
		if live {
			i++
			continue
		}
		why := cmdpb.LockEventType_LOCK_EVENT_TYPE_EXPIRED
		if s.revoked[h.LeaseId] {
			why = cmdpb.LockEventType_LOCK_EVENT_TYPE_RELEASED
		}
		if err := s.dropHolder(st, i, why); err != nil {
			return nil, err
		}
	}
	if err := s.grantWaiters(st); err != nil {
		return nil, err
	}
	return st, s.finish(st)
}

// grantWaiters grants queued leases, first come first served, while slots
// are free and no lock-delay is in force.
func (s *store) grantWaiters(st *cmdpb.LockState) error {
	for len(st.Holders) < int(st.Limit) && s.env.Now >= st.DelayUntil && st.Waiters > 0 {
		w, err := s.firstWaiter(st.Name)
		if err != nil {
			return err
		}
		if w == nil {
			return fmt.Errorf("lock %q counts %d waiters but has none", st.Name, st.Waiters)
		}
		if err := s.popWaiter(st, w); err != nil {
			return err
		}
		lease, err := s.liveLease(w.LeaseId)
		if err != nil {
			return err
		}
		if lease == nil || w.Deadline <= s.env.Now {
			if err := s.untrackLease(w.LeaseId, st.Name); err != nil {
				return err
			}
			if err := s.event(st, cmdpb.LockEventType_LOCK_EVENT_TYPE_WAIT_ENDED, 0, w.LeaseId, w.Owner); err != nil {
				return err
			}
			continue
		}
		if _, err := s.grant(st, lease); err != nil {
			return err
		}
	}
	return nil
}

// popWaiter deletes a queue entry and its deadline timer.
func (s *store) popWaiter(st *cmdpb.LockState, w *cmdpb.LockWaiter) error {
	if err := s.tx.Bucket(bucketWaiters).Delete(waiterKey(st.Name, w.Seq)); err != nil {
		return err
	}
	st.Waiters--
	return s.clearTimer(w.Deadline, timerWait, st.Name, w.Seq)
}

// removeWaiter withdraws a queue entry (lease ended or wait abandoned) and
// saves the lock.
func (s *store) removeWaiter(name string, seq uint64) error {
	v := s.tx.Bucket(bucketWaiters).Get(waiterKey(name, seq))
	if v == nil {
		return nil
	}
	var w cmdpb.LockWaiter
	if err := proto.Unmarshal(v, &w); err != nil {
		return fmt.Errorf("corrupt waiter %q/%d: %w", name, seq, err)
	}
	st, err := s.lock(name)
	if err != nil {
		return err
	}
	if st == nil {
		return fmt.Errorf("waiter %d of missing lock %q", seq, name)
	}
	if err := s.popWaiter(st, &w); err != nil {
		return err
	}
	if err := s.event(st, cmdpb.LockEventType_LOCK_EVENT_TYPE_WAIT_ENDED, 0, w.LeaseId, w.Owner); err != nil {
		return err
	}
	return s.saveLock(st)
}

// expireWaiter handles a waiter's deadline timer.
func (s *store) expireWaiter(name string, seq uint64) error {
	v := s.tx.Bucket(bucketWaiters).Get(waiterKey(name, seq))
	if v == nil {
		return nil
	}
	var w cmdpb.LockWaiter
	if err := proto.Unmarshal(v, &w); err != nil {
		return fmt.Errorf("corrupt waiter %q/%d: %w", name, seq, err)
	}
	if err := s.untrackLease(w.LeaseId, name); err != nil {
		return err
	}
	if err := s.removeWaiter(name, seq); err != nil {
		return err
	}
	_, err := s.settle(name)
	return err
}

// finish saves a lock, scheduling the collection of an idle one.
func (s *store) finish(st *cmdpb.LockState) error {
	idle := len(st.Holders) == 0 && st.Waiters == 0
	switch {
	case !idle:
		st.IdleSince = 0
	case st.IdleSince == 0:
		st.IdleSince = s.env.Now
		if err := s.setTimer(s.env.Now+int64(IdleRetention), timerIdle, st.Name, 0); err != nil {
			return err
		}
	}
	return s.saveLock(st)
}

// collect deletes a lock that has stayed idle for IdleRetention.
func (s *store) collect(name string) error {
	st, err := s.lock(name)
	if err != nil || st == nil {
		return err
	}
	if len(st.Holders) > 0 || st.Waiters > 0 || st.IdleSince == 0 ||
		st.IdleSince+int64(IdleRetention) > s.env.Now || st.DelayUntil > s.env.Now {
		return nil // active again; a later idle period schedules its own collection
	}
	if err := s.tx.Bucket(bucketLocks).Delete([]byte(name)); err != nil {
		return err
	}
	return s.deleteEvents(name)
}
