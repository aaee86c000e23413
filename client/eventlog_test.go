package client_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	coordv1 "coord/api/coord/v1"
	"coord/client"
	"coord/internal/testcluster"
)

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustAppend(t *testing.T, cli *client.Client, stream string, events []client.Event, opts ...client.AppendOption) *coordv1.AppendResponse {
	t.Helper()
	resp, err := cli.Append(ctxFor(t, 10*time.Second), stream, events, opts...)
	if err != nil {
		t.Fatalf("append to %s: %v", stream, err)
	}
	return resp
}

func ev(id, data string) client.Event {
	return client.Event{ID: id, Type: "Noted", Data: []byte(data)}
}

func TestEventLogThroughTheClient(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	cli := newClient(t, c)
	ctx := ctxFor(t, 30*time.Second)

	first := mustAppend(t, cli, "orders-1", []client.Event{ev("a", "1"), ev("b", "2")}, client.ExpectNoStream())
	if first.Result != coordv1.AppendResult_APPEND_RESULT_APPENDED || !slices.Equal(first.Versions, []uint64{0, 1}) || !slices.Equal(first.Positions, []uint64{0, 1}) {
		t.Fatalf("first append: %v", first)
	}
	again := mustAppend(t, cli, "orders-1", []client.Event{ev("a", "1"), ev("b", "2")}, client.ExpectNoStream())
	if again.Result != coordv1.AppendResult_APPEND_RESULT_DUPLICATE || !slices.Equal(again.Positions, first.Positions) {
		t.Fatalf("repeated append: %v", again)
	}
	wrong := mustAppend(t, cli, "orders-1", []client.Event{ev("c", "3")}, client.ExpectVersion(0))
	if wrong.Result != coordv1.AppendResult_APPEND_RESULT_WRONG_EXPECTED_VERSION || wrong.CurrentVersion != 1 || !wrong.StreamExists {
		t.Fatalf("wrong expected version: %v", wrong)
	}
	mustAppend(t, cli, "users-1", []client.Event{{Type: "Joined", Data: []byte("x")}}) // generated id
	mustAppend(t, cli, "orders-1", []client.Event{ev("c", "3")}, client.ExpectVersion(1))

	page, err := cli.ReadBackwards(ctx, "orders-1", client.End, 2)
	if err != nil || len(page.Events) != 2 || page.Events[0].Version != 2 || page.Events[1].Version != 1 || page.EndOfStream {
		t.Fatalf("read backwards: %v, %v", page, err)
	}
	all, err := cli.ReadAll(ctx, 0, 10, client.Filter{StreamPrefix: "orders-"})
	if err != nil || len(all.Events) != 3 || all.Events[2].Position != 3 || all.NextPosition != 4 || !all.EndOfLog {
		t.Fatalf("read all: %v, %v", all, err)
	}
	info, err := cli.StreamInfo(ctx, "orders-1")
	if err != nil || info.Stream.Status != coordv1.StreamStatus_STREAM_STATUS_ACTIVE || info.Stream.NextVersion != 3 || info.HeadPosition != 4 {
		t.Fatalf("stream info: %v, %v", info, err)
	}
	streams, err := cli.ListStreams(ctx, "")
	if err != nil || len(streams) != 2 || streams[0].Name != "orders-1" || streams[1].Name != "users-1" {
		t.Fatalf("list streams: %v, %v", streams, err)
	}

	del, err := cli.DeleteStream(ctx, "users-1", client.ExpectExists())
	if err != nil || del.Result != coordv1.DeleteStreamResult_DELETE_STREAM_RESULT_DELETED {
		t.Fatalf("delete: %v, %v", del, err)
	}
	if _, err := cli.Append(ctx, "users-1", []client.Event{ev("z", "")}); !errors.Is(err, client.ErrFailedPrecondition) {
		t.Fatalf("append to a deleted stream: %v", err)
	}
	if page, err := cli.Read(ctx, "users-1", 0, 0); err != nil || page.Status != coordv1.StreamStatus_STREAM_STATUS_DELETED || len(page.Events) != 0 {
		t.Fatalf("read of a deleted stream: %v, %v", page, err)
	}
	if _, err := cli.Append(ctx, "bad name", []client.Event{ev("z", "")}); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("bad stream name: %v", err)
	}

	ret, err := cli.SetRetention(ctx, "orders-1", client.Retention{MaxCount: 1})
	if err != nil || ret.Stream.FirstVersion != 2 || ret.Stream.Retention.MaxCount != 1 {
		t.Fatalf("set retention: %v, %v", ret, err)
	}
	if page, err := cli.Read(ctx, "orders-1", 0, 0); err != nil || len(page.Events) != 1 || page.Events[0].Version != 2 {
		t.Fatalf("read after retention: %v, %v", page, err)
	}
	c.WaitConverged(10 * time.Second)
}

