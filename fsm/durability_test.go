package fsm_test

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"coord/fsm"
	"coord/internal/sm"
	"coord/kv"
)

// reopenAfterCrash applies 100 entries with boot id "boot-1", closes the
// FSM cleanly, then leaves the marker an unclean stop in boot "boot-1" would
// have left, and reopens the FSM in boot `now`.
func reopenAfterCrash(t *testing.T, now string) (*fsm.FSM, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	cfg := fsm.Config{Path: path, Machines: []sm.Machine{kv.Machine{}}, BootID: func() string { return "boot-1" }}
	f, err := fsm.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	applyInBatches(f, randomHistory(t, 21, 100), rand.New(rand.NewSource(1)))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".unsynced"); !os.IsNotExist(err) {
		t.Fatalf("a clean close left the marker (stat: %v)", err)
	}
	if err := os.WriteFile(path+".unsynced", []byte("boot-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.BootID = func() string { return now }
	f, err = fsm.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f, path
}

func TestOpenMarksStateUnsynced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	f, err := fsm.Open(fsm.Config{Path: path, BootID: func() string { return "boot-7" }})
	if err != nil {
		t.Fatal(err)
	}
	mark, err := os.ReadFile(path + ".unsynced")
	if err != nil || !bytes.Equal(mark, []byte("boot-7\n")) {
		t.Fatalf("marker = %q, %v; want the boot id", mark, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".unsynced"); !os.IsNotExist(err) {
		t.Fatalf("marker still there after Close (stat: %v)", err)
	}
}

func TestProcessCrashKeepsUnsyncedState(t *testing.T) {
	f, path := reopenAfterCrash(t, "boot-1")
	if f.AppliedIndex() != 100 {
		t.Fatalf("applied index = %d after a process crash, want 100", f.AppliedIndex())
	}
	if _, err := os.Stat(path + ".discarded"); !os.IsNotExist(err) {
		t.Fatalf("state was moved aside after a process crash (stat: %v)", err)
	}
}

func TestMachineCrashDiscardsUnsyncedState(t *testing.T) {
	for _, now := range []string{"boot-2", ""} { // another boot, or no boot id to compare
		f, path := reopenAfterCrash(t, now)
		if f.AppliedIndex() != 0 {
			t.Fatalf("boot %q: applied index = %d after a machine crash, want 0 (rebuilt)", now, f.AppliedIndex())
		}
		if _, err := os.Stat(path + ".discarded"); err != nil {
			t.Fatalf("boot %q: the torn state was not kept aside: %v", now, err)
		}
		// The rebuilt FSM replays the log to the same state.
		logs := randomHistory(t, 21, 100)
		applyInBatches(f, logs, rand.New(rand.NewSource(2)))
		ref := open(t)
		applyInBatches(ref, logs, rand.New(rand.NewSource(3)))
		if !bytes.Equal(dump(t, f), dump(t, ref)) {
			t.Fatalf("boot %q: rebuilt state differs", now)
		}
	}
}

func TestSyncEveryCommitLeavesNoMarker(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	f, err := fsm.Open(fsm.Config{Path: path, SyncEveryCommit: true})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := os.Stat(path + ".unsynced"); !os.IsNotExist(err) {
		t.Fatalf("marker with SyncEveryCommit (stat: %v)", err)
	}
}
