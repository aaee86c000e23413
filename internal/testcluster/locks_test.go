package testcluster_test

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	coordv1 "coord/api/coord/v1"
	"coord/internal/testcluster"
)

func grantLease(t *testing.T, c *testcluster.Cluster, m *testcluster.Member, owner string, ttl time.Duration) uint64 {
	t.Helper()
	resp, err := c.Locks(m).GrantLease(c.Ctx(5*time.Second), &coordv1.GrantLeaseRequest{Owner: owner, Ttl: durationpb.New(ttl)})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Lease.Id
}

func TestLockLeaseSurvivesLeaderFailover(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	leader := c.Leader()
	f := c.Followers(leader)[0]
	lease := grantLease(t, c, f, "holder", 5*time.Second)
	acq, err := c.Locks(f).Acquire(c.Ctx(5*time.Second), &coordv1.AcquireRequest{Name: "jobs/nightly", LeaseId: lease})
	if err != nil || !acq.Acquired {
		t.Fatalf("acquire: %v %v", acq, err)
	}
	leader.Kill()
	c.Leader()
	// Keep-alives through the surviving nodes keep the lease, and the grant,
	// well past the lease's TTL in state-machine time.
	until := acq.ServerTime.AsTime().Add(12 * time.Second)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for f.Node().FSM().Now() < until.UnixNano() {
		ka, err := c.Locks(f).KeepAlive(c.Ctx(5*time.Second), &coordv1.KeepAliveRequest{LeaseIds: []uint64{lease}})
		if status.Code(err) == codes.Unavailable {
			<-tick.C // between leaders: a client retries, as the client library does
			continue
		}
		if err != nil || len(ka.Leases) != 1 {
			t.Fatalf("keep-alive after failover: %v %v", ka, err)
		}
		<-tick.C
	}
	chk, err := c.Locks(f).CheckToken(c.Ctx(5*time.Second), &coordv1.CheckTokenRequest{Name: "jobs/nightly", Token: acq.Holder.Token})
	if err != nil || !chk.Valid {
		t.Fatalf("token after failover: %v %v", chk, err)
	}
}

func TestExpiryHandsLockToFirstWaiterAndFencesTheOldHolder(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	leader := c.Leader()
	lk := c.Locks(leader)
	first, err := lk.Acquire(c.Ctx(5*time.Second), &coordv1.AcquireRequest{Name: "res", Owner: "stalled", Ttl: durationpb.New(time.Second)})
	if err != nil || !first.Acquired {
		t.Fatalf("first acquire: %v %v", first, err)
	}
	// A fenced write with the current token succeeds.
	fence := []*coordv1.Fence{{Lock: "res", Token: first.Holder.Token}}
	if _, err := c.KV(leader).Put(c.Ctx(5*time.Second), &coordv1.PutRequest{Key: "data", Value: []byte("1"), Fences: fence}); err != nil {
		t.Fatalf("fenced put by the holder: %v", err)
	}
	waiterLease := grantLease(t, c, leader, "waiter", time.Minute)
	// The waiter blocks server-side and is told when the stalled holder's
	// lease expires; it never keeps alive, so no one renews it.
	start := time.Now()
	second, err := lk.Acquire(c.Ctx(10*time.Second), &coordv1.AcquireRequest{Name: "res", LeaseId: waiterLease, Wait: durationpb.New(8 * time.Second)})
	if err != nil || !second.Acquired {
		t.Fatalf("waiting acquire: %v %v", second, err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Fatalf("waiter granted after %v; the lease TTL was 1s", waited)
	}
	if second.Holder.Token <= first.Holder.Token {
		t.Fatalf("new token %d is not above the old %d", second.Holder.Token, first.Holder.Token)
	}
	// The old holder's fenced write is refused, and changes nothing.
	_, err = c.KV(leader).Put(c.Ctx(5*time.Second), &coordv1.PutRequest{Key: "data", Value: []byte("stale"), Fences: fence})
	if status.Code(err) != codes.FailedPrecondition || reason(err) != coordv1.ReasonFenced {
		t.Fatalf("stale fenced put: %v (reason %q), want FailedPrecondition FENCED", err, reason(err))
	}
	if got := mustGet(t, c, leader, "data", 0); got != "1" {
		t.Fatalf("data = %q after a refused stale write", got)
	}
}

func TestLockWaitersAreServedInOrderAcrossNodes(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	leader := c.Leader()
	holder := grantLease(t, c, leader, "h", time.Minute)
	acq, err := c.Locks(leader).Acquire(c.Ctx(5*time.Second), &coordv1.AcquireRequest{Name: "q", LeaseId: holder})
	if err != nil || !acq.Acquired {
		t.Fatal(acq, err)
	}
	type result struct {
		i     int
		token uint64
		err   error
	}
	results := make(chan result, 3)
	var leases []uint64
	for i := 0; i < 3; i++ {
		l := grantLease(t, c, leader, "w", time.Minute)
		leases = append(leases, l)
		via := c.Members[i%len(c.Members)]
		go func() {
			r, err := c.Locks(via).Acquire(c.Ctx(20*time.Second), &coordv1.AcquireRequest{Name: "q", LeaseId: l, Wait: durationpb.New(15 * time.Second)})
			if err == nil && !r.Acquired {
				err = status.Error(codes.Aborted, "not acquired")
			}
			tok := uint64(0)
			if r != nil && r.Holder != nil {
				tok = r.Holder.Token
			}
			results <- result{i, tok, err}
		}()
		// Wait until the waiter is queued, to fix the order.
		c.Eventually(5*time.Second, "waiter queued", func() bool {
			g, err := c.Locks(leader).GetLock(c.Ctx(time.Second), &coordv1.GetLockRequest{Name: "q"})
			return err == nil && len(g.Lock.Waiters) == i+1
		})
	}
	tok := acq.Holder.Token
	owner := holder
	for n := 0; n < 3; n++ {
		if _, err := c.Locks(leader).Release(c.Ctx(5*time.Second), &coordv1.ReleaseRequest{Name: "q", Token: tok, LeaseId: owner}); err != nil {
			t.Fatal(err)
		}
		r := <-results
		if r.err != nil || r.i != n {
			t.Fatalf("grant %d went to waiter %d (%v)", n, r.i, r.err)
		}
		tok, owner = r.token, leases[r.i]
	}
}

func TestLockInvalidInput(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	leader := c.Leader()
	before := leader.Node().FSM().AppliedIndex()
	bad := []*coordv1.AcquireRequest{
		{Name: "", Ttl: durationpb.New(time.Second)},
		{Name: "ok", Ttl: durationpb.New(time.Millisecond)},
		{Name: "ok"}, // no lease, no ttl
		{Name: "ok", Ttl: durationpb.New(time.Second), Wait: durationpb.New(-time.Second)},
		{Name: "bad name", Ttl: durationpb.New(time.Second)},
	}
	for _, req := range bad {
		if _, err := c.Locks(leader).Acquire(c.Ctx(time.Second), req); status.Code(err) != codes.InvalidArgument {
			t.Errorf("acquire %v: %v, want InvalidArgument", req, err)
		}
	}
	if _, err := c.Locks(leader).Release(c.Ctx(time.Second), &coordv1.ReleaseRequest{Name: "ok"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("release without token or lease: %v", err)
	}
	if after := leader.Node().FSM().AppliedIndex(); after != before {
		t.Fatalf("invalid requests were applied (%d -> %d)", before, after)
	}
}
