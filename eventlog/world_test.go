package eventlog_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"coord/eventlog"
	"coord/internal/cmdpb"
	"coord/internal/sm"
	"coord/internal/sm/smtest"
)

// world drives the event-log machine through numbered entries with a clock.
type world struct {
	t     *testing.T
	store *smtest.Store
	index uint64
	now   time.Duration
}

// newWorld returns an empty world whose buckets exist, so that the state
// hash changes only when records do.
func newWorld(t *testing.T) *world {
	w := &world{t: t, store: smtest.New(), now: time.Hour}
	tx := w.store.Tx(true)
	for _, b := range eventlog.Buckets {
		tx.Bucket(b)
	}
	return w
}

func (w *world) env() sm.Env { return sm.Env{Index: w.index, Term: 1, Now: int64(w.now)} }

// apply runs one op as the next log entry and returns the rejection, if any.
func (w *world) apply(op uint32, req, res proto.Message) *sm.Rejection {
	w.t.Helper()
	w.index++
	body, err := proto.Marshal(req)
	if err != nil {
		w.t.Fatal(err)
	}
	before := w.store.Hash()
	out, err := eventlog.Machine{}.Apply(w.env(), w.store.Tx(true), op, body)
	var rej *sm.Rejection
	if errors.As(err, &rej) {
		if w.store.Hash() != before {
			w.t.Fatalf("op %d was rejected (%v) but changed the state", op, rej)
		}
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

func newEvent(id string) *cmdpb.EventLogNewEvent {
	return &cmdpb.EventLogNewEvent{Id: id, Type: "Happened", Data: []byte("data of " + id)}
}

func events(ids ...string) []*cmdpb.EventLogNewEvent {
	out := make([]*cmdpb.EventLogNewEvent, len(ids))
	for i, id := range ids {
		out[i] = newEvent(id)
	}
	return out
}

// expect is an expected-version condition.
type expect struct {
	kind    cmdpb.EventLogExpected
	version uint64
}

var (
	anyVersion = expect{kind: cmdpb.EventLogExpected_EVENT_LOG_EXPECTED_ANY}
	noStream   = expect{kind: cmdpb.EventLogExpected_EVENT_LOG_EXPECTED_NO_STREAM}
	exists     = expect{kind: cmdpb.EventLogExpected_EVENT_LOG_EXPECTED_EXISTS}
)

func exact(v uint64) expect {
	return expect{kind: cmdpb.EventLogExpected_EVENT_LOG_EXPECTED_VERSION, version: v}
}

func (w *world) tryAppend(stream string, e expect, evs []*cmdpb.EventLogNewEvent) (*cmdpb.EventLogAppendResult, *sm.Rejection) {
	w.t.Helper()
	var res cmdpb.EventLogAppendResult
	rej := w.apply(eventlog.OpAppend, &cmdpb.EventLogAppend{Stream: stream, Events: evs, Expected: e.kind, ExpectedVersion: e.version}, &res)
	return &res, rej
}

// append appends events with the given ids and fails the test on a rejection.
func (w *world) append(stream string, e expect, ids ...string) *cmdpb.EventLogAppendResult {
	w.t.Helper()
	res, rej := w.tryAppend(stream, e, events(ids...))
	if rej != nil {
		w.t.Fatalf("append to %s: %v", stream, rej)
	}
	return res
}

// appendN appends n events with ids prefix-0, prefix-1, ... one per entry.
func (w *world) appendN(stream, prefix string, n int) {
	w.t.Helper()
	for i := range n {
		w.append(stream, anyVersion, fmt.Sprintf("%s-%d", prefix, i))
	}
}

func (w *world) setRetention(r *cmdpb.EventLogSetRetention) *cmdpb.EventLogStream {
	w.t.Helper()
	var res cmdpb.EventLogSetRetentionResult
	if rej := w.apply(eventlog.OpSetRetention, r, &res); rej != nil {
		w.t.Fatalf("set retention: %v", rej)
	}
	return res.Stream
}

func (w *world) deleteStream(stream string, e expect) *cmdpb.EventLogDeleteStreamResult {
	w.t.Helper()
	var res cmdpb.EventLogDeleteStreamResult
	if rej := w.apply(eventlog.OpDeleteStream, &cmdpb.EventLogDeleteStream{Stream: stream, Expected: e.kind, ExpectedVersion: e.version}, &res); rej != nil {
		w.t.Fatalf("delete %s: %v", stream, rej)
	}
	return &res
}

// advance moves the clock and ticks as the leader would, with budget.
func (w *world) advance(d time.Duration, budget int) {
	w.t.Helper()
	w.now += d
	for {
		due, ok := eventlog.Machine{}.NextDue(w.store.Tx(false))
		if !ok || due > int64(w.now) {
			return
		}
		w.index++
		if _, err := (eventlog.Machine{}).Tick(w.env(), w.store.Tx(true), budget); err != nil {
			w.t.Fatal(err)
		}
	}
}

func (w *world) readStream(stream string, from uint64, backwards bool, limit int) *eventlog.StreamPage {
	w.t.Helper()
	p, err := eventlog.ReadStream(w.env(), w.store.Tx(false), stream, from, backwards, limit)
	if err != nil {
		w.t.Fatal(err)
	}
	return p
}

func (w *world) readAll(from uint64, f eventlog.Filter, limit int) *eventlog.AllPage {
	w.t.Helper()
	p, err := eventlog.ReadAll(w.env(), w.store.Tx(false), from, f, limit)
	if err != nil {
		w.t.Fatal(err)
	}
	return p
}

// versions lists a page's versions.
func versions(evs []eventlog.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, ev := range evs {
		out[i] = ev.Version
	}
	return out
}

// positions lists a page's positions.
func positions(evs []eventlog.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, ev := range evs {
		out[i] = ev.Position
	}
	return out
}

func (w *world) stored(stream string) (versions, ids, events int) {
	return eventlog.StoredCounts(w.store.Tx(false), stream)
}

func seq(from, to uint64) []uint64 {
	var out []uint64
	for v := from; v < to; v++ {
		out = append(out, v)
	}
	return out
}
