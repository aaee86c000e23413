package eventlog_test

import (
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"coord/eventlog"
	"coord/internal/cmdpb"
	"coord/internal/sm"
	"coord/internal/sm/smtest"
)

func TestExpectedVersion(t *testing.T) {
	const (
		appendedOut = cmdpb.EventLogAppendOutcome_EVENT_LOG_APPEND_OUTCOME_APPENDED
		wrongOut    = cmdpb.EventLogAppendOutcome_EVENT_LOG_APPEND_OUTCOME_WRONG_EXPECTED_VERSION
	)
	cases := []struct {
		name        string
		existing    int // events already in the stream (-1: retention record only)
		expect      expect
		want        cmdpb.EventLogAppendOutcome
		wantExists  bool
		wantCurrent uint64
	}{
		{"any on absent", 0, anyVersion, appendedOut, true, 0},
		{"unspecified on absent", 0, expect{}, appendedOut, true, 0},
		{"no-stream on absent", 0, noStream, appendedOut, true, 0},
		{"no-stream on record without events", -1, noStream, appendedOut, true, 0},
		{"exists on absent", 0, exists, wrongOut, false, 0},
		{"exists on record without events", -1, exists, wrongOut, false, 0},
		{"exact 0 on absent", 0, exact(0), wrongOut, false, 0},
		{"any on 3", 3, anyVersion, appendedOut, true, 3},
		{"no-stream on 3", 3, noStream, wrongOut, true, 2},
		{"exists on 3", 3, exists, appendedOut, true, 3},
		{"exact 2 on 3", 3, exact(2), appendedOut, true, 3},
		{"exact 1 on 3", 3, exact(1), wrongOut, true, 2},
		{"exact 3 on 3", 3, exact(3), wrongOut, true, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			if tc.existing < 0 {
				w.setRetention(&cmdpb.EventLogSetRetention{Stream: "s", MaxCount: 10})
			}
			w.appendN("s", "old", tc.existing)
			before := w.store.Hash()
			res, rej := w.tryAppend("s", tc.expect, events("new"))
			if rej != nil {
				t.Fatal(rej)
			}
			if res.Outcome != tc.want || res.StreamExists != tc.wantExists || res.CurrentVersion != tc.wantCurrent {
				t.Fatalf("got %v exists=%v current=%d; want %v exists=%v current=%d",
					res.Outcome, res.StreamExists, res.CurrentVersion, tc.want, tc.wantExists, tc.wantCurrent)
			}
			if tc.want == wrongOut && w.store.Hash() != before {
				t.Fatal("a mismatched expectation changed the state")
			}
		})
	}
}

func TestDuplicateIDsReturnTheOriginalPositions(t *testing.T) {
	w := newWorld(t)
	first := w.append("orders", noStream, "a", "b")
	w.append("other", anyVersion, "a") // ids are per stream
	if first.FirstVersion != 0 || first.FirstPosition != 0 || first.Count != 2 {
		t.Fatalf("first append: %v", first)
	}
	before := w.store.Hash()
	for _, e := range []expect{noStream, exact(7), anyVersion} {
		res := w.append("orders", e, "a", "b")
		if res.Outcome != duplicateOutcome || !slices.Equal(res.Versions, []uint64{0, 1}) || !slices.Equal(res.Positions, []uint64{0, 1}) {
			t.Fatalf("retry with %v: %v", e, res)
		}
		if !res.StreamExists || res.CurrentVersion != 1 {
			t.Fatalf("retry reports current version %d", res.CurrentVersion)
		}
	}
	res := w.append("orders", anyVersion, "b", "a")
	if !slices.Equal(res.Versions, []uint64{1, 0}) || !slices.Equal(res.Positions, []uint64{1, 0}) {
		t.Fatalf("reordered retry: %v", res)
	}
	if w.store.Hash() != before {
		t.Fatal("duplicate appends changed the state")
	}
	_, rej := w.tryAppend("orders", anyVersion, events("a", "c"))
	if rej == nil || rej.Code != sm.RejectFailedPrecondition || !strings.Contains(rej.Message, `"c"`) {
		t.Fatalf("partly stored append: %v", rej)
	}
	if got := w.append("orders", exact(1), "c"); got.Outcome != appendedOutcome || got.FirstVersion != 2 || got.FirstPosition != 3 {
		t.Fatalf("new event after duplicates: %v", got)
	}
}

