package fsm

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"coord/internal/cmdpb"
	"coord/internal/sm"
)

// dispatchDedup applies cmd exactly once per (client id, seq).
//
// A command without a client id is applied unconditionally. Otherwise the
// client's session decides: a seq below the session floor was acknowledged
// by the client and its result dropped, so it is refused (it can only be a
// stray duplicate); a seq with a stored result returns that result; any other
// seq is applied and its result stored. Then the floor rises to acked_below
// and the results under it are deleted.
func (f *FSM) dispatchDedup(tx *bolt.Tx, meta *cmdpb.Meta, env sm.Env, cmd *cmdpb.Command) (*cmdpb.Result, error) {
	if cmd.ClientId == 0 {
		return f.dispatch(tx, meta, env, cmd)
	}
	cs, err := f.sessions.get(tx, cmd.ClientId)
	if err != nil {
		return nil, err
	}
	s, sess := f.sessions.buckets, cs.sess
	var res *cmdpb.Result
	switch stored, err := s.result(cmd.ClientId, cmd.Seq); {
	case err != nil:
		return nil, err
	case cmd.Seq < sess.Floor:
		res = &cmdpb.Result{
			RejectCode:    cmdpb.RejectCode_REJECT_CODE_FAILED_PRECONDITION,
			RejectMessage: fmt.Sprintf("request %d of client %d was already acknowledged; its result is no longer kept", cmd.Seq, cmd.ClientId),
		}
	case stored != nil:
		res = stored
	default:
		if res, err = f.dispatch(tx, meta, env, cmd); err != nil {
			return nil, err
		}
		if err := s.store(cmd.ClientId, cmd.Seq, res, sess); err != nil {
			return nil, err
		}
	}
	floor := min(cmd.AckedBelow, cmd.Seq)
	if err := s.raiseFloor(cmd.ClientId, sess, floor); err != nil {
		return nil, err
	}
	cs.touch(env.Now) // written when the batch's sessions are flushed
	return res, nil
}

type sessions struct {
	sess, results, idle *bolt.Bucket
}

func openSessions(tx *bolt.Tx) (*sessions, error) {
	var s sessions
	var err error
	if s.sess, err = tx.CreateBucketIfNotExists(bucketSessions); err != nil {
		return nil, err
	}
	if s.results, err = tx.CreateBucketIfNotExists(bucketResults); err != nil {
		return nil, err
	}
	if s.idle, err = tx.CreateBucketIfNotExists(bucketIdle); err != nil {
		return nil, err
	}
	return &s, nil
}

func (s *sessions) load(client uint64) (*cmdpb.Session, error) {
	sess := &cmdpb.Session{}
	if v := s.sess.Get(sm.U64(client)); v != nil {
		if err := proto.Unmarshal(v, sess); err != nil {
			return nil, fmt.Errorf("corrupt session %d: %w", client, err)
		}
	}
	return sess, nil
}

// store keeps res for retries, dropping the oldest results beyond the cap.
func (s *sessions) store(client, seq uint64, res *cmdpb.Result, sess *cmdpb.Session) error {
	if err := putProto(s.results, sm.Join(sm.U64(client), sm.U64(seq)), res); err != nil {
		return err
	}
	sess.Results++
	for sess.Results > MaxResultsPerSession {
		prefix := sm.U64(client)
		c := s.results.Cursor()
		k, _ := c.Seek(prefix)
		if k == nil || !bytes.HasPrefix(k, prefix) {
			return fmt.Errorf("session %d counts %d results but has none", client, sess.Results)
		}
		oldest, _ := sm.DecodeU64(k[8:])
		if err := c.Delete(); err != nil {
			return err
		}
		sess.Results--
		if oldest+1 > sess.Floor {
			sess.Floor = oldest + 1
		}
	}
	return nil
}

// raiseFloor deletes the results below floor.
func (s *sessions) raiseFloor(client uint64, sess *cmdpb.Session, floor uint64) error {
	if floor <= sess.Floor {
		return nil
	}
	start := sm.Join(sm.U64(client), sm.U64(sess.Floor))
	end := sm.Join(sm.U64(client), sm.U64(floor))
	c := s.results.Cursor()
	for k, _ := c.Seek(start); k != nil && bytes.Compare(k, end) < 0; k, _ = c.Seek(start) {
		if err := c.Delete(); err != nil {
			return err
		}
		sess.Results--
	}
	sess.Floor = floor
	return nil
}

// expireSessions forgets sessions idle for SessionTTL, oldest first.
func expireSessions(tx *bolt.Tx, now int64, budget int) error {
	idle := tx.Bucket(bucketIdle)
	if idle == nil {
		return nil
	}
	s, err := openSessions(tx)
	if err != nil {
		return err
	}
	cutoff := now - int64(SessionTTL)
	c := s.idle.Cursor()
	for k, _ := c.First(); k != nil && budget > 0; k, _ = c.First() {
		last, _ := sm.DecodeU64(k[:8])
		if int64(last) > cutoff {
			return nil
		}
		client, _ := sm.DecodeU64(k[8:])
		if err := c.Delete(); err != nil {
			return err
		}
		sess, err := s.load(client)
		if err != nil {
			return err
		}
		budget -= int(sess.Results) + 1
		if err := s.raiseFloor(client, sess, ^uint64(0)); err != nil {
			return err
		}
		if err := s.sess.Delete(sm.U64(client)); err != nil {
			return err
		}
	}
	return nil
}

// nextSessionExpiry is when the longest-idle session expires.
func nextSessionExpiry(tx *bolt.Tx) (int64, bool) {
	idle := tx.Bucket(bucketIdle)
	if idle == nil {
		return 0, false
	}
	k, _ := idle.Cursor().First()
	if k == nil {
		return 0, false
	}
	last, _ := sm.DecodeU64(k[:8])
	return int64(last) + int64(SessionTTL), true
}
