package testcluster_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	coordv1 "coord/api/coord/v1"
	"coord/eventlog"
	"coord/internal/testcluster"
)

func eventLog(c *testcluster.Cluster, m *testcluster.Member) coordv1.EventLogServiceClient {
	return coordv1.NewEventLogServiceClient(c.Conn(m))
}

// TestEventLogAppendThroughAFollower appends through a follower, which
// forwards to the leader, and reads the events back from the follower's
// local state once it has applied them.
func TestEventLogAppendThroughAFollower(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	f := c.Followers(c.Leader())[0]
	resp, err := eventLog(c, f).Append(c.Ctx(5*time.Second), &coordv1.AppendRequest{
		Stream: "s", Events: []*coordv1.NewEvent{{Id: "a", Type: "T"}, {Id: "b", Type: "T"}},
	})
	if err != nil || resp.Result != coordv1.AppendResult_APPEND_RESULT_APPENDED || len(resp.Positions) != 2 {
		t.Fatalf("append via follower: %v, %v", resp, err)
	}
	c.WaitConverged(10 * time.Second)
	page, err := eventLog(c, f).ReadStream(c.Ctx(5*time.Second), &coordv1.ReadStreamRequest{Stream: "s", Consistency: coordv1.ReadConsistency_READ_CONSISTENCY_STALE})
	if err != nil || len(page.Events) != 2 || page.Events[1].Id != "b" {
		t.Fatalf("stale read on the follower: %v, %v", page, err)
	}
}

// TestEventLogFilteredReadAllScansABoundedStretch checks that a filtered
// read of all streams that matches nothing still moves its position on, by
// at most eventlog.MaxScan per call, and reports the end of the log.
func TestEventLogFilteredReadAllScansABoundedStretch(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	cl := eventLog(c, c.Leader())
	const batches = eventlog.MaxScan/eventlog.MaxEventsPerAppend + 1
	for b := range batches {
		req := &coordv1.AppendRequest{Stream: "noise"}
		for i := range eventlog.MaxEventsPerAppend {
			req.Events = append(req.Events, &coordv1.NewEvent{Id: fmt.Sprintf("%d-%d", b, i), Type: "Noise"})
		}
		if _, err := cl.Append(c.Ctx(10*time.Second), req); err != nil {
			t.Fatal(err)
		}
	}
	filter := &coordv1.EventFilter{StreamPrefix: "signal"}
	page, err := cl.ReadAll(c.Ctx(5*time.Second), &coordv1.ReadAllRequest{Filter: filter})
	if err != nil || len(page.Events) != 0 || page.NextPosition != eventlog.MaxScan || page.EndOfLog {
		t.Fatalf("first filtered page: %d events, next %d, end %v (%v)", len(page.GetEvents()), page.GetNextPosition(), page.GetEndOfLog(), err)
	}
	page, err = cl.ReadAll(c.Ctx(5*time.Second), &coordv1.ReadAllRequest{Filter: filter, FromPosition: page.NextPosition})
	if err != nil || page.NextPosition != batches*eventlog.MaxEventsPerAppend || !page.EndOfLog {
		t.Fatalf("second filtered page: next %d, end %v (%v)", page.GetNextPosition(), page.GetEndOfLog(), err)
	}
}

func TestEventLogInvalidInput(t *testing.T) {
	c := testcluster.New(t, 1, testcluster.Options{})
	cl := eventLog(c, c.Leader())
	ctx := c.Ctx(10 * time.Second)
	big := make([]byte, eventlog.MaxDataBytes+1)
	check := func(name, want string, err error) {
		t.Helper()
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), want) {
			t.Errorf("%s: %v; want InvalidArgument mentioning %q", name, err, want)
		}
	}
	_, err := cl.Append(ctx, &coordv1.AppendRequest{Stream: "s", Events: []*coordv1.NewEvent{{Id: "a", Type: "T", Data: big}}})
	check("big data", "data is", err)
	_, err = cl.Append(ctx, &coordv1.AppendRequest{Stream: "s s", Events: []*coordv1.NewEvent{{Id: "a", Type: "T"}}})
	check("bad stream", "stream", err)
	_, err = cl.Append(ctx, &coordv1.AppendRequest{Stream: "s", ExpectedKind: 42, Events: []*coordv1.NewEvent{{Id: "a", Type: "T"}}})
	check("bad expectation", "expected_kind", err)
	_, err = cl.ReadStream(ctx, &coordv1.ReadStreamRequest{Stream: "s", Limit: eventlog.MaxReadLimit + 1})
	check("read limit", "limit", err)
	_, err = cl.ReadAll(ctx, &coordv1.ReadAllRequest{Filter: &coordv1.EventFilter{EventType: "a b"}})
	check("filter type", "filter.event_type", err)
	_, err = cl.SetRetention(ctx, &coordv1.SetRetentionRequest{Stream: "s", Retention: &coordv1.Retention{MaxAge: durationpb.New(time.Millisecond)}})
	check("max age", "max_age", err)
	_, err = cl.CommitCursor(ctx, &coordv1.CommitCursorRequest{Name: ""})
	check("cursor name", "name", err)
	for name, req := range map[string]*coordv1.SubscribeRequest{
		"neither":         {},
		"both":            {Stream: "s", All: true},
		"stream filter":   {Stream: "s", Filter: &coordv1.EventFilter{EventType: "T"}},
		"tiny checkpoint": {All: true, CheckpointInterval: durationpb.New(time.Microsecond)},
	} {
		sub, err := cl.Subscribe(ctx, req)
		if err == nil {
			_, err = sub.Recv()
		}
		check("subscribe "+name, "", err)
	}
}
