package node

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// heldTransport answers AppendEntries with the term in reply, once release
// is closed.
type heldTransport struct {
	confirmTransport
	started chan time.Time // receives the time each request reached it
	release chan struct{}
	reply   uint64
}

func (h *heldTransport) AppendEntries(_ raft.ServerID, _ raft.ServerAddress, _ *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	select {
	case h.started <- time.Now():
	default:
	}
	<-h.release
	resp.Term = h.reply
	return nil
}

func TestAckTransportCountsOnlyRequestsSentAfterTheRoundBegan(t *testing.T) {
	voters := []raft.ServerID{"a", "b", "c"}
	inner := &heldTransport{started: make(chan time.Time, 1), release: make(chan struct{}), reply: 7}
	acks := newAckTransport(inner)

	// A heartbeat to b goes out, then the round begins, then b's reply
	// (sent before the round) arrives: it must not confirm the round.
	done := make(chan struct{})
	go func() {
		defer close(done)
		var resp raft.AppendEntriesResponse
		_ = acks.AppendEntries("b", "b", &raft.AppendEntriesRequest{Term: 7}, &resp)
	}()
	sent := <-inner.started
	since := time.Now()
	for !since.After(sent) {
		since = time.Now()
	}
	_, changed := acks.confirmed("a", voters, 7, since)
	close(inner.release)
	<-done
	<-changed
	if ok, _ := acks.confirmed("a", voters, 7, since); ok {
		t.Fatal("a reply to a request sent before the round confirmed it")
	}
	// An earlier start does count it.
	if ok, _ := acks.confirmed("a", voters, 7, since.Add(-time.Minute)); !ok {
		t.Fatal("a fresh acknowledgement from b did not confirm a 3-voter quorum")
	}
	// Another term does not.
	if ok, _ := acks.confirmed("a", voters, 8, since.Add(-time.Minute)); ok {
		t.Fatal("an acknowledgement of term 7 confirmed term 8")
	}
	// Five voters need two peers.
	five := []raft.ServerID{"a", "b", "c", "d", "e"}
	if ok, _ := acks.confirmed("a", five, 7, since.Add(-time.Minute)); ok {
		t.Fatal("one peer confirmed a 5-voter quorum")
	}
	var resp raft.AppendEntriesResponse
	if err := acks.AppendEntries("d", "d", &raft.AppendEntriesRequest{Term: 7}, &resp); err != nil {
		t.Fatal(err)
	}
	if ok, _ := acks.confirmed("a", five, 7, since); ok {
		t.Fatal("b's stale acknowledgement was counted with d's fresh one")
	}
	if ok, _ := acks.confirmed("a", five, 7, since.Add(-time.Minute)); !ok {
		t.Fatal("two fresh peers did not confirm a 5-voter quorum")
	}
}

func TestAckTransportIgnoresRepliesFromANewerTerm(t *testing.T) {
	inner := &heldTransport{started: make(chan time.Time, 1), release: make(chan struct{}), reply: 9}
	close(inner.release)
	acks := newAckTransport(inner)
	since := time.Now()
	var resp raft.AppendEntriesResponse
	if err := acks.AppendEntries("b", "b", &raft.AppendEntriesRequest{Term: 7}, &resp); err != nil {
		t.Fatal(err)
	}
	if ok, _ := acks.confirmed("a", []raft.ServerID{"a", "b", "c"}, 7, since); ok {
		t.Fatal("a peer that follows term 9 confirmed term 7")
	}
}
