package client

import (
	"container/heap"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strconv"
	"sync"

	"google.golang.org/grpc/metadata"

	coordv1 "coord/api/coord/v1"
)

// session numbers the mutating requests of one Client. Each write gets one
// sequence number for its whole life; the session tracks which numbers are
// still in flight so it can tell the server the lowest one (coord-acked),
// below which every request has completed and will never be retried.
//
// In-flight numbers live in a min-heap. Completing a number that is not the
// minimum only records it in done; it is popped once it reaches the top
// (lazy deletion), so begin and end cost O(log n) amortised.
type session struct {
	id    uint64
	idStr string

	mu       sync.Mutex
	last     uint64 // last sequence number handed out
	inflight seqHeap
	done     map[uint64]struct{}
}

// newSession creates a session with a random non-zero client id.
func newSession() (*session, error) {
	var buf [8]byte
	for {
		if _, err := rand.Read(buf[:]); err != nil {
			return nil, fmt.Errorf("client: generate client id: %w", err)
		}
		if id := binary.BigEndian.Uint64(buf[:]); id != 0 {
			return newSessionWithID(id), nil
		}
	}
}

func newSessionWithID(id uint64) *session {
	return &session{
		id:    id,
		idStr: strconv.FormatUint(id, 10),
		done:  make(map[uint64]struct{}),
	}
}

// begin assigns the next sequence number and marks it in flight. Assignment
// and insertion happen under one lock so that acked never passes a number
// that has been handed out but not yet recorded.
func (s *session) begin() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last++
	heap.Push(&s.inflight, s.last)
	return s.last
}

// end marks seq completed; it will never be sent again.
func (s *session) end(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done[seq] = struct{}{}
	for len(s.inflight) > 0 {
		top := s.inflight[0]
		if _, ok := s.done[top]; !ok {
			return
		}
		heap.Pop(&s.inflight)
		delete(s.done, top)
	}
}

// acked returns the lowest sequence number still in flight, or the next one
// to be assigned when none is: every number below it has completed.
func (s *session) acked() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.inflight) > 0 {
		return s.inflight[0]
	}
	return s.last + 1
}

// outgoing returns ctx carrying the request id headers for seq.
func (s *session) outgoing(ctx context.Context, seq uint64) context.Context {
	return metadata.AppendToOutgoingContext(ctx,
		coordv1.HeaderClientID, s.idStr,
		coordv1.HeaderSeq, strconv.FormatUint(seq, 10),
		coordv1.HeaderAcked, strconv.FormatUint(s.acked(), 10),
	)
}

// seqHeap is a min-heap of sequence numbers (container/heap).
type seqHeap []uint64

func (h seqHeap) Len() int           { return len(h) }
func (h seqHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h seqHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }

// Push appends x (heap.Interface).
func (h *seqHeap) Push(x any) { *h = append(*h, x.(uint64)) }

// Pop removes the last element (heap.Interface).
func (h *seqHeap) Pop() any {
	old := *h
	n := len(old)
	x := old[n-1]
	*h = old[:n-1]
	return x
}
