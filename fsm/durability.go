package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// state.db durability
//
// Unless Config.SyncEveryCommit is set, state.db commits are not fsynced:
// every committed entry is already durable in Raft's log (fsynced on a
// quorum before it is applied) and in the snapshots, and state.db is the
// deterministic result of applying them, so it can always be rebuilt from
// the latest snapshot and the log after it. What must never happen is
// trusting a state.db that a machine crash left half-written.
//
// A process crash cannot do that: commits are written (unsynced) into the
// page cache, which survives the process, and bbolt's meta page is written
// after the pages it points to, so the file always holds the last complete
// commit. Only a crash of the machine (power loss, kernel panic) can lose
// or reorder unsynced writes. So while state.db is open, a marker file next
// to it (state.db.unsynced) holds the kernel's boot id; a clean Close
// fsyncs state.db and removes the marker. At Open, a marker whose boot id
// differs from the running kernel's (or that cannot be compared) means the
// machine went down with unsynced writes: state.db is moved aside to
// state.db.discarded and the FSM starts empty, to be rebuilt from the
// newest snapshot and the log (see node: catchUpFromSnapshot).

// bootIDPath is where Linux publishes the id of the running kernel boot.
const bootIDPath = "/proc/sys/kernel/random/boot_id"

// kernelBootID returns the running kernel's boot id, or "" where there is
// none (a marker is then never trusted: every unclean stop rebuilds).
func kernelBootID() string {
	b, err := os.ReadFile(bootIDPath)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func markerPath(dbPath string) string { return dbPath + ".unsynced" }

// discardIfTorn moves state.db aside when its marker shows that the machine
// stopped while state.db held unsynced commits. It reports whether it did.
func discardIfTorn(dbPath, bootID string, log *slog.Logger) (bool, error) {
	mark, err := os.ReadFile(markerPath(dbPath))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("fsm: read %s: %w", markerPath(dbPath), err)
	}
	prev := string(bytes.TrimSpace(mark))
	if bootID != "" && prev == bootID {
		return false, nil // the process stopped, the machine did not: the page cache kept every write
	}
	if _, err := os.Stat(dbPath); err == nil {
		aside := dbPath + ".discarded"
		if err := os.Rename(dbPath, aside); err != nil {
			return false, fmt.Errorf("fsm: move aside %s: %w", dbPath, err)
		}
		log.Warn("state.db may hold torn unsynced writes after a machine restart; moved it aside to rebuild it from the latest snapshot and the Raft log",
			"path", dbPath, "moved_to", aside, "boot_id_then", prev, "boot_id_now", bootID)
	}
	if err := os.Remove(markerPath(dbPath)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	return true, syncDir(dbPath)
}

// markUnsynced records, durably, that state.db is open with unsynced commits.
func markUnsynced(dbPath, bootID string) error {
	f, err := os.OpenFile(markerPath(dbPath), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("fsm: create %s: %w", markerPath(dbPath), err)
	}
	_, err = fmt.Fprintf(f, "%s\n", bootID)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsm: write %s: %w", markerPath(dbPath), err)
	}
	return syncDir(dbPath)
}

// clearUnsynced removes the marker once state.db has been fsynced.
func clearUnsynced(dbPath string) error {
	if err := os.Remove(markerPath(dbPath)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return syncDir(dbPath)
}
