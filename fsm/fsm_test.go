package fsm_test

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"coord/fsm"
	"coord/internal/cmdpb"
	"coord/internal/sm"
	"coord/kv"
)

func open(t *testing.T, opts ...func(*fsm.Config)) *fsm.FSM {
	t.Helper()
	cfg := fsm.Config{Path: filepath.Join(t.TempDir(), "state.db"), Machines: []sm.Machine{kv.Machine{}}}
	for _, o := range opts {
		o(&cfg)
	}
	f, err := fsm.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// entry builds a command log entry.
func entry(t testing.TB, index uint64, cmd *cmdpb.Command) *raft.Log {
	data, err := fsm.EncodeCommand(cmd)
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data}
}

func putCmd(t testing.TB, key, value string, ttl time.Duration, now int64) *cmdpb.Command {
	body, err := proto.Marshal(&cmdpb.KVPut{Key: key, Value: []byte(value), Ttl: int64(ttl)})
	if err != nil {
		t.Fatal(err)
	}
	return &cmdpb.Command{LeaderTime: now, Machine: sm.MachineKV, Op: kv.OpPut, Body: body}
}

func delCmd(t testing.TB, key string, now int64) *cmdpb.Command {
	body, _ := proto.Marshal(&cmdpb.KVDelete{Key: key})
	return &cmdpb.Command{LeaderTime: now, Machine: sm.MachineKV, Op: kv.OpDelete, Body: body}
}

func tickCmd(now int64) *cmdpb.Command {
	return &cmdpb.Command{LeaderTime: now, Machine: sm.MachineFSM, Op: fsm.OpTick}
}

// randomHistory builds n entries of puts, deletes, ticks and retried
// requests with a skewed, sometimes backwards leader clock.
func randomHistory(t testing.TB, seed int64, n int) []*raft.Log {
	rng := rand.New(rand.NewSource(seed))
	var logs []*raft.Log
	now := int64(1_700_000_000_000_000_000)
	var sent []*cmdpb.Command
	for i := 1; i <= n; i++ {
		now += int64(rng.Intn(int(2 * time.Second)))
		skewed := now - int64(rng.Intn(int(time.Second))) // leaders' clocks disagree
		var cmd *cmdpb.Command
		switch r := rng.Intn(10); {
		case r < 5:
			ttl := time.Duration(0)
			if rng.Intn(2) == 0 {
				ttl = time.Duration(1+rng.Intn(5)) * time.Second
			}
			cmd = putCmd(t, fmt.Sprintf("k%d", rng.Intn(20)), fmt.Sprintf("v%d", i), ttl, skewed)
		case r < 7:
			cmd = delCmd(t, fmt.Sprintf("k%d", rng.Intn(20)), skewed)
		case r < 8:
			cmd = tickCmd(skewed)
		default:
			if len(sent) > 0 { // a retry of an earlier request
				cmd = proto.Clone(sent[rng.Intn(len(sent))]).(*cmdpb.Command)
				cmd.LeaderTime = skewed
			} else {
				cmd = tickCmd(skewed)
			}
		}
		if cmd.ClientId == 0 && cmd.Machine == sm.MachineKV && rng.Intn(2) == 0 {
			cmd.ClientId, cmd.Seq = uint64(1+rng.Intn(3)), uint64(i)
			cmd.AckedBelow = uint64(max(0, i-5))
			sent = append(sent, cmd)
		}
		logs = append(logs, entry(t, uint64(i), cmd))
	}
	return logs
}

// applyInBatches applies logs in batches of random sizes.
func applyInBatches(f *fsm.FSM, logs []*raft.Log, rng *rand.Rand) []interface{} {
	var out []interface{}
	for len(logs) > 0 {
		n := 1 + rng.Intn(min(len(logs), 50))
		out = append(out, f.ApplyBatch(logs[:n])...)
		logs = logs[n:]
	}
	return out
}

func dump(t *testing.T, f *fsm.FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	return sink.Bytes()
}

type memSink struct{ bytes.Buffer }

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { return nil }
func (s *memSink) Close() error  { return nil }

