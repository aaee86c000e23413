package eventlog_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"coord/eventlog"
	"coord/internal/cmdpb"
	"coord/internal/sm"
)

func TestRetentionMaxCount(t *testing.T) {
	w := newWorld(t)
	w.setRetention(&cmdpb.EventLogSetRetention{Stream: "s", MaxCount: 3})
	w.appendN("s", "e", 5)
	w.append("t", anyVersion, "other")
	// Readers see only the newest 3 at once, before any Tick.
	if p := w.readStream("s", 0, false, 10); !slices.Equal(versions(p.Events), []uint64{2, 3, 4}) {
		t.Fatalf("before tick: %v", versions(p.Events))
	}
	if p := w.readAll(0, eventlog.Filter{}, 10); !slices.Equal(positions(p.Events), []uint64{2, 3, 4, 5}) {
		t.Fatalf("read all before tick: %v", positions(p.Events))
	}
	if v, _, _ := w.stored("s"); v != 5 {
		t.Fatalf("%d versions stored before tick, want 5", v)
	}
	w.advance(0, 1000)
	if v, ids, evs := w.stored("s"); v != 3 || ids != 3 || evs != 4 {
		t.Fatalf("after tick: %d versions, %d ids, %d events stored; want 3, 3, 4", v, ids, evs)
	}
	if _, ok := (eventlog.Machine{}).NextDue(w.store.Tx(false)); ok {
		t.Fatal("work still due after the tick")
	}
	// Versions and positions carry on; the removed id may be used again.
	res := w.append("s", exact(4), "e-0")
	if res.Outcome != appendedOutcome || res.FirstVersion != 5 || res.FirstPosition != 6 {
		t.Fatalf("append after trimming: %v", res)
	}
	st, _ := eventlog.GetStream(w.env(), w.store.Tx(false), "s")
	if st.FirstVisible != 3 || st.Record.NextVersion != 6 {
		t.Fatalf("stream after trimming: first %d next %d", st.FirstVisible, st.Record.NextVersion)
	}
}

func TestRetentionMaxAgeViaTick(t *testing.T) {
	w := newWorld(t)
	w.setRetention(&cmdpb.EventLogSetRetention{Stream: "s", MaxAge: int64(10 * time.Second)})
	w.append("s", anyVersion, "old")
	w.advance(6*time.Second, 1000)
	w.append("s", anyVersion, "new")
	due, ok := eventlog.Machine{}.NextDue(w.store.Tx(false))
	if !ok || due != int64(w.now-6*time.Second+10*time.Second) {
		t.Fatalf("next due %d %v; want the old event's time plus 10s", due, ok)
	}
	// Past the old event's age but before the Tick: hidden at once.
	w.now += 5 * time.Second
	if p := w.readStream("s", 0, false, 10); !slices.Equal(versions(p.Events), []uint64{1}) {
		t.Fatalf("expired event still readable: %v", versions(p.Events))
	}
	if p := w.readStream("s", 5, true, 10); !slices.Equal(versions(p.Events), []uint64{1}) || !p.End {
		t.Fatalf("backwards: %v end=%v", versions(p.Events), p.End)
	}
	if v, _, _ := w.stored("s"); v != 2 {
		t.Fatalf("%d stored before the tick", v)
	}
	w.advance(0, 1000)
	if v, _, _ := w.stored("s"); v != 1 {
		t.Fatalf("%d stored after the tick, want 1", v)
	}
	due, _ = eventlog.Machine{}.NextDue(w.store.Tx(false))
	if due != int64(w.now-5*time.Second+10*time.Second) {
		t.Fatalf("next due %v after the tick; want the new event's time plus 10s", time.Duration(due))
	}
	w.advance(10*time.Second, 1000)
	if v, _, _ := w.stored("s"); v != 0 {
		t.Fatalf("%d stored after both expired", v)
	}
	if _, ok := (eventlog.Machine{}).NextDue(w.store.Tx(false)); ok {
		t.Fatal("work due on an empty stream")
	}
	if st, _ := eventlog.GetStream(w.env(), w.store.Tx(false), "s"); st.FirstVisible != 2 || st.Record.FirstVersion != 2 {
		t.Fatalf("empty stream: %+v", st)
	}
}

