package chaos

import (
	"strings"
	"testing"
	"time"
)

// ops builds a history from compact rows; times are in milliseconds.
type row struct {
	kind, key, value string
	call, ret        int64
	status           Status
	rev              uint64
	found, ok        bool
	token            uint64
	fenced           bool
}

func mkHistory(wl string, rows ...row) []*Op {
	var out []*Op
	for i, r := range rows {
		out = append(out, &Op{ID: i, Workload: wl, Client: i % 3, Kind: r.kind, Key: r.key, Value: r.value,
			Call: r.call * int64(time.Millisecond), Return: r.ret * int64(time.Millisecond), Status: r.status,
			Revision: r.rev, Found: r.found, OK: r.ok, Token: r.token, Fenced: r.fenced})
	}
	return out
}

var cc = checkConfig{timeout: 10 * time.Second}

func kinds(as []Anomaly) string {
	var ks []string
	for _, a := range as {
		ks = append(ks, a.Kind)
	}
	return strings.Join(ks, ",")
}

func TestRegisterLinearizable(t *testing.T) {
	h := mkHistory("kv",
		row{kind: "put", key: "k", value: "a", call: 0, ret: 10, status: StatusOK, rev: 5, ok: true},
		row{kind: "get", key: "k", value: "a", call: 5, ret: 15, status: StatusOK, rev: 5, found: true},
		row{kind: "put", key: "k", value: "b", call: 20, ret: 30, status: StatusUnknown},
		row{kind: "get", key: "k", value: "b", call: 40, ret: 50, status: StatusOK, rev: 9, found: true},
		row{kind: "put", key: "k", value: "c", call: 60, ret: 70, status: StatusUnknown}, // never seen: left out
		row{kind: "get", key: "k", value: "b", call: 80, ret: 90, status: StatusOK, rev: 9, found: true},
	)
	res := checkRegisters("kv", h, cc)
	if len(res.Anomalies) != 0 || len(res.Inconclusive) != 0 {
		t.Fatalf("anomalies %v, inconclusive %v", res.Anomalies, res.Inconclusive)
	}
	if res.Stats.OK != 4 || res.Stats.Unknown != 2 {
		t.Fatalf("stats %+v", res.Stats)
	}
}

func TestRegisterStaleRead(t *testing.T) {
	h := mkHistory("kv",
		row{kind: "put", key: "k", value: "a", call: 0, ret: 10, status: StatusOK, rev: 5, ok: true},
		row{kind: "put", key: "k", value: "b", call: 20, ret: 30, status: StatusOK, rev: 8, ok: true},
		row{kind: "get", key: "k", value: "a", call: 40, ret: 50, status: StatusOK, rev: 5, found: true},
	)
	res := checkRegisters("kv", h, cc)
	if got := kinds(res.Anomalies); got != "stale-read,not-linearizable" {
		t.Fatalf("anomalies %q: %v", got, res.Anomalies)
	}
}

func TestRegisterLostWrite(t *testing.T) {
	h := mkHistory("kv",
		row{kind: "put", key: "k", value: "a", call: 0, ret: 10, status: StatusOK, rev: 5, ok: true},
		row{kind: "get", key: "k", call: 40, ret: 50, status: StatusOK},
		row{kind: "put", key: "k", value: "x", call: 60, ret: 70, status: StatusFail},
		row{kind: "get", key: "k", value: "x", call: 80, ret: 90, status: StatusOK, rev: 7, found: true},
		row{kind: "get", key: "k", value: "zz", call: 80, ret: 90, status: StatusOK, rev: 7, found: true},
	)
	res := checkRegisters("kv", h, cc)
	for _, want := range []string{"stale-read", "lost-not-applied", "phantom-read", "not-linearizable"} {
		if !strings.Contains(kinds(res.Anomalies), want) {
			t.Errorf("missing %s in %v", want, res.Anomalies)
		}
	}
}

func TestLockModel(t *testing.T) {
	ok := mkHistory("lock",
		row{kind: "acquire", key: "L", call: 0, ret: 10, status: StatusOK, ok: true, token: 10},
		row{kind: "fput", key: "L", value: "v1", call: 11, ret: 20, status: StatusOK, ok: true, token: 10, rev: 12},
		// The holder stalls, its lease expires; another client takes the lock.
		row{kind: "acquire", key: "L", call: 15, ret: 30, status: StatusOK, ok: true, token: 20},
		row{kind: "fput", key: "L", value: "v2", call: 31, ret: 35, status: StatusOK, token: 10, fenced: true},
		row{kind: "release", key: "L", call: 36, ret: 40, status: StatusOK, token: 10},
		row{kind: "release", key: "L", call: 41, ret: 45, status: StatusOK, ok: true, token: 20},
		row{kind: "fget", key: "L", value: "v1", call: 50, ret: 55, status: StatusOK, found: true, rev: 12},
	)
	if res := checkLocks(ok, cc); len(res.Anomalies) != 0 {
		t.Fatalf("anomalies on a valid history: %v", res.Anomalies)
	}
	stale := mkHistory("lock",
		row{kind: "acquire", key: "L", call: 0, ret: 10, status: StatusOK, ok: true, token: 10},
		row{kind: "acquire", key: "L", call: 15, ret: 30, status: StatusOK, ok: true, token: 20},
		row{kind: "fput", key: "L", value: "v2", call: 31, ret: 35, status: StatusOK, ok: true, token: 10, rev: 33},
	)
	if got := kinds(checkLocks(stale, cc).Anomalies); got != "stale-fence-accepted,lock-not-linearizable" {
		t.Fatalf("stale fence: anomalies %q", got)
	}
	backwards := mkHistory("lock",
		row{kind: "acquire", key: "L", call: 0, ret: 10, status: StatusOK, ok: true, token: 10},
		row{kind: "acquire", key: "M", call: 15, ret: 30, status: StatusOK, ok: true, token: 7},
		row{kind: "acquire", key: "L", call: 40, ret: 50, status: StatusOK, ok: true, token: 10},
	)
	if got := kinds(checkLocks(backwards, cc).Anomalies); got != "duplicate-token,token-order,token-order,lock-not-linearizable" {
		t.Fatalf("tokens going backwards: anomalies %q", got)
	}
	twoHolders := mkHistory("lock",
		row{kind: "acquire", key: "L", call: 0, ret: 10, status: StatusOK, ok: true, token: 10},
		row{kind: "acquire", key: "L", call: 15, ret: 30, status: StatusOK, ok: true, token: 20},
		row{kind: "release", key: "L", call: 40, ret: 50, status: StatusOK, ok: true, token: 10},
	)
	if got := kinds(checkLocks(twoHolders, cc).Anomalies); got != "lock-not-linearizable" {
		t.Fatalf("release by a superseded holder: anomalies %q", got)
	}
}

