package locks_test

import (
	"errors"
	"fmt"
	"math/rand"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"coord/internal/cmdpb"
	"coord/internal/sm"
	"coord/internal/sm/smtest"
	"coord/locks"
)

// world drives the lock machine through numbered entries with a clock.
type world struct {
	t     *testing.T
	store *smtest.Store
	index uint64
	now   time.Duration
}

func newWorld(t *testing.T) *world { return &world{t: t, store: smtest.New(), now: time.Hour} }

func (w *world) env() sm.Env { return sm.Env{Index: w.index, Term: 1, Now: int64(w.now)} }

// apply runs one op as the next log entry; it returns the rejection, if any.
func (w *world) apply(op uint32, req, res proto.Message) *sm.Rejection {
	w.t.Helper()
	w.index++
	body, err := proto.Marshal(req)
	if err != nil {
		w.t.Fatal(err)
	}
	out, err := locks.Machine{}.Apply(w.env(), w.store.Tx(true), op, body)
	var rej *sm.Rejection
	if errors.As(err, &rej) {
		return rej
	}
	if err != nil {
		w.t.Fatalf("op %d: %v", op, err)
	}
	if err := proto.Unmarshal(out, res); err != nil {
		w.t.Fatal(err)
	}
	return nil
}

func (w *world) lease(owner string, ttl time.Duration) uint64 {
	w.t.Helper()
	var l cmdpb.LockLease
	if rej := w.apply(locks.OpGrantLease, &cmdpb.LockGrantLease{Owner: owner, Ttl: int64(ttl)}, &l); rej != nil {
		w.t.Fatal(rej)
	}
	return l.Id
}

type acq struct {
	limit            uint32
	wait, delay, max time.Duration
}

func (w *world) acquire(name string, lease uint64, a acq) *cmdpb.LockAcquireResult {
	w.t.Helper()
	res, rej := w.tryAcquire(name, lease, a)
	if rej != nil {
		w.t.Fatalf("acquire %s: %v", name, rej)
	}
	return res
}

func (w *world) tryAcquire(name string, lease uint64, a acq) (*cmdpb.LockAcquireResult, *sm.Rejection) {
	if a.limit == 0 {
		a.limit = 1
	}
	var res cmdpb.LockAcquireResult
	rej := w.apply(locks.OpAcquire, &cmdpb.LockAcquire{Name: name, LeaseId: lease, Limit: a.limit,
		Wait: int64(a.wait), LockDelay: int64(a.delay), MaxHold: int64(a.max)}, &res)
	return &res, rej
}

func (w *world) release(name string, token, lease uint64) *cmdpb.LockReleaseResult {
	w.t.Helper()
	var res cmdpb.LockReleaseResult
	if rej := w.apply(locks.OpRelease, &cmdpb.LockRelease{Name: name, Token: token, LeaseId: lease}, &res); rej != nil {
		w.t.Fatal(rej)
	}
	return &res
}

func (w *world) keepAlive(ids ...uint64) *cmdpb.LockKeepAliveResult {
	w.t.Helper()
	var res cmdpb.LockKeepAliveResult
	if rej := w.apply(locks.OpKeepAlive, &cmdpb.LockKeepAlive{LeaseIds: ids}, &res); rej != nil {
		w.t.Fatal(rej)
	}
	return &res
}

// advance moves the clock and ticks as the leader would.
func (w *world) advance(d time.Duration) {
	w.t.Helper()
	w.now += d
	for {
		due, ok := locks.Machine{}.NextDue(w.store.Tx(false))
		if !ok || due > int64(w.now) {
			return
		}
		w.index++
		if _, err := (locks.Machine{}).Tick(w.env(), w.store.Tx(true), 1000); err != nil {
			w.t.Fatal(err)
		}
	}
}

func (w *world) view(name string) *locks.View {
	w.t.Helper()
	v, err := locks.Get(w.env(), w.store.Tx(false), name)
	if err != nil {
		w.t.Fatal(err)
	}
	return v
}

func (w *world) holders(name string) []uint64 {
	var out []uint64
	if v := w.view(name); v != nil {
		for _, h := range v.Holders {
			out = append(out, h.LeaseId)
		}
	}
	return out
}

func (w *world) fence(name string, token uint64) error {
	return locks.Machine{}.CheckFence(w.env(), w.store.Tx(false), name, token)
}