func TestTruncateBefore(t *testing.T) {
	w := newWorld(t)
	w.appendN("s", "e", 5)
	rec := w.setRetention(&cmdpb.EventLogSetRetention{Stream: "s", TruncateBefore: 2})
	if rec.TruncateBefore != 2 {
		t.Fatalf("truncate_before %d", rec.TruncateBefore)
	}
	if p := w.readStream("s", 0, false, 10); !slices.Equal(versions(p.Events), []uint64{2, 3, 4}) {
		t.Fatalf("after truncate: %v", versions(p.Events))
	}
	if rec = w.setRetention(&cmdpb.EventLogSetRetention{Stream: "s", TruncateBefore: 1}); rec.TruncateBefore != 2 {
		t.Fatalf("truncate_before went down to %d", rec.TruncateBefore)
	}
	if rec = w.setRetention(&cmdpb.EventLogSetRetention{Stream: "s", TruncateBefore: 99}); rec.TruncateBefore != 5 {
		t.Fatalf("truncate_before past the end: %d, want it capped at 5", rec.TruncateBefore)
	}
	w.advance(0, 1000)
	if v, ids, evs := w.stored("s"); v != 0 || ids != 0 || evs != 0 {
		t.Fatalf("stored after truncating everything: %d %d %d", v, ids, evs)
	}
	if res := w.append("s", exact(4), "e-5"); res.FirstVersion != 5 {
		t.Fatalf("append after truncation: %v", res)
	}
}

func TestDeletedStream(t *testing.T) {
	w := newWorld(t)
	w.appendN("s", "e", 3)
	w.append("t", anyVersion, "x")
	if res := w.deleteStream("s", exact(1)); res.Outcome != cmdpb.EventLogDeleteOutcome_EVENT_LOG_DELETE_OUTCOME_WRONG_EXPECTED_VERSION || res.CurrentVersion != 2 {
		t.Fatalf("delete with a wrong version: %v", res)
	}
	if res := w.deleteStream("s", exact(2)); res.Outcome != cmdpb.EventLogDeleteOutcome_EVENT_LOG_DELETE_OUTCOME_DELETED {
		t.Fatalf("delete: %v", res)
	}
	p := w.readStream("s", 0, false, 10)
	if p.Stream == nil || !p.Stream.Record.Deleted || len(p.Events) != 0 || !p.End {
		t.Fatalf("read of a deleted stream: %+v", p)
	}
	if p := w.readAll(0, eventlog.Filter{}, 10); !slices.Equal(positions(p.Events), []uint64{3}) {
		t.Fatalf("read all shows the deleted stream's events: %v", positions(p.Events))
	}
	for _, ids := range [][]string{{"new"}, {"e-0"}} {
		_, rej := w.tryAppend("s", anyVersion, events(ids...))
		if rej == nil || rej.Code != sm.RejectFailedPrecondition || !strings.Contains(rej.Message, "deleted") {
			t.Fatalf("append %v to a deleted stream: %v", ids, rej)
		}
	}
	var ret cmdpb.EventLogSetRetentionResult
	if rej := w.apply(eventlog.OpSetRetention, &cmdpb.EventLogSetRetention{Stream: "s", MaxCount: 1}, &ret); rej == nil {
		t.Fatal("retention set on a deleted stream")
	}
	if res := w.deleteStream("s", anyVersion); res.Outcome != cmdpb.EventLogDeleteOutcome_EVENT_LOG_DELETE_OUTCOME_ALREADY_DELETED {
		t.Fatalf("second delete: %v", res)
	}
	if res := w.deleteStream("never", anyVersion); res.Outcome != cmdpb.EventLogDeleteOutcome_EVENT_LOG_DELETE_OUTCOME_NOT_FOUND {
		t.Fatalf("delete of an absent stream: %v", res)
	}
	w.advance(0, 1000)
	if v, ids, evs := w.stored("s"); v != 0 || ids != 0 || evs != 1 {
		t.Fatalf("after tick: %d versions, %d ids, %d events stored", v, ids, evs)
	}
	if st, _ := eventlog.GetStream(w.env(), w.store.Tx(false), "s"); st == nil || !st.Record.Deleted || st.Record.NextVersion != 3 {
		t.Fatalf("the deleted stream's record must stay: %+v", st)
	}
}

// TestTickBudget deletes a large stream and checks that each Tick removes
// at most its budget and that work stays due until it is done.
func TestTickBudget(t *testing.T) {
	w := newWorld(t)
	for i := range 5 {
		ids := make([]string, 50)
		for j := range ids {
			ids[j] = string(rune('a'+i)) + strings.Repeat("x", j+1)
		}
		w.append("big", anyVersion, ids...)
	}
	w.deleteStream("big", anyVersion)
	for want := 250; want > 0; want -= 100 {
		if v, _, _ := w.stored("big"); v != want {
			t.Fatalf("%d stored, want %d", v, want)
		}
		due, ok := eventlog.Machine{}.NextDue(w.store.Tx(false))
		if !ok || due > int64(w.now) {
			t.Fatalf("work not due with %d events left", want)
		}
		w.index++
		used, err := (eventlog.Machine{}).Tick(w.env(), w.store.Tx(true), 100)
		if err != nil || used != min(100, want) {
			t.Fatalf("tick used %d (%v)", used, err)
		}
	}
	if _, ok := (eventlog.Machine{}).NextDue(w.store.Tx(false)); ok {
		t.Fatal("work due after the stream was emptied")
	}
}

