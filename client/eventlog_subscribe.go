package client

import (
	"context"
	"errors"
	"iter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	coordv1 "coord/api/coord/v1"
)

// subscriptionIdleTimeout is how long a subscription waits for a message
// before it takes the node for hung and resubscribes elsewhere: the server
// sends at least a heartbeat every 5s.
var subscriptionIdleTimeout = 15 * time.Second

// SubscribeOption configures Subscribe and SubscribeAll: FromEnd or
// CheckpointInterval.
type SubscribeOption interface{ applySubscribe(*subscribeOptions) }

type subscribeOptions struct{ req *coordv1.SubscribeRequest }

type fromEndOption struct{}

func (fromEndOption) applySubscribe(o *subscribeOptions) { o.req.FromEnd = true }

// FromEnd starts the subscription after the last event stored when it
// starts (the from argument is ignored): only new events are delivered.
func FromEnd() SubscribeOption { return fromEndOption{} }

type checkpointOption time.Duration

func (d checkpointOption) applySubscribe(o *subscribeOptions) {
	o.req.CheckpointInterval = durationpb.New(time.Duration(d))
}

// CheckpointInterval sets the least time between checkpoints (server
// default 1s; 10ms to 10m).
func CheckpointInterval(d time.Duration) SubscribeOption { return checkpointOption(d) }

// Subscribe delivers stream's events from version from on: first those
// stored, then new ones as they are appended, until ctx ends or the loop
// breaks. See SubscribeAll for what the sequence yields.
func (c *Client) Subscribe(ctx context.Context, stream string, from uint64, opts ...SubscribeOption) iter.Seq2[*coordv1.SubscribeResponse, error] {
	o := subscribeOptions{req: &coordv1.SubscribeRequest{Stream: stream, From: from}}
	for _, opt := range opts {
		opt.applySubscribe(&o)
	}
	if stream == "" {
		return failed(invalidArgument("subscribe: empty stream name"))
	}
	return c.subscribe(ctx, o.req)
}

// SubscribeAll delivers the events of every stream that filter keeps, from
// global position from on, then follows new ones live, until ctx ends or
// the loop breaks.
//
// The sequence yields events and checkpoints (SubscribeResponse's Event or
// Checkpoint). The first message is a checkpoint naming where the
// subscription starts. Later checkpoints report progress over events that
// were not delivered (filtered out, or removed by retention): every
// matching event before Checkpoint.ResumeFrom has been delivered, so a
// consumer may record it as its position. The subscription reconnects by
// itself, to any node, after disconnects and leader changes, and resumes
// after the last event or checkpoint delivered: no event is skipped or
// delivered twice. It ends with an error only for failures that
// reconnecting cannot fix (an invalid request, a deleted stream, a closed
// client); when ctx ends, it ends without an error.
func (c *Client) SubscribeAll(ctx context.Context, from uint64, filter Filter, opts ...SubscribeOption) iter.Seq2[*coordv1.SubscribeResponse, error] {
	o := subscribeOptions{req: &coordv1.SubscribeRequest{All: true, From: from, Filter: filter.proto()}}
	for _, opt := range opts {
		opt.applySubscribe(&o)
	}
	return c.subscribe(ctx, o.req)
}

// failed returns a sequence that yields err only.
func failed(err error) iter.Seq2[*coordv1.SubscribeResponse, error] {
	return func(yield func(*coordv1.SubscribeResponse, error) bool) { yield(nil, err) }
}

// resumer tracks a subscription's resume point across reconnections.
type resumer struct {
	req     *coordv1.SubscribeRequest
	started bool   // a first checkpoint fixed the start
	next    uint64 // version or position to resume from
}

// request returns the request for the next connection.
func (r *resumer) request() *coordv1.SubscribeRequest {
	req := proto.Clone(r.req).(*coordv1.SubscribeRequest)
	if r.started {
		req.From, req.FromEnd = r.next, false
	}
	return req
}

// accept advances the resume point past m and reports whether m is new to
// the consumer (false for a repeated checkpoint or an event already seen).
func (r *resumer) accept(m *coordv1.SubscribeResponse) bool {
	if cp := m.GetCheckpoint(); cp != nil {
		if r.started && cp.ResumeFrom <= r.next {
			return false
		}
		r.started, r.next = true, cp.ResumeFrom
		return true
	}
	ev := m.GetEvent()
	if ev == nil {
		return false
	}
	at := ev.Position
	if r.req.Stream != "" {
		at = ev.Version
	}
	if r.started && at < r.next {
		return false
	}
	r.started, r.next = true, at+1
	return true
}

// subscribe runs the reconnecting subscription loop: open a stream at the
// nearest node that answers, pass on what it delivers, and on a broken
// stream move on to the next node and resume after the last message.
func (c *Client) subscribe(ctx context.Context, req *coordv1.SubscribeRequest) iter.Seq2[*coordv1.SubscribeResponse, error] {
	return func(yield func(*coordv1.SubscribeResponse, error) bool) {
		r := &resumer{req: req}
		for quick := 0; ; quick++ {
			opened := time.Now()
			more, err := c.followOnce(ctx, r, yield)
			if err != nil && ctx.Err() == nil {
				yield(nil, err)
				return
			}
			if !more || err != nil {
				return
			}
			if time.Since(opened) > time.Second {
				quick = 0
			}
			if err := c.sleep(ctx, c.backoff(quick)); err != nil {
				if errors.Is(err, ErrClosed) {
					yield(nil, err)
				}
				return
			}
		}
	}
}

// followOnce opens one stream and yields from it until it breaks. It
// reports whether to reconnect, and returns an error for a failure that
// reconnecting cannot fix.
func (c *Client) followOnce(ctx context.Context, r *resumer, yield func(*coordv1.SubscribeResponse, error) bool) (bool, error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stream grpc.ServerStreamingClient[coordv1.SubscribeResponse]
	var addr string
	req := r.request()
	err := c.openStream(sctx, coordv1.ReadConsistency_READ_CONSISTENCY_STALE, func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
		if stream, err = logClient(cc).Subscribe(ctx, req); err != nil {
			return err
		}
		if gc, ok := cc.(*grpc.ClientConn); ok {
			addr = gc.Target()
		}
		_, err = stream.Header() // the server sends headers at once
		return err
	})
	if err != nil {
		return false, err
	}
	// The watchdog cancels the stream when no message arrives in time; it
	// runs only while waiting for one, not while the consumer works.
	watchdog := time.AfterFunc(subscriptionIdleTimeout, cancel)
	defer watchdog.Stop()
	for {
		watchdog.Reset(subscriptionIdleTimeout)
		m, err := stream.Recv()
		watchdog.Stop()
		if err != nil {
			if ctx.Err() != nil {
				return false, nil
			}
			if e, ok := asError(err); ok && !e.retryable() {
				return false, e
			}
			c.log.Debug("coord subscription broken; resuming elsewhere", "address", addr, "resume_from", r.next, "err", err)
			c.skipNearest(addr)
			return true, nil
		}
		if r.accept(m) && !yield(m, nil) {
			return false, nil
		}
	}
}
