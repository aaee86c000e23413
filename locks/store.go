package locks

import (
	"bytes"
	"fmt"

	"google.golang.org/protobuf/proto"

	"coord/internal/cmdpb"
	"coord/internal/sm"
)

// Buckets.
const (
	bucketMeta       = "meta"        // "last_token" -> u64
	bucketLeases     = "leases"      // lease id -> LockLease
	bucketLeaseLocks = "lease_locks" // lease id, lock name -> empty
	bucketLocks      = "locks"       // name -> LockState
	bucketWaiters    = "waiters"     // name, 0, seq -> LockWaiter
	bucketEvents     = "events"      // name, 0, revision, n -> LockEvent
	bucketTimers     = "timers"      // at, kind, name, 0, arg -> empty
)

// Timer kinds, in the order they fire at the same instant.
const (
	timerLease byte = 1 // a lease expires (name empty, arg = lease id)
	timerWait  byte = 2 // a waiter's deadline (arg = waiter seq)
	timerHold  byte = 3 // a holder's max-hold (arg = token)
	timerDelay byte = 4 // a lock-delay ends
	timerIdle  byte = 5 // an idle lock may be collected
)

var keyLastToken = []byte("last_token")

// store wraps a transaction with typed access to the lock machine's records.
type store struct {
	env   sm.Env
	tx    sm.Tx
	evSeq map[string]uint64 // events recorded per lock in this entry
	// revoked lists leases revoked in this entry: their grants end as
	// released, not expired (no lock-delay).
	revoked map[uint64]bool
}

func marshal(m proto.Message) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
}

func (s *store) put(bucket string, key []byte, m proto.Message) error {
	v, err := marshal(m)
	if err != nil {
		return err
	}
	return s.tx.Bucket(bucket).Put(key, v)
}

func (s *store) lease(id uint64) (*cmdpb.LockLease, error) {
	v := s.tx.Bucket(bucketLeases).Get(sm.U64(id))
	if v == nil {
		return nil, nil
	}
	var l cmdpb.LockLease
	if err := proto.Unmarshal(v, &l); err != nil {
		return nil, fmt.Errorf("corrupt lease %d: %w", id, err)
	}
	return &l, nil
}

// liveLease returns the lease if it exists and has not expired at env.Now.
func (s *store) liveLease(id uint64) (*cmdpb.LockLease, error) {
	l, err := s.lease(id)
	if err != nil || l == nil || l.ExpiresAt <= s.env.Now {
		return nil, err
	}
	return l, nil
}

func (s *store) lock(name string) (*cmdpb.LockState, error) {
	v := s.tx.Bucket(bucketLocks).Get([]byte(name))
	if v == nil {
		return nil, nil
	}
	var st cmdpb.LockState
	if err := proto.Unmarshal(v, &st); err != nil {
		return nil, fmt.Errorf("corrupt lock %q: %w", name, err)
	}
	return &st, nil
}

func (s *store) saveLock(st *cmdpb.LockState) error {
	return s.put(bucketLocks, []byte(st.Name), st)
}

func waiterPrefix(name string) []byte { return append([]byte(name), 0) }

func waiterKey(name string, seq uint64) []byte { return sm.Join(waiterPrefix(name), sm.U64(seq)) }

// waiters returns a lock's queue in order.
func (s *store) waiters(name string) ([]*cmdpb.LockWaiter, error) {
	var out []*cmdpb.LockWaiter
	prefix := waiterPrefix(name)
	c := s.tx.Bucket(bucketWaiters).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var w cmdpb.LockWaiter
		if err := proto.Unmarshal(v, &w); err != nil {
			return nil, fmt.Errorf("corrupt waiter %q: %w", k, err)
		}
		out = append(out, &w)
	}
	return out, nil
}

