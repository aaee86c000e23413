package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	coordv1 "coord/api/coord/v1"
	"coord/client/clienttest"
)

// failFirst returns a hook that fails the first call of method with err and
// lets every other call through.
func failFirst(method string, err error) clienttest.Hook {
	var done atomic.Bool
	return func(_ context.Context, call clienttest.Call) (any, error) {
		if call.Method == method && done.CompareAndSwap(false, true) {
			return nil, err
		}
		return nil, nil
	}
}

// assertSameRequestID checks that every call carries client id want and one
// common sequence number, and returns it.
func assertSameRequestID(t *testing.T, calls []clienttest.Call, want uint64) uint64 {
	t.Helper()
	if len(calls) == 0 {
		t.Fatal("no calls recorded")
	}
	seq := calls[0].Seq
	for i, call := range calls {
		if call.ClientID != want || call.Seq != seq || seq == 0 {
			t.Fatalf("call %d on %s: client id %d seq %d, want client id %d seq %d",
				i, call.Node, call.ClientID, call.Seq, want, seq)
		}
	}
	return seq
}

func TestRedirectToLeaderAddress(t *testing.T) {
	fc := clienttest.Start(t, 3)
	stale := fc.Nodes[1]
	// n2 believes it leads and lists only itself, so the client knows
	// neither n1 nor its address until the NOT_LEADER redirect.
	stale.SetHook(func(_ context.Context, call clienttest.Call) (any, error) {
		switch call.Method {
		case "ListMembers":
			resp := fc.MembersResponse("n2")
			resp.Members = resp.Members[1:2]
			return resp, nil
		case "Put":
			return nil, clienttest.NotLeaderError("n1", fc.Nodes[0].Addr)
		}
		return nil, nil
	})
	c := newTestClient(t, []string{stale.Addr})
	if id, _ := c.Leader(); id != "n2" {
		t.Fatalf("setup: client believes leader %q, want the stale n2", id)
	}
	if _, err := c.Put(t.Context(), "k", []byte("v")); err != nil {
		t.Fatalf("Put: %v", err)
	}
	calls := fc.Calls("Put")
	if len(calls) != 2 || calls[0].Node != "n2" || calls[1].Node != "n1" {
		t.Fatalf("Put calls %+v, want n2 then n1", calls)
	}
	assertSameRequestID(t, calls, c.ClientID())
	if id, addr := c.Leader(); id != "n1" || addr != fc.Nodes[0].Addr {
		t.Fatalf("Leader() = %s %s after redirect, want n1 %s", id, addr, fc.Nodes[0].Addr)
	}
	if fc.Applied() != 1 {
		t.Fatalf("applied %d writes, want 1", fc.Applied())
	}
}

func TestRetriesTransientErrorsWithSameRequestID(t *testing.T) {
	cases := map[string]error{
		"outcome unknown after apply": clienttest.AfterApply(clienttest.OutcomeUnknownError()),
		"outcome unknown":             clienttest.OutcomeUnknownError(),
		"not applied":                 clienttest.NotAppliedError(),
		"no leader":                   clienttest.NoLeaderError(),
		"not leader without address":  clienttest.NotLeaderError("", ""),
		"plain unavailable":           status.Error(codes.Unavailable, "transport is closing"),
	}
	for name, failure := range cases {
		t.Run(name, func(t *testing.T) {
			fc := clienttest.Start(t, 3)
			fc.Nodes[0].SetHook(failFirst("Put", failure))
			c := newTestClient(t, fc.Addrs())
			resp, err := c.Put(t.Context(), "k", []byte("v"))
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			calls := fc.Calls("Put")
			var onLeader []clienttest.Call
			for _, call := range calls {
				if call.Node == "n1" {
					onLeader = append(onLeader, call)
				}
			}
			if len(onLeader) < 2 {
				t.Fatalf("Put calls %+v: want the leader to see a retry", calls)
			}
			assertSameRequestID(t, calls, c.ClientID())
			if fc.Applied() != 1 {
				t.Fatalf("applied %d writes, want exactly 1", fc.Applied())
			}
			if !resp.GetSucceeded() || resp.GetRevision() != 1 {
				t.Fatalf("response %v, want the first (and only) application", resp)
			}
		})
	}
}