const (
	granted = cmdpb.LockAcquireOutcome_LOCK_ACQUIRE_OUTCOME_GRANTED
	busy    = cmdpb.LockAcquireOutcome_LOCK_ACQUIRE_OUTCOME_BUSY
	queued  = cmdpb.LockAcquireOutcome_LOCK_ACQUIRE_OUTCOME_QUEUED
)

func TestGrantAndTryBusy(t *testing.T) {
	w := newWorld(t)
	a, b := w.lease("a", 10*time.Second), w.lease("b", 10*time.Second)
	r := w.acquire("jobs/nightly", a, acq{})
	if r.Outcome != granted || r.Holder.Token != w.index {
		t.Fatalf("first acquire: %v, want granted with token = entry index %d", r, w.index)
	}
	r2 := w.acquire("jobs/nightly", b, acq{})
	if r2.Outcome != busy || len(r2.State.Holders) != 1 || r2.State.Holders[0].LeaseId != a {
		t.Fatalf("second acquire: %v, want busy naming holder %d", r2, a)
	}
	// Re-acquiring under the same lease returns the same grant.
	if r3 := w.acquire("jobs/nightly", a, acq{}); r3.Outcome != granted || r3.Holder.Token != r.Holder.Token {
		t.Fatalf("re-acquire: %v", r3)
	}
}

func TestImplicitLease(t *testing.T) {
	w := newWorld(t)
	var res cmdpb.LockAcquireResult
	if rej := w.apply(locks.OpAcquire, &cmdpb.LockAcquire{Name: "x", Owner: "cli", Ttl: int64(5 * time.Second), Limit: 1}, &res); rej != nil {
		t.Fatal(rej)
	}
	if res.Outcome != granted || res.Lease.Id == 0 || res.Lease.Owner != "cli" || res.Holder.LeaseId != res.Lease.Id {
		t.Fatalf("acquire with an implicit lease: %v", &res)
	}
	w.advance(6 * time.Second)
	if h := w.holders("x"); len(h) != 0 {
		t.Fatalf("implicit lease did not expire: holders %v", h)
	}
}

func TestFIFOQueueAndHandoffInTheReleasingEntry(t *testing.T) {
	w := newWorld(t)
	h := w.lease("h", time.Minute)
	first := w.acquire("L", h, acq{})
	var ws []uint64
	for i := 0; i < 3; i++ {
		l := w.lease(fmt.Sprint("w", i), time.Minute)
		ws = append(ws, l)
		if r := w.acquire("L", l, acq{wait: 30 * time.Second}); r.Outcome != queued {
			t.Fatalf("waiter %d: %v", i, r)
		}
	}
	prev := first.Holder.Token
	holder := h
	for i, next := range ws {
		tok := w.view("L").Holders[0].Token
		if res := w.release("L", tok, holder); !res.Released {
			t.Fatalf("release %d: %v", i, res)
		}
		v := w.view("L")
		if len(v.Holders) != 1 || v.Holders[0].LeaseId != next {
			t.Fatalf("after release %d holder is %v, want lease %d (FIFO)", i, v.Holders, next)
		}
		if v.Holders[0].Token != w.index || v.Holders[0].Token <= prev {
			t.Fatalf("handoff token %d: want the releasing entry's index %d, above %d", v.Holders[0].Token, w.index, prev)
		}
		prev, holder = v.Holders[0].Token, next
	}
	if w.store.Notified[locks.Topic("L")] == 0 {
		t.Fatal("no change notification for the lock")
	}
}

func TestReleaseRules(t *testing.T) {
	w := newWorld(t)
	a, b := w.lease("a", time.Minute), w.lease("b", time.Minute)
	ra := w.acquire("L", a, acq{})
	if res := w.release("L", ra.Holder.Token+100, a); res.Released || res.Reason == "" {
		t.Fatalf("release with a wrong token: %v", res)
	}
	if res := w.release("L", ra.Holder.Token, b); res.Released {
		t.Fatalf("release by another lease: %v", res)
	}
	if res := w.release("L", ra.Holder.Token, a); !res.Released {
		t.Fatalf("release: %v", res)
	}
	rb := w.acquire("L", b, acq{})
	// A stale token never releases the newer holder.
	if res := w.release("L", ra.Holder.Token, 0); res.Released {
		t.Fatalf("stale token released the new holder: %v", res)
	}
	if h := w.holders("L"); len(h) != 1 || h[0] != b {
		t.Fatalf("holders %v after a stale release", h)
	}
	if res := w.release("nothing", 5, 0); res.Released || res.Reason == "" {
		t.Fatalf("release of an unknown lock: %v", res)
	}
	_ = rb
}