// firstWaiter returns the head of a lock's queue.
func (s *store) firstWaiter(name string) (*cmdpb.LockWaiter, error) {
	prefix := waiterPrefix(name)
	k, v := s.tx.Bucket(bucketWaiters).Cursor().Seek(prefix)
	if k == nil || !bytes.HasPrefix(k, prefix) {
		return nil, nil
	}
	var w cmdpb.LockWaiter
	if err := proto.Unmarshal(v, &w); err != nil {
		return nil, fmt.Errorf("corrupt waiter %q: %w", k, err)
	}
	return &w, nil
}

func timerKey(at int64, kind byte, name string, arg uint64) []byte {
	return sm.Join(sm.I64(at), []byte{kind}, []byte(name), []byte{0}, sm.U64(arg))
}

func (s *store) setTimer(at int64, kind byte, name string, arg uint64) error {
	return s.tx.Bucket(bucketTimers).Put(timerKey(at, kind, name, arg), nil)
}

func (s *store) clearTimer(at int64, kind byte, name string, arg uint64) error {
	return s.tx.Bucket(bucketTimers).Delete(timerKey(at, kind, name, arg))
}

// timer is a decoded timer key.
type timer struct {
	at   int64
	kind byte
	name string
	arg  uint64
}

func parseTimer(k []byte) (timer, error) {
	if len(k) < 8+1+1+8 {
		return timer{}, fmt.Errorf("corrupt timer key %x", k)
	}
	at, _ := sm.DecodeU64(k[:8])
	arg, _ := sm.DecodeU64(k[len(k)-8:])
	return timer{at: int64(at), kind: k[8], name: string(k[9 : len(k)-9]), arg: arg}, nil
}

// event records a change of a lock for watchers, keeping the newest
// EventsPerLock, and notifies local watchers.
func (s *store) event(st *cmdpb.LockState, typ cmdpb.LockEventType, token, lease uint64, owner string) error {
	if s.evSeq == nil {
		s.evSeq = map[string]uint64{}
	}
	n := s.evSeq[st.Name]
	s.evSeq[st.Name] = n + 1
	prefix := waiterPrefix(st.Name)
	ev := &cmdpb.LockEvent{Revision: s.env.Index, Type: typ, Token: token, LeaseId: lease, Owner: owner, Time: s.env.Now}
	if err := s.put(bucketEvents, sm.Join(prefix, sm.U64(s.env.Index), sm.U64(n)), ev); err != nil {
		return err
	}
	st.Revision = s.env.Index
	s.tx.Notify(topic(st.Name))
	if lease != 0 {
		s.tx.Notify(LeaseTopic(st.Name, lease))
	}
	return s.trimEvents(st)
}

// trimEvents bounds a lock's recorded events: once it has more than
// 2*EventsPerLock, the oldest are deleted down to EventsPerLock. Deleting
// in bursts rather than one per event keeps most entries to one page of
// the lock's events, the one holding the newest, instead of two.
func (s *store) trimEvents(st *cmdpb.LockState) error {
	prefix := waiterPrefix(st.Name)
	c := s.tx.Bucket(bucketEvents).Cursor()
	if st.EventsKept == 0 {
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			st.EventsKept++
		}
	} else {
		st.EventsKept++
	}
	if st.EventsKept <= 2*EventsPerLock {
		return nil
	}
	for ; st.EventsKept > EventsPerLock; st.EventsKept-- {
		k, _ := c.Seek(prefix)
		if k == nil || !bytes.HasPrefix(k, prefix) {
			st.EventsKept = 0 // miscounted: the next event counts them again
			break
		}
		rev, _ := sm.DecodeU64(k[len(prefix) : len(prefix)+8])
		st.TrimmedThrough = max(st.TrimmedThrough, rev)
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

// deleteEvents removes every event of a lock.
func (s *store) deleteEvents(name string) error {
	prefix := waiterPrefix(name)
	c := s.tx.Bucket(bucketEvents).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

// Topic is the change-notification topic of a lock.
func topic(name string) string { return "lock/" + name }

// Topic returns the notification topic that changes of lock name wake.
func Topic(name string) string { return topic(name) }