func TestLimits(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	ok := func() *cmdpb.EventLogAppend {
		return &cmdpb.EventLogAppend{Stream: "orders/eu-1", Events: events("a")}
	}
	many := make([]*cmdpb.EventLogNewEvent, eventlog.MaxEventsPerAppend+1)
	for i := range many {
		many[i] = newEvent(strings.Repeat("i", 1+i%100) + long(i/100))
	}
	bigMeta := map[string]string{}
	for i := range eventlog.MaxMetadataEntries + 1 {
		bigMeta[long(i+1)] = "v"
	}
	cases := []struct {
		name   string
		mutate func(a *cmdpb.EventLogAppend)
		want   string
	}{
		{"empty stream", func(a *cmdpb.EventLogAppend) { a.Stream = "" }, "empty"},
		{"long stream", func(a *cmdpb.EventLogAppend) { a.Stream = long(eventlog.MaxNameLen + 1) }, "limit"},
		{"stream charset", func(a *cmdpb.EventLogAppend) { a.Stream = "a b" }, "offset 1"},
		{"stream leading dash", func(a *cmdpb.EventLogAppend) { a.Stream = "-a" }, "offset 0"},
		{"no events", func(a *cmdpb.EventLogAppend) { a.Events = nil }, "1 to"},
		{"too many events", func(a *cmdpb.EventLogAppend) { a.Events = many }, "1 to"},
		{"empty id", func(a *cmdpb.EventLogAppend) { a.Events[0].Id = "" }, "id is empty"},
		{"long id", func(a *cmdpb.EventLogAppend) { a.Events[0].Id = long(eventlog.MaxEventIDLen + 1) }, "id is"},
		{"id with space", func(a *cmdpb.EventLogAppend) { a.Events[0].Id = "a b" }, "id has"},
		{"repeated id", func(a *cmdpb.EventLogAppend) { a.Events = events("a", "a") }, "repeats"},
		{"empty type", func(a *cmdpb.EventLogAppend) { a.Events[0].Type = "" }, "type is empty"},
		{"long type", func(a *cmdpb.EventLogAppend) { a.Events[0].Type = long(eventlog.MaxEventTypeLen + 1) }, "type is"},
		{"big data", func(a *cmdpb.EventLogAppend) { a.Events[0].Data = make([]byte, eventlog.MaxDataBytes+1) }, "data is"},
		{"many metadata", func(a *cmdpb.EventLogAppend) { a.Events[0].Metadata = bigMeta }, "entries"},
		{"big metadata", func(a *cmdpb.EventLogAppend) {
			a.Events[0].Metadata = map[string]string{"k": long(eventlog.MaxMetadataBytes)}
		}, "metadata is"},
		{"metadata key", func(a *cmdpb.EventLogAppend) { a.Events[0].Metadata = map[string]string{"": "v"} }, "metadata key"},
		{"big append", func(a *cmdpb.EventLogAppend) {
			a.Events = events("a", "b", "c")
			for _, ev := range a.Events {
				ev.Data = make([]byte, eventlog.MaxDataBytes/4*3)
			}
		}, "per append"},
		{"unknown expectation", func(a *cmdpb.EventLogAppend) { a.Expected = 9 }, "unknown"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := ok()
			tc.mutate(a)
			err := eventlog.ValidateAppend(a)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ValidateAppend: %v; want an error containing %q", err, tc.want)
			}
			w := newWorld(t)
			var res cmdpb.EventLogAppendResult
			if rej := w.apply(eventlog.OpAppend, a, &res); rej == nil || rej.Code != sm.RejectInvalidArgument {
				t.Fatalf("applied: %v", rej)
			}
		})
	}
	if err := eventlog.ValidateAppend(ok()); err != nil {
		t.Fatalf("valid append refused: %v", err)
	}
	full := ok()
	full.Stream = long(eventlog.MaxNameLen)
	full.Events[0].Data = make([]byte, eventlog.MaxDataBytes)
	full.Events[0].Id = long(eventlog.MaxEventIDLen)
	if err := eventlog.ValidateAppend(full); err != nil {
		t.Fatalf("append at the limits refused: %v", err)
	}
	bad := &cmdpb.EventLogSetRetention{Stream: "s", MaxAge: int64(time.Millisecond)}
	if err := eventlog.ValidateRetention(bad); err == nil {
		t.Fatal("max_age of 1ms accepted")
	}
}
