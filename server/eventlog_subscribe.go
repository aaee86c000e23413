package server

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	coordv1 "coord/api/coord/v1"
	"coord/eventlog"
	"coord/internal/cmdpb"
	"coord/internal/sm"
	"coord/node"
)

// Subscription tuning.
const (
	// subscribeBatch bounds the events read from storage per read
	// transaction: a subscription holds at most one batch in memory, and a
	// consumer slower than the appends simply reads further behind.
	subscribeBatch = 256
	// defaultCheckpointInterval is the least time between checkpoints when
	// the request sets none.
	defaultCheckpointInterval = time.Second
	// minCheckpointInterval and maxCheckpointInterval bound the requested
	// interval.
	minCheckpointInterval = 10 * time.Millisecond
	maxCheckpointInterval = 10 * time.Minute
	// heartbeatInterval is the longest a subscription stays silent: an idle
	// one repeats its last checkpoint, so that clients can tell a quiet log
	// from a node that stopped answering.
	heartbeatInterval = 5 * time.Second
	// readinessPoll is how often an idle subscription checks that its node
	// still follows a leader.
	readinessPoll = time.Second
	// staleAfter ends a subscription whose node has not been ready (no
	// leader, or not applying what is committed) for this long, so that the
	// client resumes at a node that receives new events.
	staleAfter = 5 * time.Second
)

// subscription is the progress of one Subscribe call.
type subscription struct {
	stream   string // "" subscribes to all streams
	filter   eventlog.Filter
	interval time.Duration
	next     uint64    // version (stream) or position (all) to read next
	reported uint64    // where the consumer knows to resume
	lastSent time.Time // when a message was last sent
}

// newSubscription validates a request.
func newSubscription(req *coordv1.SubscribeRequest) (*subscription, error) {
	sub := &subscription{stream: req.Stream, next: req.From, interval: defaultCheckpointInterval}
	if (req.Stream == "") == !req.All {
		return nil, invalid("give exactly one of stream and all")
	}
	if req.Stream != "" {
		if err := validStream(req.Stream); err != nil {
			return nil, err
		}
		if req.Filter != nil {
			return nil, invalid("filter: only a subscription to all streams takes a filter")
		}
	}
	f, err := filterOf(req.Filter)
	if err != nil {
		return nil, err
	}
	sub.filter = f
	if req.CheckpointInterval != nil {
		if sub.interval, err = duration("checkpoint_interval", req.CheckpointInterval, minCheckpointInterval, maxCheckpointInterval); err != nil {
			return nil, err
		}
	}
	return sub, nil
}

func (sub *subscription) topic() string {
	if sub.stream == "" {
		return eventlog.TopicAll
	}
	return eventlog.StreamTopic(sub.stream)
}

// batch is what one read from storage found.
type batch struct {
	events   []eventlog.Event
	caughtUp bool // nothing more is stored now
	deleted  bool // the subscribed stream is deleted
}

// read reads the next batch from the local state and advances next.
func (sub *subscription) read(env sm.Env, tx sm.Tx) (batch, error) {
	if sub.stream == "" {
		page, err := eventlog.ReadAll(env, tx, sub.next, sub.filter, subscribeBatch)
		if err != nil {
			return batch{}, err
		}
		sub.next = page.Next
		return batch{events: page.Events, caughtUp: page.End}, nil
	}
	page, err := eventlog.ReadStream(env, tx, sub.stream, sub.next, false, subscribeBatch)
	if err != nil {
		return batch{}, err
	}
	sub.next = max(sub.next, page.Next)
	deleted := page.Stream != nil && page.Stream.Record.Deleted
	return batch{events: page.Events, caughtUp: page.End, deleted: deleted}, nil
}

// checkpointDue reports whether to send a checkpoint now: progress over
// undelivered events not reported for interval, or silence for
// heartbeatInterval.
func (sub *subscription) checkpointDue() bool {
	since := time.Since(sub.lastSent)
	return sub.next > sub.reported && since >= sub.interval || since >= heartbeatInterval
}

// resumeAfter returns where to resume after ev.
func (sub *subscription) resumeAfter(ev eventlog.Event) uint64 {
	if sub.stream == "" {
		return ev.Position + 1
	}
	return ev.Version + 1
}

