package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"coord/client"
	"coord/internal/testcluster"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestLockTryLockUnlock(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	cli := newClient(t, c)
	l1, err := cli.Lock(ctxT(t, 10*time.Second), "jobs/a", client.TTL(5*time.Second), client.Owner("one"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = cli.TryLock(ctxT(t, 5*time.Second), "jobs/a", client.Owner("two"))
	var held *client.LockHeldError
	if !errors.Is(err, client.ErrLockHeld) || !errors.As(err, &held) || held.Holders[0].Owner != "one" {
		t.Fatalf("TryLock on a held lock: %v", err)
	}
	// A waiter gets the lock once it is unlocked.
	got := make(chan *client.Lock, 1)
	go func() {
		l2, err := cli.Lock(ctxT(t, 20*time.Second), "jobs/a", client.Owner("three"))
		if err != nil {
			t.Error(err)
		}
		got <- l2
	}()
	c.Eventually(5*time.Second, "the waiter to queue", func() bool {
		r, err := cli.GetLock(ctxT(t, time.Second), "jobs/a")
		return err == nil && r.Found && len(r.Lock.Waiters) == 1
	})
	if err := l1.Unlock(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	<-l1.Done()
	l2 := <-got
	if l2 == nil || l2.Token() <= l1.Token() {
		t.Fatalf("second lock %v: token must exceed %d", l2, l1.Token())
	}
	if err := l2.Unlock(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
}

func TestLockDoneClosesWhenLeaseIsLost(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	cli := newClient(t, c)
	l, err := cli.Lock(ctxT(t, 10*time.Second), "lost", client.TTL(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	// Someone revokes the lease behind the holder's back.
	if err := cli.RevokeLease(ctxT(t, 5*time.Second), l.LeaseID()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done did not close after the lease was revoked")
	}
	if !errors.Is(l.Err(), client.ErrLockLost) || l.Ctx().Err() == nil {
		t.Fatalf("Err = %v, Ctx().Err() = %v", l.Err(), l.Ctx().Err())
	}
}

func TestLockSurvivesLeaderFailover(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	cli := newClient(t, c)
	l, err := cli.Lock(ctxT(t, 10*time.Second), "survivor", client.TTL(4*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock(context.Background())
	leader := c.Leader()
	leader.Kill()
	c.Leader()
	// Across three TTLs after the failover the lock stays held.
	end := time.Now().Add(12 * time.Second)
	for time.Now().Before(end) {
		select {
		case <-l.Done():
			t.Fatalf("lock lost after failover: %v", l.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
	chk, err := cli.CheckToken(ctxT(t, 5*time.Second), "survivor", l.Token())
	if err != nil || !chk.Valid {
		t.Fatalf("token after failover: %v %v", chk, err)
	}
}

func TestWatchLockSeesGrantsAndReleases(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	cli := newClient(t, c)
	events, err := cli.WatchLock(ctxT(t, 20*time.Second), "watched", 0)
	if err != nil {
		t.Fatal(err)
	}
	if first := <-events; first.Type.String() != "LOCK_EVENT_TYPE_SNAPSHOT" {
		t.Fatalf("first event %v, want a snapshot", first)
	}
	l, err := cli.Lock(ctxT(t, 10*time.Second), "watched")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	want := []string{"LOCK_EVENT_TYPE_GRANTED", "LOCK_EVENT_TYPE_RELEASED"}
	for _, w := range want {
		select {
		case ev := <-events:
			if ev.Type.String() != w || ev.Token != l.Token() {
				t.Fatalf("event %v, want %s of token %d", ev, w, l.Token())
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s event", w)
		}
	}
}

func TestFencedPutRefusedAfterLockMovesOn(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	cli := newClient(t, c)
	l1, err := cli.Lock(ctxT(t, 10*time.Second), "res")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctxT(t, 5*time.Second), "k", []byte("one"), client.WithFence(l1.Fence())); err != nil {
		t.Fatalf("fenced put by the holder: %v", err)
	}
	if err := l1.Unlock(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	l2, err := cli.Lock(ctxT(t, 10*time.Second), "res")
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Unlock(context.Background())
	_, err = cli.Put(ctxT(t, 5*time.Second), "k", []byte("stale"), client.WithFence(l1.Fence()))
	if !errors.Is(err, client.ErrFenced) {
		t.Fatalf("put with the old token: %v, want ErrFenced", err)
	}
}