func TestLeaseExpiryHandsTheLockToTheFirstWaiter(t *testing.T) {
	w := newWorld(t)
	a := w.lease("a", 10*time.Second)
	b := w.lease("b", time.Minute)
	ra := w.acquire("L", a, acq{})
	w.acquire("L", b, acq{wait: time.Minute})
	w.advance(5 * time.Second)
	w.keepAlive(b) // b keeps its lease alive; a does not
	if err := w.fence("L", ra.Holder.Token); err != nil {
		t.Fatalf("fence before expiry: %v", err)
	}
	w.advance(6 * time.Second)
	if err := w.fence("L", ra.Holder.Token); err == nil {
		t.Fatal("expired holder's token still passes the fence")
	}
	v := w.view("L")
	if len(v.Holders) != 1 || v.Holders[0].LeaseId != b || v.Holders[0].Token <= ra.Holder.Token {
		t.Fatalf("after expiry: holders %v", v.Holders)
	}
}

func TestLockDelayAfterExpiryOnly(t *testing.T) {
	w := newWorld(t)
	a := w.lease("a", 5*time.Second)
	b := w.lease("b", time.Hour)
	w.acquire("L", a, acq{delay: 10 * time.Second})
	w.acquire("L", b, acq{wait: time.Minute, delay: 10 * time.Second})
	w.advance(6 * time.Second) // a expires at +5s; delay until +15s
	if h := w.holders("L"); len(h) != 0 {
		t.Fatalf("granted during lock-delay: %v", h)
	}
	w.advance(8 * time.Second) // +14s
	if h := w.holders("L"); len(h) != 0 {
		t.Fatalf("granted during lock-delay: %v", h)
	}
	w.advance(2 * time.Second) // +16s
	if h := w.holders("L"); len(h) != 1 || h[0] != b {
		t.Fatalf("after lock-delay: holders %v", h)
	}
	// A clean release hands over at once.
	c := w.lease("c", time.Hour)
	w.acquire("L", c, acq{wait: time.Minute, delay: 10 * time.Second})
	w.release("L", w.view("L").Holders[0].Token, b)
	if h := w.holders("L"); len(h) != 1 || h[0] != c {
		t.Fatalf("after a clean release: holders %v", h)
	}
}

func TestSemaphore(t *testing.T) {
	w := newWorld(t)
	seen := map[uint64]bool{}
	var leases []uint64
	for i := 0; i < 3; i++ {
		l := w.lease(fmt.Sprint(i), time.Minute)
		leases = append(leases, l)
		r := w.acquire("pool", l, acq{limit: 3})
		if r.Outcome != granted || seen[r.Holder.Token] {
			t.Fatalf("holder %d: %v", i, r)
		}
		seen[r.Holder.Token] = true
	}
	x := w.lease("x", time.Minute)
	if r := w.acquire("pool", x, acq{limit: 3}); r.Outcome != busy {
		t.Fatalf("fourth holder: %v", r)
	}
	if _, rej := w.tryAcquire("pool", x, acq{limit: 5}); rej == nil || rej.Code != sm.RejectFailedPrecondition {
		t.Fatalf("a different limit while in use: %v", rej)
	}
	for _, l := range leases {
		w.apply(locks.OpRevokeLease, &cmdpb.LockRevokeLease{LeaseId: l}, &cmdpb.LockRevokeLeaseResult{})
	}
	if r := w.acquire("pool", x, acq{limit: 5}); r.Outcome != granted || r.State.Limit != 5 {
		t.Fatalf("a new limit once idle: %v", r)
	}
}

func TestMaxHold(t *testing.T) {
	w := newWorld(t)
	a := w.lease("a", 10*time.Second)
	b := w.lease("b", time.Hour)
	ra := w.acquire("L", a, acq{max: 30 * time.Second})
	w.acquire("L", b, acq{wait: time.Hour, max: 30 * time.Second})
	for i := 0; i < 3; i++ { // keep-alives do not extend past max-hold
		w.advance(9 * time.Second)
		w.keepAlive(a)
	}
	if h := w.holders("L"); len(h) != 1 || h[0] != a {
		t.Fatalf("before max-hold: %v", h)
	}
	w.advance(4 * time.Second) // 31s after the grant
	if err := w.fence("L", ra.Holder.Token); err == nil {
		t.Fatal("token valid after max-hold")
	}
	if h := w.holders("L"); len(h) != 1 || h[0] != b {
		t.Fatalf("after max-hold: %v", h)
	}
}