func TestRetryAfterDroppedConnection(t *testing.T) {
	fc := clienttest.Start(t, 2)
	arrived := make(chan struct{})
	var once sync.Once
	fc.Nodes[0].SetHook(func(ctx context.Context, call clienttest.Call) (any, error) {
		if call.Method == "Put" {
			once.Do(func() { close(arrived) })
			<-ctx.Done() // hold the request until the connection drops
			return nil, ctx.Err()
		}
		return nil, nil
	})
	c := newTestClient(t, fc.Addrs())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Put(t.Context(), "k", []byte("v"))
		errc <- err
	}()
	<-arrived
	fc.SetLeader("n2")
	fc.Nodes[0].Stop()
	if err := <-errc; err != nil {
		t.Fatalf("Put: %v", err)
	}
	calls := fc.Calls("Put")
	if len(calls) != 2 || calls[0].Node != "n1" || calls[1].Node != "n2" {
		t.Fatalf("Put calls %+v, want n1 then n2", calls)
	}
	assertSameRequestID(t, calls, c.ClientID())
	if id, _ := c.Leader(); id != "n2" {
		t.Fatalf("Leader() = %q, want n2", id)
	}
}

func TestAttemptTimeoutRetries(t *testing.T) {
	fc := clienttest.Start(t, 1)
	var first atomic.Bool
	fc.Nodes[0].SetHook(func(ctx context.Context, call clienttest.Call) (any, error) {
		if call.Method == "Put" && first.CompareAndSwap(false, true) {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return nil, nil
	})
	const attempt = 100 * time.Millisecond
	c := newTestClient(t, fc.Addrs(), func(cfg *Config) { cfg.AttemptTimeout = attempt })
	start := time.Now()
	if _, err := c.Put(t.Context(), "k", []byte("v")); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if elapsed := time.Since(start); elapsed < attempt {
		t.Fatalf("Put returned after %v, before the first attempt could time out", elapsed)
	}
	assertSameRequestID(t, fc.Calls("Put"), c.ClientID())
	if n := len(fc.Calls("Put")); n != 2 {
		t.Fatalf("%d Put calls, want 2", n)
	}
}

func TestDistinctCallsGetDistinctSeqs(t *testing.T) {
	fc := clienttest.Start(t, 1)
	c := newTestClient(t, fc.Addrs())
	for i := range 5 {
		if _, err := c.Put(t.Context(), fmt.Sprintf("k%d", i), nil); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Get(t.Context(), "k0"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Delete(t.Context(), "k0"); err != nil {
		t.Fatal(err)
	}
	writes := append(fc.Calls("Put"), fc.Calls("Delete")...)
	for i, call := range writes {
		if call.ClientID != c.ClientID() || call.Seq != uint64(i+1) {
			t.Fatalf("write %d: client id %d seq %d, want %d %d", i, call.ClientID, call.Seq, c.ClientID(), i+1)
		}
		// Sequential calls: nothing else is in flight, so acked is the
		// call's own seq.
		if call.Acked != call.Seq {
			t.Fatalf("write %d: acked %d, want %d", i, call.Acked, call.Seq)
		}
	}
	for _, call := range fc.Calls("Get") {
		if call.ClientID != 0 || call.Seq != 0 {
			t.Fatalf("read carries request id %d/%d", call.ClientID, call.Seq)
		}
	}
}

func TestAckedStaysBelowInFlightSeqAndAdvances(t *testing.T) {
	fc := clienttest.Start(t, 1)
	release := make(chan struct{})
	fc.Nodes[0].SetHook(func(ctx context.Context, call clienttest.Call) (any, error) {
		if call.Method == "Put" && call.Request.(*coordv1.PutRequest).GetKey() == "slow" {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return nil, nil
	})
	c := newTestClient(t, fc.Addrs(), func(cfg *Config) { cfg.AttemptTimeout = 10 * time.Second })
	errc := make(chan error, 1)
	go func() {
		_, err := c.Put(t.Context(), "slow", nil)
		errc <- err
	}()
	waitFor(t, 5*time.Second, "the slow put", func() bool { return len(fc.Calls("Put")) == 1 })
	slowSeq := fc.Calls("Put")[0].Seq
	for i := range 3 {
		if _, err := c.Put(t.Context(), fmt.Sprintf("fast%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, call := range fc.Calls("Put")[1:] {
		if call.Acked != slowSeq {
			t.Fatalf("seq %d sent acked %d while seq %d was in flight", call.Seq, call.Acked, slowSeq)
		}
	}
	close(release)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(t.Context(), "after", nil); err != nil {
		t.Fatal(err)
	}
	calls := fc.Calls("Put")
	last := calls[len(calls)-1]
	if last.Acked != last.Seq || last.Acked <= slowSeq+3 {
		t.Fatalf("after the slow put completed: acked %d seq %d, want acked = seq > %d", last.Acked, last.Seq, slowSeq+3)
	}
}

func TestPermanentErrorsAreNotRetried(t *testing.T) {
	cases := []struct {
		code     codes.Code
		sentinel error
	}{
		{codes.InvalidArgument, ErrInvalidArgument},
		{codes.NotFound, ErrNotFound},
		{codes.FailedPrecondition, ErrFailedPrecondition},
		{codes.AlreadyExists, ErrAlreadyExists},
		{codes.ResourceExhausted, ErrResourceExhausted},
		{codes.PermissionDenied, ErrPermissionDenied},
		{codes.Unimplemented, ErrUnimplemented},
	}
	for _, tc := range cases {
		t.Run(tc.code.String(), func(t *testing.T) {
			fc := clienttest.Start(t, 3)
			for _, n := range fc.Nodes {
				n.SetHook(func(_ context.Context, call clienttest.Call) (any, error) {
					if call.Method == "Put" {
						return nil, status.Error(tc.code, "key: rejected")
					}
					return nil, nil
				})
			}
			c := newTestClient(t, fc.Addrs())
			_, err := c.Put(t.Context(), "k", nil)
			if !errors.Is(err, tc.sentinel) {
				t.Fatalf("Put error %v: want %v", err, tc.sentinel)
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Code != tc.code || ce.Message != "key: rejected" {
				t.Fatalf("Put error %#v: want *Error with code %v", err, tc.code)
			}
			if n := len(fc.Calls("Put")); n != 1 {
				t.Fatalf("%d Put calls, want exactly 1", n)
			}
		})
	}
}

func TestDeadlineRespectedWithoutLeader(t *testing.T) {
	fc := clienttest.Start(t, 3)
	c := newTestClient(t, fc.Addrs())
	fc.SetLeader("")
	const budget = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(t.Context(), budget)
	defer cancel()
	start := time.Now()
	_, err := c.Put(ctx, "k", []byte("v"))
	elapsed := time.Since(start)
	if elapsed > budget+150*time.Millisecond {
		t.Fatalf("Put returned after %v with a %v deadline", elapsed, budget)
	}
	for _, target := range []error{context.DeadlineExceeded, ErrDeadline, ErrNoLeader} {
		if !errors.Is(err, target) {
			t.Errorf("Put error %v: want it to match %v", err, target)
		}
	}
	calls := fc.Calls("Put")
	if len(calls) < 3 {
		t.Fatalf("%d Put attempts in %v, want retries", len(calls), elapsed)
	}
	assertSameRequestID(t, calls, c.ClientID())
}

func TestDeadlineAfterUnknownOutcome(t *testing.T) {
	fc := clienttest.Start(t, 1)
	fc.Nodes[0].SetHook(func(_ context.Context, call clienttest.Call) (any, error) {
		if call.Method == "Put" {
			return nil, clienttest.OutcomeUnknownError()
		}
		return nil, nil
	})
	c := newTestClient(t, fc.Addrs())
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := c.Put(ctx, "k", nil)
	if !errors.Is(err, ErrOutcomeUnknown) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Put error %v: want ErrOutcomeUnknown and context.DeadlineExceeded", err)
	}
	assertSameRequestID(t, fc.Calls("Put"), c.ClientID())
}

func TestCanceledContextStopsAtOnce(t *testing.T) {
	fc := clienttest.Start(t, 1)
	c := newTestClient(t, fc.Addrs())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := c.Put(ctx, "k", nil)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("Put with canceled ctx: %v", err)
	}
	if n := len(fc.Calls("Put")); n != 0 {
		t.Fatalf("%d Put calls with a canceled ctx", n)
	}
}

func TestStaleReadPrefersNearestFollower(t *testing.T) {
	fc := clienttest.Start(t, 3)
	c := newTestClient(t, []string{fc.Nodes[1].Addr, fc.Nodes[0].Addr, fc.Nodes[2].Addr})
	if _, err := c.Put(t.Context(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get(t.Context(), "k", Stale())
	if err != nil || string(resp.GetKv().GetValue()) != "v" {
		t.Fatalf("stale Get = %v, %v", resp, err)
	}
	if _, err := c.Get(t.Context(), "k"); err != nil {
		t.Fatal(err)
	}
	gets := fc.Calls("Get")
	if gets[0].Node != "n2" || gets[1].Node != "n1" {
		t.Fatalf("stale read served by %s, linearizable by %s; want n2 and n1", gets[0].Node, gets[1].Node)
	}

	// With the nearest endpoint down, stale reads move to the next one.
	fc.Nodes[1].Stop()
	for range 3 {
		if _, err := c.Get(t.Context(), "k", Stale()); err != nil {
			t.Fatalf("stale Get with n2 down: %v", err)
		}
	}
	gets = fc.Calls("Get")
	if last := gets[len(gets)-1]; last.Node != "n1" {
		t.Fatalf("stale read served by %s with n2 down, want n1", last.Node)
	}
}

// TestConcurrentUse runs many goroutines through one client while the
// leader fails a share of writes after applying them, and checks that
// every write was applied exactly once.
func TestConcurrentUse(t *testing.T) {
	fc := clienttest.Start(t, 3)
	fc.Nodes[0].SetHook(func(_ context.Context, call clienttest.Call) (any, error) {
		if call.Method != "Put" && call.Method != "Delete" {
			return nil, nil
		}
		switch rand.IntN(10) {
		case 0:
			return nil, clienttest.AfterApply(clienttest.OutcomeUnknownError())
		case 1:
			return nil, clienttest.NotAppliedError()
		}
		return nil, nil
	})
	c := newTestClient(t, fc.Addrs())
	const workers, ops = 200, 10
	var writes atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range ops {
				if err := randomOp(t.Context(), c, fmt.Sprintf("w%d-%d", w, i%4), &writes); err != nil {
					t.Errorf("worker %d op %d: %v", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got, want := fc.Applied(), int(writes.Load()); got != want {
		t.Fatalf("applied %d writes, want exactly %d", got, want)
	}
	seqs := map[uint64]bool{}
	for _, call := range append(fc.Calls("Put"), fc.Calls("Delete")...) {
		if call.Acked > call.Seq {
			t.Fatalf("seq %d sent acked %d", call.Seq, call.Acked)
		}
		seqs[call.Seq] = true
	}
	if len(seqs) != int(writes.Load()) {
		t.Fatalf("%d distinct seqs for %d writes", len(seqs), writes.Load())
	}
}

func randomOp(ctx context.Context, c *Client, key string, writes *atomic.Int64) error {
	var err error
	switch rand.IntN(4) {
	case 0:
		_, err = c.Put(ctx, key, []byte(key))
		writes.Add(1)
	case 1:
		_, err = c.Delete(ctx, key)
		writes.Add(1)
	case 2:
		_, err = c.Get(ctx, key)
	default:
		_, err = c.Get(ctx, key, Stale())
	}
	return err
}