// end returns the version or position after the last stored event.
func (sub *subscription) end(env sm.Env, tx sm.Tx) (uint64, error) {
	if sub.stream == "" {
		return eventlog.Head(tx), nil
	}
	st, err := eventlog.GetStream(env, tx, sub.stream)
	if err != nil || st == nil {
		return 0, err
	}
	return st.Record.NextVersion, nil
}

// Subscribe serves a subscription from this node's local state: it sends
// headers at once and a checkpoint naming the start, catches up from
// storage a batch at a time, then waits for change notifications and reads
// again. Positions and versions are the same on every node, so a node that
// lags behind delivers the same events, later.
func (e *eventLogService) Subscribe(req *coordv1.SubscribeRequest, stream grpc.ServerStreamingServer[coordv1.SubscribeResponse]) error {
	sub, err := newSubscription(req)
	if err != nil {
		return toStatus(err)
	}
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	ctx := stream.Context()
	if req.FromEnd {
		err := e.s.node.Read(ctx, false, sm.MachineEventLog, func(env sm.Env, tx sm.Tx) (err error) {
			sub.next, err = sub.end(env, tx)
			return err
		})
		if err != nil {
			return toStatus(err)
		}
	}
	if err := e.sendCheckpoint(stream, sub); err != nil {
		return err
	}
	if err := e.follow(ctx, stream, sub); err != nil && ctx.Err() == nil {
		return toStatus(err)
	}
	return nil
}

func (e *eventLogService) sendCheckpoint(stream grpc.ServerStreamingServer[coordv1.SubscribeResponse], sub *subscription) error {
	cp := &coordv1.Checkpoint{ResumeFrom: sub.next}
	if err := stream.Send(&coordv1.SubscribeResponse{Message: &coordv1.SubscribeResponse_Checkpoint{Checkpoint: cp}}); err != nil {
		return err
	}
	sub.reported, sub.lastSent = sub.next, time.Now()
	return nil
}

// follow is the subscription loop: read a batch, send it, send a checkpoint
// when one is due, and wait for a change only once caught up.
func (e *eventLogService) follow(ctx context.Context, stream grpc.ServerStreamingServer[coordv1.SubscribeResponse], sub *subscription) error {
	var notReady time.Time
	for ctx.Err() == nil {
		changed := e.s.node.Watch(sm.MachineEventLog, sub.topic())
		var b batch
		err := e.s.node.Read(ctx, false, sm.MachineEventLog, func(env sm.Env, tx sm.Tx) (err error) {
			b, err = sub.read(env, tx)
			return err
		})
		if err != nil {
			return err
		}
		for _, ev := range b.events {
			if err := stream.Send(&coordv1.SubscribeResponse{Message: &coordv1.SubscribeResponse_Event{Event: recordedEvent(ev)}}); err != nil {
				return err
			}
			sub.reported, sub.lastSent = sub.resumeAfter(ev), time.Now()
		}
		if b.deleted {
			return rejection(&cmdpb.Result{RejectCode: cmdpb.RejectCode_REJECT_CODE_FAILED_PRECONDITION,
				RejectMessage: fmt.Sprintf("stream %q is deleted", sub.stream)})
		}
		if sub.checkpointDue() {
			if err := e.sendCheckpoint(stream, sub); err != nil {
				return err
			}
		}
		if !b.caughtUp {
			continue
		}
		if err := e.wait(ctx, changed, sub, &notReady); err != nil {
			return err
		}
	}
	return nil
}

// wait blocks until a change is notified, ctx ends, a checkpoint falls due,
// or it is time to check the node's readiness. It fails when the node has
// not been ready for staleAfter.
func (e *eventLogService) wait(ctx context.Context, changed <-chan struct{}, sub *subscription, notReady *time.Time) error {
	d := min(readinessPoll, max(heartbeatInterval-time.Since(sub.lastSent), 0))
	if sub.next > sub.reported {
		d = min(d, max(sub.interval-time.Since(sub.lastSent), 0))
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-changed:
		return nil
	case <-ctx.Done():
		return nil
	case <-timer.C:
	}
	if ok, why := e.s.node.Ready(); !ok {
		if notReady.IsZero() {
			*notReady = time.Now()
		} else if time.Since(*notReady) > staleAfter {
			return fmt.Errorf("%w: this node has not been ready for %v (%s); resubscribe at another node", node.ErrNoLeader, staleAfter, why)
		}
	} else {
		*notReady = time.Time{}
	}
	return nil
}