func TestDeterminism(t *testing.T) {
	for seed := int64(1); seed <= 5; seed++ {
		logs := randomHistory(t, seed, 600)
		a, b := open(t), open(t)
		ra := applyInBatches(a, logs, rand.New(rand.NewSource(seed)))
		rb := applyInBatches(b, logs, rand.New(rand.NewSource(seed+100)))
		if da, db := dump(t, a), dump(t, b); !bytes.Equal(da, db) {
			t.Fatalf("seed %d: state differs after the same commands in different batches", seed)
		}
		for i := range ra {
			if !proto.Equal(resultOf(ra[i]), resultOf(rb[i])) {
				t.Fatalf("seed %d: result %d differs: %v vs %v", seed, i, ra[i], rb[i])
			}
		}
	}
}

func resultOf(v interface{}) *cmdpb.Result {
	if r, ok := v.(*fsm.Response); ok && r != nil {
		return r.Result
	}
	return nil
}

func TestSnapshotRestoreEquality(t *testing.T) {
	logs := randomHistory(t, 7, 500)
	src := open(t)
	applyInBatches(src, logs, rand.New(rand.NewSource(1)))
	want := dump(t, src)

	// Restore into an empty FSM and into one with unrelated state.
	empty := open(t)
	busy := open(t)
	applyInBatches(busy, randomHistory(t, 99, 300), rand.New(rand.NewSource(2)))
	for name, dst := range map[string]*fsm.FSM{"empty": empty, "non-empty": busy} {
		if err := dst.Restore(io.NopCloser(bytes.NewReader(want))); err != nil {
			t.Fatalf("%s: restore: %v", name, err)
		}
		if got := dump(t, dst); !bytes.Equal(got, want) {
			t.Fatalf("%s: restored state differs from the snapshot", name)
		}
		if dst.AppliedIndex() != src.AppliedIndex() || dst.Now() != src.Now() {
			t.Fatalf("%s: applied %d now %d, want %d %d", name, dst.AppliedIndex(), dst.Now(), src.AppliedIndex(), src.Now())
		}
		// Both continue identically.
		more := randomHistory(t, 8, 700)[500:]
		applyInBatches(src, more, rand.New(rand.NewSource(3)))
		applyInBatches(dst, more, rand.New(rand.NewSource(4)))
		if !bytes.Equal(dump(t, src), dump(t, dst)) {
			t.Fatalf("%s: states diverge after restore", name)
		}
		want = dump(t, src)
		_ = more
		src = dst
	}
}