func TestWaitDeadline(t *testing.T) {
	w := newWorld(t)
	a, b := w.lease("a", time.Hour), w.lease("b", time.Hour)
	ra := w.acquire("L", a, acq{})
	w.acquire("L", b, acq{wait: 5 * time.Second})
	w.advance(6 * time.Second)
	if v := w.view("L"); len(v.Waiters) != 0 {
		t.Fatalf("waiter still queued after its deadline: %v", v.Waiters)
	}
	w.release("L", ra.Holder.Token, a)
	if h := w.holders("L"); len(h) != 0 {
		t.Fatalf("timed-out waiter was granted: %v", h)
	}
}

func TestRevokeAndAbandon(t *testing.T) {
	w := newWorld(t)
	a, b, c := w.lease("a", time.Hour), w.lease("b", time.Hour), w.lease("c", time.Hour)
	w.acquire("L", a, acq{delay: time.Minute})
	w.acquire("L", b, acq{wait: time.Hour, delay: time.Minute})
	w.acquire("L", c, acq{wait: time.Hour, delay: time.Minute})
	var ab cmdpb.LockAbandonResult
	w.apply(locks.OpAbandon, &cmdpb.LockAbandon{Name: "L", LeaseId: b}, &ab)
	if !ab.Dequeued || ab.Released {
		t.Fatalf("abandon of a waiter: %v", &ab)
	}
	var rv cmdpb.LockRevokeLeaseResult
	w.apply(locks.OpRevokeLease, &cmdpb.LockRevokeLease{LeaseId: a}, &rv)
	if !rv.Found {
		t.Fatal("revoke did not find the lease")
	}
	// Revocation is a clean release: no lock-delay, next waiter at once.
	if h := w.holders("L"); len(h) != 1 || h[0] != c {
		t.Fatalf("after revoke: %v", h)
	}
	w.apply(locks.OpAbandon, &cmdpb.LockAbandon{Name: "L", LeaseId: c}, &ab)
	if !ab.Released || len(w.holders("L")) != 0 {
		t.Fatalf("abandon of a holder: %v, holders %v", &ab, w.holders("L"))
	}
}

func TestKeepAliveReportsMissing(t *testing.T) {
	w := newWorld(t)
	a, b := w.lease("a", 2*time.Second), w.lease("b", time.Hour)
	w.now += 3 * time.Second // a expired, not yet collected
	res := w.keepAlive(a, b, 999)
	if len(res.Leases) != 1 || res.Leases[0].Id != b || len(res.Missing) != 2 {
		t.Fatalf("keep-alive: %v", res)
	}
	if want := int64(w.now + time.Hour); res.Leases[0].ExpiresAt != want {
		t.Fatalf("renewed expiry %d, want %d", res.Leases[0].ExpiresAt, want)
	}
}

func TestBadInputIsRejectedAndChangesNothing(t *testing.T) {
	w := newWorld(t)
	a := w.lease("a", time.Minute)
	w.acquire("L", a, acq{})
	before := w.store.Hash()
	cases := map[string]*cmdpb.LockAcquire{
		"empty name":    {Name: "", LeaseId: a, Limit: 1},
		"bad name":      {Name: "a b", LeaseId: a, Limit: 1},
		"slash":         {Name: "/a", LeaseId: a, Limit: 1},
		"zero limit":    {Name: "L2", LeaseId: a, Limit: 0},
		"unknown lease": {Name: "L2", LeaseId: 12345, Limit: 1},
		"ttl too short": {Name: "L2", Owner: "x", Ttl: int64(time.Millisecond), Limit: 1},
		"negative wait": {Name: "L2", LeaseId: a, Limit: 1, Wait: -1},
		"long delay":    {Name: "L2", LeaseId: a, Limit: 1, LockDelay: int64(time.Hour)},
	}
	for name, req := range cases {
		var res cmdpb.LockAcquireResult
		if rej := w.apply(locks.OpAcquire, req, &res); rej == nil {
			t.Errorf("%s: accepted: %v", name, &res)
		}
	}
	if w.store.Hash() != before {
		t.Fatal("rejected requests changed the state")
	}
}

