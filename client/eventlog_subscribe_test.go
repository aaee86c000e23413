package client

import (
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	coordv1 "coord/api/coord/v1"
	"coord/client/clienttest"
)

// TestSubscribeLeavesASilentNode serves subscriptions from a fake node that
// delivers one event and then hangs without a heartbeat: the client must
// give up on the stream after its idle timeout and resume after that event.
func TestSubscribeLeavesASilentNode(t *testing.T) {
	old := subscriptionIdleTimeout
	subscriptionIdleTimeout = 200 * time.Millisecond
	t.Cleanup(func() { subscriptionIdleTimeout = old })

	var mu sync.Mutex
	var froms []uint64
	handler := func(_ any, ss grpc.ServerStream) error {
		var req coordv1.SubscribeRequest
		if err := ss.RecvMsg(&req); err != nil {
			return err
		}
		mu.Lock()
		froms = append(froms, req.From)
		mu.Unlock()
		if err := ss.SendHeader(metadata.MD{}); err != nil {
			return err
		}
		msgs := []*coordv1.SubscribeResponse{
			{Message: &coordv1.SubscribeResponse_Checkpoint{Checkpoint: &coordv1.Checkpoint{ResumeFrom: req.From}}},
			{Message: &coordv1.SubscribeResponse_Event{Event: &coordv1.RecordedEvent{Stream: "s", Version: req.From, Position: 10 + req.From}}},
		}
		for _, m := range msgs {
			if err := ss.SendMsg(m); err != nil {
				return err
			}
		}
		<-ss.Context().Done() // hang: no heartbeat
		return ss.Context().Err()
	}
	fc := clienttest.Start(t, 1, grpc.UnknownServiceHandler(handler))
	c := newTestClient(t, fc.Addrs())
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var versions []uint64
	for m, err := range c.Subscribe(ctx, "s", 0) {
		if err != nil {
			t.Fatal(err)
		}
		if ev := m.GetEvent(); ev != nil {
			if versions = append(versions, ev.Version); len(versions) == 3 {
				break
			}
		}
	}
	if len(versions) != 3 || versions[0] != 0 || versions[1] != 1 || versions[2] != 2 {
		t.Fatalf("delivered versions %v, want [0 1 2]", versions)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(froms) < 3 || froms[0] != 0 || froms[1] != 1 || froms[2] != 2 {
		t.Fatalf("subscriptions started from %v, want 0, 1, 2", froms)
	}
}

func TestResumerDropsRepeats(t *testing.T) {
	r := &resumer{req: &coordv1.SubscribeRequest{All: true, FromEnd: true}}
	cp := func(n uint64) *coordv1.SubscribeResponse {
		return &coordv1.SubscribeResponse{Message: &coordv1.SubscribeResponse_Checkpoint{Checkpoint: &coordv1.Checkpoint{ResumeFrom: n}}}
	}
	ev := func(pos uint64) *coordv1.SubscribeResponse {
		return &coordv1.SubscribeResponse{Message: &coordv1.SubscribeResponse_Event{Event: &coordv1.RecordedEvent{Position: pos}}}
	}
	steps := []struct {
		m    *coordv1.SubscribeResponse
		want bool
	}{
		{cp(5), true}, {ev(5), true}, {ev(7), true}, {cp(8), false}, {ev(6), false}, {cp(12), true}, {ev(12), true},
	}
	for i, s := range steps {
		if got := r.accept(s.m); got != s.want {
			t.Fatalf("step %d: accept = %v, want %v", i, got, s.want)
		}
	}
	if req := r.request(); req.From != 13 || req.FromEnd {
		t.Fatalf("resume request from %d (from_end %v), want 13", req.From, req.FromEnd)
	}
}
