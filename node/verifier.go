package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Leadership confirmation for linearizable reads.
//
// The read-index protocol needs proof that, after a read arrived, a quorum
// still followed this leader's term: then no other leader can have
// committed, before the read arrived, anything this node lacks.
// raft.VerifyLeader alone does not prove it. It counts every successful
// AppendEntries reply that arrives after it starts, including replies to
// heartbeats that were sent before the read arrived, so a deposed leader
// that receives delayed replies (a slow network, or replies buffered while
// its process was paused) confirms itself and serves stale reads.
//
// So the transport Raft uses is wrapped (ackTransport) to record, per peer,
// when the newest AppendEntries request that peer acknowledged in this
// node's term was sent, and a confirmation round waits until a quorum
// (this node included) has acknowledged a request sent after the round
// began. raft.VerifyLeader starts the round: it makes every follower's
// heartbeat go out at once, and fails fast when this node steps down.

// errReadNotConfirmed is returned when no quorum acknowledged this node's
// leadership in time.
var errReadNotConfirmed = errors.New("leadership not confirmed by a quorum")

// confirmTransport is what Raft needs of a transport coord wraps.
type confirmTransport interface {
	raft.Transport
	raft.WithClose
	raft.WithPreVote
}

// termAck is the newest request a peer acknowledged: its term and when it
// was sent.
type termAck struct {
	term uint64
	sent time.Time
}

// ackTransport records, for each peer, the newest AppendEntries request
// (heartbeat or log replication) whose reply carried the request's term,
// that is, that the peer accepted from this node as leader of that term.
// Pipelined replication is not wrapped; heartbeats are enough, since a
// confirmation round triggers them.
type ackTransport struct {
	confirmTransport
	mu      sync.Mutex
	acks    map[raft.ServerID]termAck
	changed chan struct{} // closed and replaced at every new ack
}

func newAckTransport(t confirmTransport) *ackTransport {
	return &ackTransport{confirmTransport: t, acks: map[raft.ServerID]termAck{}, changed: make(chan struct{})}
}

// AppendEntries sends the request and records the peer's acknowledgement.
func (t *ackTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	sent := time.Now()
	err := t.confirmTransport.AppendEntries(id, target, args, resp)
	if err == nil && resp.Term == args.Term {
		t.record(id, args.Term, sent)
	}
	return err
}

func (t *ackTransport) record(id raft.ServerID, term uint64, sent time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if a, ok := t.acks[id]; ok && (a.term > term || (a.term == term && !sent.After(a.sent))) {
		return
	}
	t.acks[id] = termAck{term: term, sent: sent}
	close(t.changed)
	t.changed = make(chan struct{})
}

// confirmed reports whether a quorum of voters (self counted as one) has
// acknowledged term with a request sent at or after since; if not, it also
// returns a channel closed at the next acknowledgement.
func (t *ackTransport) confirmed(self raft.ServerID, voters []raft.ServerID, term uint64, since time.Time) (bool, <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, id := range voters {
		if id == self {
			n++
			continue
		}
		if a, ok := t.acks[id]; ok && a.term == term && !a.sent.Before(since) {
			n++
		}
	}
	return n >= len(voters)/2+1, t.changed
}

// verifier coalesces leadership confirmations: every caller waits for a
// round that started after it arrived, and one round serves every caller
// waiting when it starts.
type verifier struct {
	r       *raft.Raft
	self    raft.ServerID
	acks    *ackTransport
	timeout time.Duration // bound on one round
	mu      sync.Mutex
	waiting []verifyWaiter
	running bool
}

type verifyWaiter struct {
	term uint64
	ch   chan error
}

// verify confirms that this node led term after the call began.
func (v *verifier) verify(ctx context.Context, term uint64) error {
	ch := make(chan error, 1)
	v.mu.Lock()
	v.waiting = append(v.waiting, verifyWaiter{term, ch})
	if !v.running {
		v.running = true
		go v.loop()
	}
	v.mu.Unlock()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (v *verifier) loop() {
	for {
		v.mu.Lock()
		batch := v.waiting
		v.waiting = nil
		if len(batch) == 0 {
			v.running = false
			v.mu.Unlock()
			return
		}
		v.mu.Unlock()
		term := v.r.CurrentTerm()
		err := v.round(term)
		for _, w := range batch {
			if err == nil && w.term != term {
				w.ch <- raft.ErrLeadershipLost
				continue
			}
			w.ch <- err
		}
	}
}

// voters returns the ids of the voters in the latest configuration.
func (v *verifier) voters() ([]raft.ServerID, error) {
	f := v.r.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	var ids []raft.ServerID
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			ids = append(ids, s.ID)
		}
	}
	return ids, nil
}

// quorumRound is the correct round: raft.VerifyLeader, then wait until a
// quorum has acknowledged term with requests sent after the round began.
func (v *verifier) quorumRound(term uint64) error {
	start := time.Now()
	if err := v.r.VerifyLeader().Error(); err != nil {
		return err
	}
	voters, err := v.voters()
	if err != nil {
		return err
	}
	timer := time.NewTimer(v.timeout)
	defer timer.Stop()
	for {
		ok, changed := v.acks.confirmed(v.self, voters, term, start)
		if ok {
			return nil
		}
		if v.r.State() != raft.Leader || v.r.CurrentTerm() != term {
			return raft.ErrLeadershipLost
		}
		select {
		case <-changed:
		case <-timer.C:
			return fmt.Errorf("%w within %v", errReadNotConfirmed, v.timeout)
		}
	}
}
