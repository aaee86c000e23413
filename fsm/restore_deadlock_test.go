package fsm

import (
	"bytes"
	"io"
	"path/filepath"
	"testing"
	"time"
)

// bufferSink is a raft.SnapshotSink in memory.
type bufferSink struct{ bytes.Buffer }

func (b *bufferSink) ID() string    { return "buffer" }
func (b *bufferSink) Cancel() error { return nil }
func (b *bufferSink) Close() error  { return nil }

// TestRestoreDoesNotWaitForHeldSnapshot: raft may hold a snapshot it took
// (not yet persisted or released) while it waits for a restore to finish;
// the restore must not wait for that snapshot, or the node deadlocks. The
// held snapshot must still persist the state it was taken from.
func TestRestoreDoesNotWaitForHeldSnapshot(t *testing.T) {
	f, err := Open(Config{Path: filepath.Join(t.TempDir(), "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	first, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var dump bufferSink
	if err := first.Persist(&dump); err != nil {
		t.Fatal(err)
	}
	first.Release()

	held, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Restore(io.NopCloser(bytes.NewReader(dump.Bytes()))) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
	case <-time.After(10 * time.Second):
		held.Release()
		t.Fatal("restore waited for a snapshot that was taken but not released")
	}
	var again bufferSink
	if err := held.Persist(&again); err != nil {
		t.Fatalf("persisting the held snapshot after the restore: %v", err)
	}
	held.Release()
	if !bytes.Equal(again.Bytes(), dump.Bytes()) {
		t.Fatalf("the held snapshot persisted %d bytes, want the %d bytes of the state it was taken from", again.Len(), dump.Len())
	}
}