func TestRestoreRejectsCorruptSnapshot(t *testing.T) {
	src := open(t)
	applyInBatches(src, randomHistory(t, 3, 100), rand.New(rand.NewSource(1)))
	good := dump(t, src)
	dst := open(t)
	applyInBatches(dst, randomHistory(t, 4, 50), rand.New(rand.NewSource(1)))
	before := dump(t, dst)
	for name, bad := range map[string][]byte{
		"truncated": good[:len(good)/2],
		"flipped":   flip(good, len(good)/2),
		"garbage":   []byte("not a snapshot"),
	} {
		if err := dst.Restore(io.NopCloser(bytes.NewReader(bad))); err == nil {
			t.Fatalf("%s snapshot restored without error", name)
		}
		if !bytes.Equal(dump(t, dst), before) {
			t.Fatalf("%s snapshot changed the state", name)
		}
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0xff
	return c
}

func TestReplayOfAppliedEntriesIsNoop(t *testing.T) {
	logs := randomHistory(t, 11, 300)
	f := open(t)
	applyInBatches(f, logs, rand.New(rand.NewSource(1)))
	before := dump(t, f)
	res := applyInBatches(f, logs, rand.New(rand.NewSource(2)))
	if !bytes.Equal(dump(t, f), before) {
		t.Fatal("replaying applied entries changed the state")
	}
	for i, r := range res {
		if r != nil {
			t.Fatalf("replayed entry %d returned %v, want nil", i+1, r)
		}
	}
}

func TestReplayAfterReopenSkipsApplied(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	cfg := fsm.Config{Path: path, Machines: []sm.Machine{kv.Machine{}}}
	f, err := fsm.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	logs := randomHistory(t, 12, 200)
	applyInBatches(f, logs[:150], rand.New(rand.NewSource(1)))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	f, err = fsm.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.AppliedIndex() != 150 {
		t.Fatalf("applied index after reopen = %d, want 150", f.AppliedIndex())
	}
	// Raft replays from an older index; the FSM applies only the new tail.
	applyInBatches(f, logs[100:], rand.New(rand.NewSource(2)))
	ref := open(t)
	applyInBatches(ref, logs, rand.New(rand.NewSource(3)))
	if !bytes.Equal(dump(t, f), dump(t, ref)) {
		t.Fatal("replay after reopen differs from a single pass")
	}
}

func TestTimeNeverRunsBackwards(t *testing.T) {
	f := open(t)
	base := int64(1_000_000_000_000)
	f.ApplyBatch([]*raft.Log{entry(t, 1, putCmd(t, "a", "1", 0, base+int64(10*time.Second)))})
	// A new leader whose clock is 5s behind.
	f.ApplyBatch([]*raft.Log{entry(t, 2, putCmd(t, "b", "2", 2*time.Second, base+int64(5*time.Second)))})
	if got := f.Now(); got != base+int64(10*time.Second) {
		t.Fatalf("clock went from %d to %d", base+int64(10*time.Second), got)
	}
	// The TTL counts from the clamped time, not the skewed leader time.
	err := f.View(sm.MachineKV, func(env sm.Env, tx sm.Tx) error {
		rec, err := kv.Load(env, tx, "b")
		if err != nil || rec == nil {
			return fmt.Errorf("b missing: %v", err)
		}
		if want := base + int64(12*time.Second); rec.ExpiresAt != want {
			return fmt.Errorf("expires at %d, want %d", rec.ExpiresAt, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, f *fsm.FSM, key string) *cmdpb.KVRecord {
	t.Helper()
	var rec *cmdpb.KVRecord
	err := f.View(sm.MachineKV, func(env sm.Env, tx sm.Tx) error {
		var err error
		rec, err = kv.Load(env, tx, key)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestRetriedRequestReturnsFirstResult(t *testing.T) {
	f := open(t)
	first := putCmd(t, "k", "v1", 0, 1)
	first.ClientId, first.Seq = 42, 1
	r1 := f.ApplyBatch([]*raft.Log{entry(t, 1, first)})[0].(*fsm.Response)

	other := putCmd(t, "k", "v2", 0, 2) // someone else writes in between
	f.ApplyBatch([]*raft.Log{entry(t, 2, other)})

	retry := proto.Clone(first).(*cmdpb.Command)
	retry.LeaderTime = 3
	r3 := f.ApplyBatch([]*raft.Log{entry(t, 3, retry)})[0].(*fsm.Response)
	if !proto.Equal(r1.Result, r3.Result) {
		t.Fatalf("retry returned %v, first returned %v", r3.Result, r1.Result)
	}
	if rec := get(t, f, "k"); string(rec.Value) != "v2" || rec.Version != 2 {
		t.Fatalf("retry changed the key: %v", rec)
	}
}

func TestAcknowledgedResultsAreDropped(t *testing.T) {
	f := open(t)
	idx := uint64(0)
	apply := func(cmd *cmdpb.Command) *fsm.Response {
		idx++
		return f.ApplyBatch([]*raft.Log{entry(t, idx, cmd)})[0].(*fsm.Response)
	}
	for seq := uint64(1); seq <= 10; seq++ {
		c := putCmd(t, fmt.Sprintf("k%d", seq), "v", 0, int64(seq))
		c.ClientId, c.Seq, c.AckedBelow = 7, seq, seq // everything before seq is done
		apply(c)
	}
	// seq 3 was acknowledged: a stray duplicate is refused, not re-applied.
	dup := putCmd(t, "k3", "again", 0, 20)
	dup.ClientId, dup.Seq, dup.AckedBelow = 7, 3, 10
	res := apply(dup)
	if res.Result.RejectCode != cmdpb.RejectCode_REJECT_CODE_FAILED_PRECONDITION {
		t.Fatalf("duplicate of an acknowledged request: %v", res.Result)
	}
	if rec := get(t, f, "k3"); string(rec.Value) != "v" {
		t.Fatalf("acknowledged duplicate was applied: %v", rec)
	}
	// seq 10 is still kept.
	again := putCmd(t, "k10", "again", 0, 21)
	again.ClientId, again.Seq, again.AckedBelow = 7, 10, 10
	if res := apply(again); res.Result.RejectCode != 0 {
		t.Fatalf("retry of an unacknowledged request: %v", res.Result)
	}
	if rec := get(t, f, "k10"); string(rec.Value) != "v" {
		t.Fatalf("retry re-applied: %v", rec)
	}
}

func TestIdleSessionsExpire(t *testing.T) {
	f := open(t)
	c := putCmd(t, "k", "v", 0, 1)
	c.ClientId, c.Seq = 9, 1
	f.ApplyBatch([]*raft.Log{entry(t, 1, c)})
	due, ok := f.NextDue()
	if !ok || due != 1+int64(fsm.SessionTTL) {
		t.Fatalf("next due = %d, %v; want session expiry at %d", due, ok, 1+int64(fsm.SessionTTL))
	}
	f.ApplyBatch([]*raft.Log{entry(t, 2, tickCmd(due))})
	if _, ok := f.NextDue(); ok {
		t.Fatal("session still scheduled after expiry")
	}
	// The same request id is now new again: the bound on dedup memory.
	retry := proto.Clone(c).(*cmdpb.Command)
	retry.LeaderTime = due + 1
	if res := f.ApplyBatch([]*raft.Log{entry(t, 3, retry)})[0].(*fsm.Response); res.Result.RejectCode != 0 {
		t.Fatalf("request after session expiry: %v", res.Result)
	}
}

func TestResultsPerSessionAreBounded(t *testing.T) {
	f := open(t)
	var logs []*raft.Log
	n := fsm.MaxResultsPerSession + 50
	for i := 1; i <= n; i++ {
		c := &cmdpb.Command{ClientId: 5, Seq: uint64(i), LeaderTime: int64(i), Machine: sm.MachineFSM, Op: fsm.OpNoop}
		logs = append(logs, entry(t, uint64(i), c))
	}
	for len(logs) > 0 {
		k := min(len(logs), 1000)
		f.ApplyBatch(logs[:k])
		logs = logs[k:]
	}
	// The oldest results were dropped: their ids are refused, never re-applied.
	old := &cmdpb.Command{ClientId: 5, Seq: 1, LeaderTime: int64(n + 1), Machine: sm.MachineFSM, Op: fsm.OpNoop}
	res := f.ApplyBatch([]*raft.Log{entry(t, uint64(n+1), old)})[0].(*fsm.Response)
	if res.Result.RejectCode != cmdpb.RejectCode_REJECT_CODE_FAILED_PRECONDITION {
		t.Fatalf("oldest request after the cap: %v", res.Result)
	}
}

func TestCorruptEntryHalts(t *testing.T) {
	for name, l := range map[string]*raft.Log{
		"garbage":         {Index: 3, Term: 1, Type: raft.LogCommand, Data: []byte{fsm.FormatV1, 0xff, 0xff}},
		"unknown format":  {Index: 3, Term: 1, Type: raft.LogCommand, Data: []byte{99}},
		"unknown machine": entry(t, 3, &cmdpb.Command{Machine: 77, Op: 1}),
		"unknown op":      entry(t, 3, &cmdpb.Command{Machine: sm.MachineKV, Op: 99}),
	} {
		t.Run(name, func(t *testing.T) {
			var halted error
			f := open(t, func(c *fsm.Config) { c.OnHalt = func(err error) { halted = err } })
			f.ApplyBatch([]*raft.Log{entry(t, 1, putCmd(t, "a", "1", 0, 1))})
			before := dump(t, f)
			res := f.ApplyBatch([]*raft.Log{entry(t, 2, putCmd(t, "b", "1", 0, 1)), l})
			if halted == nil || !strings.Contains(halted.Error(), "log index 3") {
				t.Fatalf("halt error = %v; want one naming log index 3", halted)
			}
			if !f.Halted() || res[0].(*fsm.Response).Err == nil {
				t.Fatal("FSM did not report the halt")
			}
			if !bytes.Equal(dump(t, f), before) {
				t.Fatal("a halted batch changed the state")
			}
		})
	}
}

func TestKVExpiryByTick(t *testing.T) {
	f := open(t)
	f.ApplyBatch([]*raft.Log{entry(t, 1, putCmd(t, "tmp", "x", time.Second, 0))})
	due, ok := f.NextDue()
	if !ok || due != int64(time.Second) {
		t.Fatalf("next due = %d %v", due, ok)
	}
	if get(t, f, "tmp") == nil {
		t.Fatal("key missing before expiry")
	}
	f.ApplyBatch([]*raft.Log{entry(t, 2, tickCmd(due))})
	if get(t, f, "tmp") != nil {
		t.Fatal("key present after expiry")
	}
	if _, ok := f.NextDue(); ok {
		t.Fatal("expired key still scheduled")
	}
}