// TestIDsInTheOldIndex checks state whose id records are in the id index
// of state written before the current one: its ids still make retries
// duplicates, and retention removes them.
func TestIDsInTheOldIndex(t *testing.T) {
	w := newWorld(t)
	w.append("orders", noStream, "a", "b")
	w.append("other", anyVersion, "a")
	if err := eventlog.MoveIDsToOldIndex(w.store.Tx(true)); err != nil {
		t.Fatal(err)
	}
	if res := w.append("orders", anyVersion, "b", "a"); res.Outcome != duplicateOutcome || !slices.Equal(res.Positions, []uint64{1, 0}) {
		t.Fatalf("retry of ids in the old index: %v", res)
	}
	if res := w.append("other", anyVersion, "a"); res.Outcome != duplicateOutcome || !slices.Equal(res.Positions, []uint64{2}) {
		t.Fatalf("retry of ids in the old index: %v", res)
	}
	if _, rej := w.tryAppend("orders", anyVersion, events("a", "c")); rej == nil || rej.Code != sm.RejectFailedPrecondition {
		t.Fatalf("partly stored append: %v", rej)
	}
	w.append("orders", anyVersion, "c")
	if _, ids, _ := w.stored("orders"); ids != 3 {
		t.Fatalf("%d ids stored for orders, want 3", ids)
	}
	w.deleteStream("orders", anyVersion)
	w.advance(0, 1000)
	if v, ids, _ := w.stored("orders"); v != 0 || ids != 0 {
		t.Fatalf("after deletion: %d versions, %d ids stored", v, ids)
	}
	if _, ids, _ := w.stored("other"); ids != 1 {
		t.Fatalf("%d ids stored for other, want 1", ids)
	}
}

const (
	appendedOutcome  = cmdpb.EventLogAppendOutcome_EVENT_LOG_APPEND_OUTCOME_APPENDED
	duplicateOutcome = cmdpb.EventLogAppendOutcome_EVENT_LOG_APPEND_OUTCOME_DUPLICATE
)

// TestVersionsAndPositionsAreDense appends random batches to random streams
// and checks that positions are 0..N-1 in apply order, that every stream's
// versions are 0..n-1, that reads return exactly what was appended, and
// that a second store fed the same entries reaches the same state.
func TestVersionsAndPositionsAreDense(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	w, twin := newWorld(t), newWorld(t)
	type appended struct {
		stream string
		id     string
	}
	var log []appended
	perStream := map[string][]string{}
	for i := range 200 {
		stream := fmt.Sprintf("s%d", rng.Intn(5))
		var ids []string
		for j := range 1 + rng.Intn(4) {
			ids = append(ids, fmt.Sprintf("e%d-%d", i, j))
		}
		res := w.append(stream, anyVersion, ids...)
		twin.append(stream, anyVersion, ids...)
		if res.FirstPosition != uint64(len(log)) || res.FirstVersion != uint64(len(perStream[stream])) {
			t.Fatalf("append %d: first position %d version %d; want %d and %d", i, res.FirstPosition, res.FirstVersion, len(log), len(perStream[stream]))
		}
		for _, id := range ids {
			log = append(log, appended{stream, id})
			perStream[stream] = append(perStream[stream], id)
		}
	}
	if w.store.Hash() != twin.store.Hash() {
		t.Fatal("two stores fed the same entries differ")
	}
	var all []eventlog.Event
	for from := uint64(0); ; {
		p := w.readAll(from, eventlog.Filter{}, 37)
		all = append(all, p.Events...)
		if from = p.Next; p.End {
			break
		}
	}
	if !slices.Equal(positions(all), seq(0, uint64(len(log)))) {
		t.Fatalf("read all returned positions %v", positions(all))
	}
	for i, ev := range all {
		if ev.Stream != log[i].stream || ev.Id != log[i].id || ev.Time != int64(w.now) {
			t.Fatalf("position %d holds %s/%s, want %v", i, ev.Stream, ev.Id, log[i])
		}
	}
	for stream, ids := range perStream {
		p := w.readStream(stream, 0, false, eventlog.MaxReadLimit)
		if !p.End || !slices.Equal(versions(p.Events), seq(0, uint64(len(ids)))) {
			t.Fatalf("%s: versions %v end=%v", stream, versions(p.Events), p.End)
		}
		for i, ev := range p.Events {
			if ev.Id != ids[i] || all[ev.Position].Id != ev.Id {
				t.Fatalf("%s@%d: id %s position %d", stream, i, ev.Id, ev.Position)
			}
		}
	}
}

