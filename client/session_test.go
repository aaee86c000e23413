package client

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"

	"google.golang.org/grpc/metadata"

	coordv1 "coord/api/coord/v1"
)

func TestSessionAckedIsLowestInFlight(t *testing.T) {
	s := newSessionWithID(7)
	if got := s.acked(); got != 1 {
		t.Fatalf("acked before any call = %d, want 1", got)
	}
	a, b, c := s.begin(), s.begin(), s.begin()
	if a != 1 || b != 2 || c != 3 {
		t.Fatalf("seqs = %d %d %d, want 1 2 3", a, b, c)
	}
	steps := []struct {
		end  uint64
		want uint64
	}{
		{end: 2, want: 1}, // completing a later seq does not pass an earlier one
		{end: 1, want: 3}, // 1 and 2 are done: the lazily deleted 2 is popped too
		{end: 3, want: 4}, // nothing in flight: the next seq to be assigned
	}
	for _, st := range steps {
		s.end(st.end)
		if got := s.acked(); got != st.want {
			t.Fatalf("after end(%d): acked = %d, want %d", st.end, got, st.want)
		}
	}
	if len(s.done) != 0 || len(s.inflight) != 0 {
		t.Fatalf("bookkeeping not drained: done=%v inflight=%v", s.done, s.inflight)
	}
}

// TestSessionMatchesModel checks acked against a plain set of in-flight
// numbers under random interleavings.
func TestSessionMatchesModel(t *testing.T) {
	s := newSessionWithID(1)
	model := map[uint64]bool{}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 5000; i++ {
		if len(model) == 0 || r.IntN(3) > 0 {
			model[s.begin()] = true
		} else {
			keys := make([]uint64, 0, len(model))
			for k := range model {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			k := keys[r.IntN(len(keys))]
			delete(model, k)
			s.end(k)
		}
		want := s.last + 1
		for k := range model {
			want = min(want, k)
		}
		if got := s.acked(); got != want {
			t.Fatalf("step %d: acked = %d, want %d", i, got, want)
		}
	}
}

func TestSessionConcurrentSeqsAreUnique(t *testing.T) {
	s := newSessionWithID(1)
	const n = 64
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for range 100 {
				seq := s.begin()
				if a := s.acked(); a > seq {
					t.Errorf("acked %d passed in-flight seq %d", a, seq)
				}
				mu.Lock()
				if seen[seq] {
					t.Errorf("seq %d handed out twice", seq)
				}
				seen[seq] = true
				mu.Unlock()
				s.end(seq)
			}
		})
	}
	wg.Wait()
	if got := s.acked(); got != n*100+1 {
		t.Fatalf("final acked = %d, want %d", got, n*100+1)
	}
}

func TestSessionOutgoingHeaders(t *testing.T) {
	s := newSessionWithID(42)
	first := s.begin()
	second := s.begin()
	md, _ := metadata.FromOutgoingContext(s.outgoing(context.Background(), second))
	want := map[string]string{
		coordv1.HeaderClientID: "42",
		coordv1.HeaderSeq:      strconv.FormatUint(second, 10),
		coordv1.HeaderAcked:    strconv.FormatUint(first, 10),
	}
	for k, v := range want {
		if got := md.Get(k); len(got) != 1 || got[0] != v {
			t.Errorf("header %s = %v, want [%s]", k, got, v)
		}
	}
}

func TestNewSessionIDIsRandomAndNonZero(t *testing.T) {
	a, err := newSession()
	if err != nil {
		t.Fatal(err)
	}
	b, err := newSession()
	if err != nil {
		t.Fatal(err)
	}
	if a.id == 0 || b.id == 0 || a.id == b.id {
		t.Fatalf("client ids %d and %d: want two distinct non-zero ids", a.id, b.id)
	}
}
