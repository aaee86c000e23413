package client

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"coord/client/clienttest"
)

// TestOpenStreamRetriesAndOutlivesAttempt opens a server stream through the
// generic stream machinery: the first open fails with NO_LEADER and is
// retried; the opened stream keeps delivering after AttemptTimeout.
func TestOpenStreamRetriesAndOutlivesAttempt(t *testing.T) {
	const attempt = 50 * time.Millisecond
	var opens atomic.Int32
	handler := func(_ any, ss grpc.ServerStream) error {
		if opens.Add(1) == 1 {
			return clienttest.NoLeaderError()
		}
		if err := ss.RecvMsg(&emptypb.Empty{}); err != nil {
			return err
		}
		for i := range 3 {
			if i > 0 {
				select {
				case <-time.After(2 * attempt):
				case <-ss.Context().Done():
					return ss.Context().Err()
				}
			}
			if err := ss.SendMsg(wrapperspb.UInt64(uint64(i))); err != nil {
				return err
			}
		}
		return nil
	}
	fc := clienttest.Start(t, 1, grpc.UnknownServiceHandler(handler))
	c := newTestClient(t, fc.Addrs(), func(cfg *Config) { cfg.AttemptTimeout = attempt })

	var stream grpc.ClientStream
	desc := &grpc.StreamDesc{StreamName: "Watch", ServerStreams: true}
	first := &wrapperspb.UInt64Value{}
	err := c.openStream(t.Context(), 0, func(ctx context.Context, cc grpc.ClientConnInterface) error {
		s, err := cc.NewStream(ctx, desc, "/test.Watcher/Watch")
		if err != nil {
			return err
		}
		if err := s.SendMsg(&emptypb.Empty{}); err != nil {
			return err
		}
		if err := s.CloseSend(); err != nil {
			return err
		}
		if err := s.RecvMsg(first); err != nil {
			return err
		}
		stream = s
		return nil
	})
	if err != nil {
		t.Fatalf("openStream: %v", err)
	}
	if opens.Load() != 2 {
		t.Fatalf("%d opens, want 2 (one retry)", opens.Load())
	}
	for want := uint64(1); want < 3; want++ {
		msg := &wrapperspb.UInt64Value{}
		if err := stream.RecvMsg(msg); err != nil {
			t.Fatalf("message %d after the attempt timeout: %v", want, err)
		}
		if msg.GetValue() != want {
			t.Fatalf("message %d = %d", want, msg.GetValue())
		}
	}
}