func TestIdleLocksAreCollected(t *testing.T) {
	w := newWorld(t)
	a := w.lease("a", time.Hour)
	r := w.acquire("L", a, acq{})
	w.release("L", r.Holder.Token, a)
	if w.view("L") == nil {
		t.Fatal("idle lock record gone at once; watchers need it")
	}
	w.advance(locks.IdleRetention + time.Second)
	if w.view("L") != nil {
		t.Fatal("idle lock was not collected")
	}
}

// TestPropertyTokensIncreaseAndLimitHolds runs random histories and checks
// that tokens strictly increase along the history and that no lock ever has
// more holders than its limit.
func TestPropertyTokensIncreaseAndLimitHolds(t *testing.T) {
	for seed := int64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewSource(seed))
		w := newWorld(t)
		names := []string{"a", "b", "c"}
		limits := map[string]uint32{"a": 1, "b": 2, "c": 3}
		var leases []uint64
		last := uint64(0)         // highest token seen before this step
		seen := map[uint64]bool{} // every token seen
		for step := 0; step < 400; step++ {
			switch rng.Intn(6) {
			case 0:
				leases = append(leases, w.lease("o", time.Duration(1+rng.Intn(20))*time.Second))
			case 1, 2:
				if len(leases) > 0 {
					n := names[rng.Intn(3)]
					_, _ = w.tryAcquire(n, leases[rng.Intn(len(leases))], acq{limit: limits[n], wait: time.Duration(rng.Intn(10)) * time.Second, delay: time.Duration(rng.Intn(3)) * time.Second})
				}
			case 3:
				n := names[rng.Intn(3)]
				if v := w.view(n); v != nil && len(v.Holders) > 0 {
					h := v.Holders[rng.Intn(len(v.Holders))]
					w.release(n, h.Token, h.LeaseId)
				}
			case 4:
				if len(leases) > 0 {
					w.keepAlive(leases[rng.Intn(len(leases))])
				}
			case 5:
				w.advance(time.Duration(rng.Intn(4000)) * time.Millisecond)
			}
			high := last
			for _, n := range names {
				v := w.view(n)
				if v == nil {
					continue
				}
				if len(v.Holders) > int(limits[n]) {
					t.Fatalf("seed %d step %d: %s has %d holders, limit %d", seed, step, n, len(v.Holders), limits[n])
				}
				for _, h := range v.Holders {
					if !seen[h.Token] && h.Token <= last {
						t.Fatalf("seed %d step %d: new token %d is not above earlier token %d", seed, step, h.Token, last)
					}
					seen[h.Token] = true
					high = max(high, h.Token)
				}
			}
			last = high
		}
		// Every token ever granted, in event order, strictly increases.
		for _, n := range names {
			evs, _, err := locks.Events(w.store.Tx(false), n, 0)
			if err != nil {
				t.Fatal(err)
			}
			prev := uint64(0)
			for _, ev := range evs {
				if ev.Type != cmdpb.LockEventType_LOCK_EVENT_TYPE_GRANTED {
					continue
				}
				if ev.Token <= prev {
					t.Fatalf("seed %d: lock %s granted token %d after %d", seed, n, ev.Token, prev)
				}
				prev = ev.Token
			}
		}
	}
}

func TestNewLeaderRenewsLeasesAcrossTheGap(t *testing.T) {
	w := newWorld(t)
	a := w.lease("a", 5*time.Second) // expires at +5s
	old := w.lease("old", time.Second)
	r := w.acquire("L", a, acq{})
	w.advance(2 * time.Second) // "old" expired and was collected at +1s
	prev := int64(w.now)
	// No leader for 10s: a's keep-alives could not be applied.
	w.now += 10 * time.Second
	w.index++
	if err := (locks.Machine{}).LeaderChanged(w.env(), w.store.Tx(true), prev); err != nil {
		t.Fatal(err)
	}
	if err := w.fence("L", r.Holder.Token); err != nil {
		t.Fatalf("holder lost its lock to the leaderless gap: %v", err)
	}
	l, _ := locks.Lease(w.env(), w.store.Tx(false), a)
	if l == nil || l.ExpiresAt != int64(w.now+5*time.Second) {
		t.Fatalf("lease after the new leader: %v", l)
	}
	if l, _ := locks.Lease(w.env(), w.store.Tx(false), old); l != nil {
		t.Fatal("a lease that expired before the gap came back")
	}
	// Without renewals it then expires one TTL later.
	w.advance(6 * time.Second)
	if err := w.fence("L", r.Holder.Token); err == nil {
		t.Fatal("lease never expired after the renewal")
	}
}
