package locks

import (
	"bytes"
	"fmt"

	"google.golang.org/protobuf/proto"

	"coord/internal/cmdpb"
	"coord/internal/sm"
)

// View is a lock as seen at env.Now: only live grants and waiters.
type View struct {
	State   *cmdpb.LockState
	Holders []*cmdpb.LockHolder
	Leases  map[uint64]*cmdpb.LockLease // by lease id, for holders and waiters
	Waiters []*cmdpb.LockWaiter
}

// Get returns a lock's view, or nil when the lock has no record.
func Get(env sm.Env, tx sm.Tx, name string) (*View, error) {
	s := &store{env: env, tx: tx}
	st, err := s.lock(name)
	if err != nil || st == nil {
		return nil, err
	}
	v := &View{State: st, Leases: map[uint64]*cmdpb.LockLease{}}
	for _, h := range st.Holders {
		ok, err := s.holderLive(h)
		if err != nil {
			return nil, err
		}
		if ok {
			v.Holders = append(v.Holders, h)
			v.Leases[h.LeaseId], _ = s.lease(h.LeaseId)
		}
	}
	ws, err := s.waiters(name)
	if err != nil {
		return nil, err
	}
	for _, w := range ws {
		l, err := s.liveLease(w.LeaseId)
		if err != nil {
			return nil, err
		}
		if l != nil && w.Deadline > env.Now {
			v.Waiters = append(v.Waiters, w)
			v.Leases[w.LeaseId] = l
		}
	}
	return v, nil
}

// Holder returns lease's live grant of lock name, if any, and whether lease
// still waits in the lock's queue.
// It reads only the records of that lease, however long the queue.
func Holder(env sm.Env, tx sm.Tx, name string, lease uint64) (*cmdpb.LockHolder, bool, error) {
	s := &store{env: env, tx: tx}
	st, err := s.lock(name)
	if err != nil || st == nil {
		return nil, false, err
	}
	for _, h := range st.Holders {
		if h.LeaseId != lease {
			continue
		}
		ok, err := s.holderLive(h)
		if err != nil {
			return nil, false, err
		}
		if ok {
			return h, false, nil
		}
	}
	seq := s.waiterOf(lease, name)
	if seq == 0 {
		return nil, false, nil
	}
	v := tx.Bucket(bucketWaiters).Get(waiterKey(name, seq))
	if v == nil {
		return nil, false, nil
	}
	var w cmdpb.LockWaiter
	if err := proto.Unmarshal(v, &w); err != nil {
		return nil, false, fmt.Errorf("corrupt waiter %q/%d: %w", name, seq, err)
	}
	l, err := s.liveLease(lease)
	return nil, err == nil && l != nil && w.Deadline > env.Now, err
}

// List returns the views of locks whose names start with prefix, after the
// name after, at most limit of them, and whether more remain.
func List(env sm.Env, tx sm.Tx, prefix, after string, limit int) ([]*View, bool, error) {
	var out []*View
	c := tx.Bucket(bucketLocks).Cursor()
	start := []byte(prefix)
	if after != "" && after >= prefix {
		start = append([]byte(after), 0)
	}
	for k, _ := c.Seek(start); k != nil && bytes.HasPrefix(k, []byte(prefix)); k, _ = c.Next() {
		if len(out) == limit {
			return out, true, nil
		}
		v, err := Get(env, tx, string(k))
		if err != nil {
			return nil, false, err
		}
		out = append(out, v)
	}
	return out, false, nil
}

// Events returns a lock's recorded events with a revision above after, and
// whether some events above after were already discarded (or the idle lock
// collected), so that the caller must resynchronise from the current state.
func Events(tx sm.Tx, name string, after uint64) ([]*cmdpb.LockEvent, bool, error) {
	s := &store{tx: tx}
	st, err := s.lock(name)
	if err != nil {
		return nil, false, err
	}
	if st == nil {
		return nil, after > 0, nil
	}
	prefix := waiterPrefix(name)
	c := tx.Bucket(bucketEvents).Cursor()
	var out []*cmdpb.LockEvent
	for k, v := c.Seek(sm.Join(prefix, sm.U64(after+1))); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var ev cmdpb.LockEvent
		if err := proto.Unmarshal(v, &ev); err != nil {
			return nil, false, fmt.Errorf("corrupt lock event %x: %w", k, err)
		}
		out = append(out, &ev)
	}
	return out, after < st.TrimmedThrough, nil
}

// Lease returns a live lease, or nil.
func Lease(env sm.Env, tx sm.Tx, id uint64) (*cmdpb.LockLease, error) {
	s := &store{env: env, tx: tx}
	return s.liveLease(id)
}
