package fsm

import (
	"slices"

	bolt "go.etcd.io/bbolt"

	"coord/internal/cmdpb"
	"coord/internal/sm"
)

// sessionCache keeps the client sessions touched by one batch decoded, so
// that a client with many commands in a batch (the usual case: one client
// per process, many concurrent requests) has its session read and written
// once per batch, with one move in the idle index, instead of once per
// command. Flushing writes exactly the records the per-command writes
// would have left, so the state does not depend on how entries were cut
// into batches. It is flushed before anything else reads the sessions (a
// Tick) and before the batch commits.
type sessionCache struct {
	buckets *sessions
	m       map[uint64]*cachedSession
}

// cachedSession is a session as the batch has changed it.
type cachedSession struct {
	sess   *cmdpb.Session
	stored int64 // the LastSeen in the idle index (0: no entry)
	dirty  bool
}

// get returns client's session, loading it on first use in the batch.
func (c *sessionCache) get(tx *bolt.Tx, client uint64) (*cachedSession, error) {
	if c.buckets == nil {
		s, err := openSessions(tx)
		if err != nil {
			return nil, err
		}
		c.buckets, c.m = s, map[uint64]*cachedSession{}
	}
	if cs := c.m[client]; cs != nil {
		return cs, nil
	}
	sess, err := c.buckets.load(client)
	if err != nil {
		return nil, err
	}
	cs := &cachedSession{sess: sess, stored: sess.LastSeen}
	c.m[client] = cs
	return cs, nil
}

// touch records a request of the session at now.
func (cs *cachedSession) touch(now int64) {
	cs.sess.LastSeen = now
	cs.dirty = true
}

// flush writes the changed sessions, in client order, and empties the
// cache (its bucket handles belong to the batch's transaction).
func (c *sessionCache) flush() error {
	if c.buckets == nil {
		return nil
	}
	clients := make([]uint64, 0, len(c.m))
	for id, cs := range c.m {
		if cs.dirty {
			clients = append(clients, id)
		}
	}
	slices.Sort(clients)
	for _, id := range clients {
		if err := c.buckets.save(id, c.m[id]); err != nil {
			return err
		}
	}
	*c = sessionCache{}
	return nil
}

// save writes a session and moves its idle-index entry to its LastSeen.
func (s *sessions) save(client uint64, cs *cachedSession) error {
	if cs.stored != cs.sess.LastSeen {
		if cs.stored != 0 {
			if err := s.idle.Delete(sm.Join(sm.I64(cs.stored), sm.U64(client))); err != nil {
				return err
			}
		}
		if err := s.idle.Put(sm.Join(sm.I64(cs.sess.LastSeen), sm.U64(client)), nil); err != nil {
			return err
		}
	}
	return putProto(s.sess, sm.U64(client), cs.sess)
}