func TestEventLogFencedAppend(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	cli := newClient(t, c)
	ctx := ctxFor(t, 30*time.Second)
	l, err := cli.TryLock(ctx, "writers/orders", client.TTL(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, cli, "orders", []client.Event{ev("a", "")}, client.WithFence(l.Fence()))
	stale := l.Fence()
	if err := l.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Append(ctx, "orders", []client.Event{ev("b", "")}, client.WithFence(stale)); !errors.Is(err, client.ErrFenced) {
		t.Fatalf("append with a stale fence: %v", err)
	}
	if _, err := cli.CommitCursor(ctx, "orders-reader", 1, client.WithFence(stale)); !errors.Is(err, client.ErrFenced) {
		t.Fatalf("cursor commit with a stale fence: %v", err)
	}
}

// TestEventLogAppendsSurviveFailover appends from several writers, each to
// its own stream with the exact expected version, while the leader is killed
// and restarted twice. Every append must be acknowledged; every stream must
// hold exactly its writer's events in order, and the log of all streams
// must hold positions 0..N-1 without a gap.
func TestEventLogAppendsSurviveFailover(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	cli := newClient(t, c)
	const writers, appends = 6, 40
	done := make(chan error, writers)
	progress := make(chan struct{}, writers*appends)
	for w := range writers {
		go func() { done <- appendSequence(cli, fmt.Sprintf("w%d", w), appends, progress) }()
	}
	acked := 0
	for round := range 2 {
		for ; acked < (round+1)*writers*appends/3; acked++ {
			<-progress
		}
		leader := c.Leader()
		leader.Kill()
		c.Leader()
		leader.Restart()
	}
	for range writers {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	ctx := ctxFor(t, 30*time.Second)
	for w := range writers {
		page, err := cli.Read(ctx, fmt.Sprintf("w%d", w), 0, 1000)
		if err != nil || len(page.Events) != appends {
			t.Fatalf("w%d: %d events, %v", w, len(page.Events), err)
		}
		for i, e := range page.Events {
			if e.Version != uint64(i) || e.Id != fmt.Sprintf("w%d-%d", w, i) {
				t.Fatalf("w%d@%d holds %s", w, e.Version, e.Id)
			}
		}
	}
	all, err := cli.ReadAll(ctx, 0, 1000, client.Filter{})
	if err != nil || len(all.Events) != writers*appends || !all.EndOfLog {
		t.Fatalf("read all: %d events, end %v, %v", len(all.Events), all.GetEndOfLog(), err)
	}
	for i, e := range all.Events {
		if e.Position != uint64(i) {
			t.Fatalf("position %d holds %d", i, e.Position)
		}
	}
	c.WaitConverged(15 * time.Second)
}

// appendSequence appends n events to stream one by one, each expecting the
// previous version.
func appendSequence(cli *client.Client, stream string, n int, progress chan<- struct{}) error {
	for i := range n {
		opt := client.ExpectNoStream()
		if i > 0 {
			opt = client.ExpectVersion(uint64(i - 1))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		resp, err := cli.Append(ctx, stream, []client.Event{ev(fmt.Sprintf("%s-%d", stream, i), "")}, opt)
		cancel()
		if err != nil {
			return fmt.Errorf("%s append %d: %w", stream, i, err)
		}
		if resp.Result != coordv1.AppendResult_APPEND_RESULT_APPENDED || resp.Versions[0] != uint64(i) {
			return fmt.Errorf("%s append %d: %v", stream, i, resp)
		}
		progress <- struct{}{}
	}
	return nil
}

// TestEventLogSlowSubscriberMissesNothing: a subscriber that stops reading
// while megabytes of events are appended receives every one of them, in
// order, once it reads again (the server reads storage in bounded batches
// as the consumer takes them, so it neither drops nor buffers without
// bound).
func TestEventLogSlowSubscriberMissesNothing(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	cli := newClient(t, c)
	ctx := ctxFor(t, 60*time.Second)
	const batches, perBatch = 40, 50 // 2000 events of 4 KiB: 8 MiB
	payload := make([]byte, 4<<10)
	appended := make(chan error, 1)
	next := uint64(0)
	for m, err := range cli.Subscribe(ctx, "slow", 0) {
		if err != nil {
			t.Fatalf("subscribe: %v", err)
		}
		if m.GetCheckpoint() != nil && next == 0 && appended != nil {
			// Subscribed: append everything while this loop does not read.
			go func() {
				for b := range batches {
					events := make([]client.Event, perBatch)
					for i := range events {
						events[i] = client.Event{ID: fmt.Sprintf("e%d-%d", b, i), Type: "Big", Data: payload}
					}
					if _, err := cli.Append(ctx, "slow", events); err != nil {
						appended <- err
						return
					}
				}
				appended <- nil
			}()
			if err := <-appended; err != nil {
				t.Fatalf("append: %v", err)
			}
			appended = nil
			continue
		}
		e := m.GetEvent()
		if e == nil {
			continue
		}
		if e.Version != next {
			t.Fatalf("received version %d, want %d", e.Version, next)
		}
		if want := fmt.Sprintf("e%d-%d", next/perBatch, next%perBatch); e.Id != want {
			t.Fatalf("version %d has id %q, want %q", next, e.Id, want)
		}
		next++
		if next == batches*perBatch {
			return
		}
	}
	t.Fatalf("subscription ended after %d of %d events", next, batches*perBatch)
}
