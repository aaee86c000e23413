package locks_test

import (
	"math/rand"
	"testing"
	"time"

	"coord/locks"
)

// holderByView is what Holder must answer, computed from the full view.
func holderByView(w *world, name string, lease uint64) (uint64, bool) {
	v := w.view(name)
	if v == nil {
		return 0, false
	}
	for _, h := range v.Holders {
		if h.LeaseId == lease {
			return h.Token, false
		}
	}
	for _, wt := range v.Waiters {
		if wt.LeaseId == lease {
			return 0, true
		}
	}
	return 0, false
}

// TestHolderAgreesWithView drives one lock with random acquires, releases,
// keep-alives and clock jumps (sometimes past lease, wait and max-hold
// deadlines without a tick) and checks Holder against the full view.
func TestHolderAgreesWithView(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	w := newWorld(t)
	var leases []uint64
	for i := range 6 {
		leases = append(leases, w.lease(string(rune('a'+i)), time.Duration(2+rng.Intn(20))*time.Second))
	}
	tokens := map[uint64]uint64{}
	for step := range 400 {
		l := leases[rng.Intn(len(leases))]
		switch rng.Intn(5) {
		case 0, 1:
			a := acq{limit: 1, wait: time.Duration(rng.Intn(20)) * time.Second, max: time.Duration(rng.Intn(2)) * 5 * time.Second}
			res, rej := w.tryAcquire("L", l, a)
			if rej == nil && res.Holder != nil {
				tokens[l] = res.Holder.Token
			}
		case 2:
			if tok := tokens[l]; tok != 0 {
				w.release("L", tok, l)
				delete(tokens, l)
			}
		case 3:
			w.keepAlive(l)
		default:
			w.now += time.Duration(rng.Intn(3000)) * time.Millisecond // no tick: lazy expiry only
		}
		for _, q := range leases {
			h, waiting, err := locks.Holder(w.env(), w.store.Tx(false), "L", q)
			if err != nil {
				t.Fatal(err)
			}
			var token uint64
			if h != nil {
				token = h.Token
			}
			wantToken, wantWaiting := holderByView(w, "L", q)
			if token != wantToken || waiting != wantWaiting {
				t.Fatalf("step %d, lease %d: Holder = (token %d, waiting %v), view says (token %d, waiting %v)",
					step, q, token, waiting, wantToken, wantWaiting)
			}
		}
	}
}

// TestHolderOfExpiredWaiter: a waiter whose lease or wait has ended no
// longer waits, even before a tick removes its queue entry.
func TestHolderOfExpiredWaiter(t *testing.T) {
	w := newWorld(t)
	a, b, c := w.lease("a", time.Hour), w.lease("b", 2*time.Second), w.lease("c", time.Hour)
	w.acquire("L", a, acq{})
	w.acquire("L", b, acq{wait: time.Hour})
	w.acquire("L", c, acq{wait: 5 * time.Second})
	for _, l := range []uint64{b, c} {
		if _, waiting, err := locks.Holder(w.env(), w.store.Tx(false), "L", l); err != nil || !waiting {
			t.Fatalf("lease %d: waiting = %v, %v; want true", l, waiting, err)
		}
	}
	w.now += 3 * time.Second // b's lease has ended
	if _, waiting, _ := locks.Holder(w.env(), w.store.Tx(false), "L", b); waiting {
		t.Fatal("a waiter whose lease ended still waits")
	}
	w.now += 3 * time.Second // c's wait has ended
	if _, waiting, _ := locks.Holder(w.env(), w.store.Tx(false), "L", c); waiting {
		t.Fatal("a waiter whose wait ended still waits")
	}
}

// TestEventsKeepTheNewest: a lock keeps its newest events, EventsPerLock
// to 2*EventsPerLock of them, however many it has had, also after being
// collected and reused; a watcher from a discarded revision is told to
// resynchronise.
func TestEventsKeepTheNewest(t *testing.T) {
	w := newWorld(t)
	a := w.lease("a", time.Hour)
	for round := range 2 {
		var revs []uint64
		kept := 0 // events the lock must keep
		event := func() {
			revs = append(revs, w.index)
			if kept++; kept > 2*locks.EventsPerLock {
				kept = locks.EventsPerLock
			}
		}
		for i := range 200 {
			res := w.acquire("L", a, acq{})
			event()
			w.release("L", res.Holder.Token, a)
			event()
			evs, resync, err := locks.Events(w.store.Tx(false), "L", 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != kept {
				t.Fatalf("round %d, cycle %d: %d events kept, want %d", round, i, len(evs), kept)
			}
			if resync != (kept < len(revs)) {
				t.Fatalf("round %d, cycle %d: resync %v with %d of %d events kept", round, i, resync, kept, len(revs))
			}
			newest := revs[len(revs)-kept:]
			for j, ev := range evs {
				if ev.Revision != newest[j] {
					t.Fatalf("round %d, cycle %d: event %d has revision %d, want %d", round, i, j, ev.Revision, newest[j])
				}
			}
			if _, resync, _ := locks.Events(w.store.Tx(false), "L", newest[0]-1); resync {
				t.Fatalf("round %d, cycle %d: a watcher from the oldest kept event must not resynchronise", round, i)
			}
		}
		w.advance(locks.IdleRetention + time.Minute) // collects the idle lock and its events
		w.keepAlive(a)
		if v := w.view("L"); v != nil {
			t.Fatalf("round %d: idle lock not collected", round)
		}
	}
}