func TestFencedResource(t *testing.T) {
	r := &fencedResource{}
	v, _ := r.read(10)
	r.write(10, 0, v, 0)
	if _, ok := r.read(5); ok {
		t.Fatal("the resource accepted an older token")
	}
	if got := r.check("L"); len(got) != 0 {
		t.Fatalf("anomalies %v", got)
	}
	a, _ := r.read(12) // two holders with one token read the same value
	b, _ := r.read(12)
	r.write(12, 1, a, 0)
	r.write(12, 2, b, 0)
	if got := kinds(r.check("L")); got != "lost-update" {
		t.Fatalf("anomalies %q", got)
	}
}

func TestLogChecks(t *testing.T) {
	ev := func(id string, v, p uint64) EventRef { return EventRef{ID: id, Stream: "s", Version: v, Position: p} }
	mk := func(final []EventRef, ops ...*Op) []*Op {
		all := append([]*Op(nil), ops...)
		all = append(all, &Op{ID: 90, Workload: "log", Kind: "final-stream", Key: "s", Status: StatusOK, Events: final, Call: 1e9, Return: 1e9 + 1},
			&Op{ID: 91, Workload: "log", Kind: "final-all", Status: StatusOK, Events: final, Call: 1e9, Return: 1e9 + 1})
		return all
	}
	app := func(id int, call, ret int64, st Status, evs ...EventRef) *Op {
		return &Op{ID: id, Workload: "log", Kind: "append", Key: "s", Status: st, OK: st == StatusOK, Events: evs, Call: call, Return: ret}
	}
	good := mk([]EventRef{ev("a", 0, 0), ev("b", 1, 1), ev("c", 2, 2)},
		app(1, 0, 10, StatusOK, ev("a", 0, 0), ev("b", 1, 1)),
		app(2, 20, 30, StatusUnknown, EventRef{ID: "c"}),
		app(3, 40, 50, StatusUnknown, EventRef{ID: "d"}),
		&Op{ID: 4, Workload: "log", Kind: "tail", Key: "s", Status: StatusOK, Seq: 2, Events: []EventRef{ev("b", 1, 1)}, Call: 12, Return: 15},
	)
	if res := checkLog(good, []string{"s"}, cc); len(res.Anomalies) != 0 {
		t.Fatalf("anomalies on a valid history: %v", res.Anomalies)
	}
	bad := mk([]EventRef{ev("a", 0, 0), ev("x", 1, 2), ev("a", 2, 3)},
		app(1, 0, 10, StatusOK, ev("a", 0, 0)),
		app(2, 20, 30, StatusOK, ev("b", 1, 1)),
		app(3, 40, 50, StatusFail, EventRef{ID: "x"}),
	)
	got := kinds(checkLog(bad, []string{"s"}, cc).Anomalies)
	for _, want := range []string{"position-gap", "duplicate-append", "lost-append", "failed-append-applied"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %s in %q", want, got)
		}
	}
}

func TestScheduleIsSeeded(t *testing.T) {
	draw := func(seed uint64) []faultPlan {
		s := newScheduler(seed, AllFaults)
		var out []faultPlan
		for range 2 * len(AllFaults) {
			p, _ := s.next()
			out = append(out, p)
		}
		return out
	}
	a, b := draw(42), draw(42)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("episode %d differs for the same seed: %+v vs %+v", i, a[i], b[i])
		}
	}
	seen := map[FaultKind]int{}
	for _, p := range a[:len(AllFaults)] {
		seen[p.Kind]++
	}
	if len(seen) != len(AllFaults) {
		t.Fatalf("the first pass does not hold every kind once: %v", seen)
	}
}

func TestParseFaults(t *testing.T) {
	if ks, err := ParseFaults("all"); err != nil || len(ks) != len(AllFaults) {
		t.Fatalf("all: %v %v", ks, err)
	}
	if ks, err := ParseFaults("none"); err != nil || len(ks) != 0 {
		t.Fatalf("none: %v %v", ks, err)
	}
	if _, err := ParseFaults("kill-leader,nope"); err == nil {
		t.Fatal("unknown fault accepted")
	}
}
