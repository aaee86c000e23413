package locks

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"coord/internal/cmdpb"
	"coord/internal/sm"
)

// Operations.
const (
	OpGrantLease  uint32 = 1 // cmdpb.LockGrantLease -> cmdpb.LockLease
	OpKeepAlive   uint32 = 2 // cmdpb.LockKeepAlive -> cmdpb.LockKeepAliveResult
	OpRevokeLease uint32 = 3 // cmdpb.LockRevokeLease -> cmdpb.LockRevokeLeaseResult
	OpAcquire     uint32 = 4 // cmdpb.LockAcquire -> cmdpb.LockAcquireResult
	OpRelease     uint32 = 5 // cmdpb.LockRelease -> cmdpb.LockReleaseResult
	OpAbandon     uint32 = 6 // cmdpb.LockAbandon -> cmdpb.LockAbandonResult
)

// Machine is the lock primitive.
type Machine struct{}

var (
	_ sm.Machine        = Machine{}
	_ sm.Fencer         = Machine{}
	_ sm.LeaderObserver = Machine{}
)

// ID implements sm.Machine.
func (Machine) ID() uint32 { return sm.MachineLocks }

// Name implements sm.Machine.
func (Machine) Name() string { return "locks" }

// Apply implements sm.Machine.
func (Machine) Apply(env sm.Env, tx sm.Tx, op uint32, body []byte) ([]byte, error) {
	s := &store{env: env, tx: tx}
	var res proto.Message
	var err error
	switch op {
	case OpGrantLease:
		var req cmdpb.LockGrantLease
		if err = proto.Unmarshal(body, &req); err == nil {
			res, err = s.grantLeaseOp(&req)
		}
	case OpKeepAlive:
		var req cmdpb.LockKeepAlive
		if err = proto.Unmarshal(body, &req); err == nil {
			res, err = s.keepAlive(&req)
		}
	case OpRevokeLease:
		var req cmdpb.LockRevokeLease
		if err = proto.Unmarshal(body, &req); err == nil {
			res, err = s.revoke(&req)
		}
	case OpAcquire:
		var req cmdpb.LockAcquire
		if err = proto.Unmarshal(body, &req); err == nil {
			res, err = s.acquire(&req)
		}
	case OpRelease:
		var req cmdpb.LockRelease
		if err = proto.Unmarshal(body, &req); err == nil {
			res, err = s.release(&req)
		}
	case OpAbandon:
		var req cmdpb.LockAbandon
		if err = proto.Unmarshal(body, &req); err == nil {
			res, err = s.abandon(&req)
		}
	default:
		return nil, fmt.Errorf("unknown locks op %d", op)
	}
	if err != nil {
		return nil, err
	}
	return marshal(res)
}

// holderLive reports whether a grant is still held at env.Now.
func (s *store) holderLive(h *cmdpb.LockHolder) (bool, error) {
	if h.HoldUntil != 0 && h.HoldUntil <= s.env.Now {
		return false, nil
	}
	l, err := s.liveLease(h.LeaseId)
	return l != nil, err
}

// Tick implements sm.Machine: it fires due timers in time order.
func (Machine) Tick(env sm.Env, tx sm.Tx, budget int) (int, error) {
	s := &store{env: env, tx: tx}
	used := 0
	c := tx.Bucket(bucketTimers).Cursor()
	for k, _ := c.First(); k != nil && used < budget; k, _ = c.First() {
		t, err := parseTimer(k)
		if err != nil {
			return used, err
		}
		if t.at > env.Now {
			break
		}
		if err := c.Delete(); err != nil {
			return used, err
		}
		used++
		if err := s.fire(t); err != nil {
			return used, err
		}
	}
	return used, nil
}

// NextDue implements sm.Machine.
func (Machine) NextDue(tx sm.Tx) (int64, bool) {
	k, _ := tx.Bucket(bucketTimers).Cursor().First()
	if k == nil {
		return 0, false
	}
	t, err := parseTimer(k)
	if err != nil {
		return 0, false
	}
	return t.at, true
}

func (s *store) fire(t timer) error {
	switch t.kind {
	case timerLease:
		l, err := s.lease(t.arg)
		if err != nil || l == nil || l.ExpiresAt > s.env.Now {
			return err
		}
		return s.endLease(l, false)
	case timerWait:
		return s.expireWaiter(t.name, t.arg)
	case timerHold, timerDelay:
		_, err := s.settle(t.name)
		return err
	case timerIdle:
		return s.collect(t.name)
	default:
		return fmt.Errorf("unknown timer kind %d", t.kind)
	}
}

func dur(ns int64) time.Duration { return time.Duration(ns) }
