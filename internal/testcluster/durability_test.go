package testcluster_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	coordv1 "coord/api/coord/v1"
	"coord/internal/testcluster"
)

// crashMachine makes a killed member's data directory look as if its
// machine had gone down with state.db unsynced: the marker left by an
// unclean stop names another kernel boot.
func crashMachine(t *testing.T, m *testcluster.Member) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(m.Dir, "state.db.unsynced"), []byte("a-previous-boot\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestStateRebuiltAfterMachineCrash: a node whose state.db may hold torn
// unsynced writes moves it aside, rebuilds it from the latest snapshot (or
// from the start of the log when there is none) and the Raft log, and ends
// up with the same state as the others.
func TestStateRebuiltAfterMachineCrash(t *testing.T) {
	for name, opts := range map[string]testcluster.Options{
		"from a snapshot":   {SnapshotThreshold: 40, TrailingLogs: 10},
		"from the log only": {},
	} {
		t.Run(name, func(t *testing.T) {
			c := testcluster.New(t, 3, opts)
			leader := c.Leader()
			for i := 0; i < 150; i++ {
				put(t, c, leader, fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i))
			}
			f := c.Followers(leader)[0]
			c.WaitConverged(10 * time.Second)
			f.Kill()
			crashMachine(t, f)
			f.Restart()
			if _, err := os.Stat(filepath.Join(f.Dir, "state.db.discarded")); err != nil {
				t.Fatalf("state.db was not moved aside: %v", err)
			}
			leader = c.Leader()
			put(t, c, leader, "after", "yes")
			c.WaitConverged(15 * time.Second)
			for _, k := range []string{"k0", "k149", "after"} {
				want := "yes"
				if k != "after" {
					want = "v" + k[1:]
				}
				if got := mustGet(t, c, f, k, coordv1.ReadConsistency_READ_CONSISTENCY_STALE); got != want {
					t.Fatalf("%s = %q on the rebuilt node, want %q", k, got, want)
				}
			}
		})
	}
}