func TestReadStreamPagingBothWays(t *testing.T) {
	w := newWorld(t)
	w.appendN("s", "e", 10)
	p := w.readStream("s", 3, false, 4)
	if !slices.Equal(versions(p.Events), []uint64{3, 4, 5, 6}) || p.Next != 7 || p.End {
		t.Fatalf("forwards: %v next %d end %v", versions(p.Events), p.Next, p.End)
	}
	p = w.readStream("s", 7, false, 4)
	if !slices.Equal(versions(p.Events), []uint64{7, 8, 9}) || p.Next != 10 || !p.End {
		t.Fatalf("forwards to the end: %v next %d end %v", versions(p.Events), p.Next, p.End)
	}
	p = w.readStream("s", ^uint64(0), true, 4)
	if !slices.Equal(versions(p.Events), []uint64{9, 8, 7, 6}) || p.Next != 5 || p.End {
		t.Fatalf("backwards from the end: %v next %d end %v", versions(p.Events), p.Next, p.End)
	}
	p = w.readStream("s", 2, true, 4)
	if !slices.Equal(versions(p.Events), []uint64{2, 1, 0}) || !p.End {
		t.Fatalf("backwards to the start: %v end %v", versions(p.Events), p.End)
	}
	p = w.readStream("missing", 0, false, 4)
	if p.Stream != nil || len(p.Events) != 0 || !p.End {
		t.Fatalf("missing stream: %+v", p)
	}
}

func TestReadAllFilters(t *testing.T) {
	w := newWorld(t)
	w.append("orders-1", anyVersion, "a")
	w.append("users-1", anyVersion, "b")
	if _, rej := w.tryAppend("orders-2", anyVersion, []*cmdpb.EventLogNewEvent{{Id: "c", Type: "Shipped"}}); rej != nil {
		t.Fatal(rej)
	}
	p := w.readAll(0, eventlog.Filter{StreamPrefix: "orders-"}, 10)
	if !slices.Equal(positions(p.Events), []uint64{0, 2}) || p.Next != 3 || !p.End {
		t.Fatalf("prefix filter: %v next %d", positions(p.Events), p.Next)
	}
	p = w.readAll(0, eventlog.Filter{EventType: "Shipped"}, 10)
	if !slices.Equal(positions(p.Events), []uint64{2}) {
		t.Fatalf("type filter: %v", positions(p.Events))
	}
	p = w.readAll(0, eventlog.Filter{StreamPrefix: "users-", EventType: "Shipped"}, 10)
	if len(p.Events) != 0 || p.Next != 3 || !p.End {
		t.Fatalf("a filter that matches nothing must still advance: %+v", p)
	}
	p = w.readAll(0, eventlog.Filter{StreamPrefix: "orders-"}, 1)
	if !slices.Equal(positions(p.Events), []uint64{0}) || p.Next != 1 || p.End {
		t.Fatalf("limit 1: %v next %d", positions(p.Events), p.Next)
	}
	if p = w.readAll(10, eventlog.Filter{}, 10); p.Next != 10 || len(p.Events) != 0 || !p.End {
		t.Fatalf("read past the head: %+v", p)
	}
}

func TestCursors(t *testing.T) {
	w := newWorld(t)
	var res cmdpb.EventLogCommitCursorResult
	if rej := w.apply(eventlog.OpCommitCursor, &cmdpb.EventLogCommitCursor{Name: "billing", Position: 42}, &res); rej != nil {
		t.Fatal(rej)
	}
	w.now += 1e9
	if rej := w.apply(eventlog.OpCommitCursor, &cmdpb.EventLogCommitCursor{Name: "billing", Position: 7}, &res); rej != nil {
		t.Fatal(rej)
	}
	c, err := eventlog.Cursor(w.store.Tx(false), "billing")
	if err != nil || c == nil || c.Position != 7 || c.UpdatedAt != int64(w.now) {
		t.Fatalf("cursor %v, %v", c, err)
	}
	if c, _ := eventlog.Cursor(w.store.Tx(false), "nobody"); c != nil {
		t.Fatalf("unknown cursor: %v", c)
	}
	if rej := w.apply(eventlog.OpCommitCursor, &cmdpb.EventLogCommitCursor{Name: "bad name"}, &res); rej == nil || rej.Code != sm.RejectInvalidArgument {
		t.Fatalf("bad cursor name: %v", rej)
	}
}

func TestUnknownOpHalts(t *testing.T) {
	if _, err := (eventlog.Machine{}).Apply(sm.Env{}, smtest.New().Tx(true), 99, nil); err == nil {
		t.Fatal("unknown op accepted")
	}
	if _, err := (eventlog.Machine{}).Apply(sm.Env{}, smtest.New().Tx(true), eventlog.OpAppend, []byte{0xff}); err == nil {
		t.Fatal("corrupt body accepted")
	}
}
