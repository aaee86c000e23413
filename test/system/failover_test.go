package systemtest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLeaderFailoverAndRestart walks a 3-node cluster through the failures a
// person would try by hand:
//
//  1. write keys through coordctl;
//  2. SIGKILL the leader and time how long until a write succeeds again;
//  3. restart the killed node and wait until all three nodes hold the same
//     state (same hash at the same applied index), then read every key back,
//     through the leader and from each node's local state;
//  4. stop the whole cluster, start it again from its data directories and
//     check that every committed key survived.
func TestLeaderFailoverAndRestart(t *testing.T) {
	c := startCluster(t, 3)
	kv := newKeys(c)

	for i := range 10 {
		kv.mustPut(fmt.Sprintf("before-%d", i), fmt.Sprintf("value-%d", i))
	}

	// Kill the leader; the two survivors elect a new one.
	old := c.leader()
	c.mustScript("kill", strconv.Itoa(old))
	killed := time.Now()
	attempts := 0
	eventually(t, 30*time.Second, "successful write after the leader was killed", func() error {
		attempts++
		return kv.put(fmt.Sprintf("failover-%d", attempts), "x")
	})
	t.Logf("SIGKILL of leader n%d -> first successful write: %v (%d attempts)",
		old, time.Since(killed).Round(time.Millisecond), attempts)
	if now := c.leader(); now == old {
		t.Fatalf("n%d is still reported as leader after it was killed", old)
	} else {
		t.Logf("new leader: n%d", now)
	}
	for i := range 10 {
		kv.mustPut(fmt.Sprintf("degraded-%d", i), fmt.Sprintf("value-%d", i))
	}

	// Bring the old leader back: it must catch up to the same state.
	c.mustScript("restart", strconv.Itoa(old))
	t.Logf("all nodes at (applied index, state hash) %s", c.waitConverged())
	kv.checkAll()
	kv.checkStaleOnEveryNode()

	// Full stop and start: state comes back from disk.
	c.mustScript("stop")
	c.mustScript("start")
	kv.checkAll()
	kv.mustPut("after-restart", "y")
	t.Logf("after a full restart, all nodes at %s", c.waitConverged())
	kv.checkStaleOnEveryNode()
}

// TestClusterScriptErrors checks that cluster.sh rejects bad node numbers
// with one clear line and a non-zero exit, and that coordctl exits 1 for an
// absent key.
func TestClusterScriptErrors(t *testing.T) {
	c := startCluster(t, 3)
	for _, args := range [][]string{{"kill", "9"}, {"pause", "0"}, {"restart", "x"}, {"logs"}, {"start", "5"}} {
		_, err := c.script(args...)
		if err == nil {
			t.Errorf("cluster.sh %s succeeded, want an error", strings.Join(args, " "))
			continue
		}
		var ce *cmdError
		if !errors.As(err, &ce) || exitCode(err) != 1 ||
			!strings.HasPrefix(ce.stderr, "cluster.sh: ") || strings.Contains(ce.stderr, "\n") {
			t.Errorf("cluster.sh %s: want exit 1 and one line on stderr, got %v", strings.Join(args, " "), err)
		}
	}
	if out, err := c.script("status"); err != nil || strings.Count(out, " alive ") != 3 {
		t.Errorf("cluster.sh status: want 3 alive nodes, got %v\n%s", err, out)
	}
	if _, err := c.ctl("kv", "get", "no-such-key"); exitCode(err) != 1 {
		t.Errorf("coordctl kv get of an absent key: want exit 1, got %v", err)
	}
}

// keys writes keys through coordctl and remembers the committed ones.
type keys struct {
	c         *cluster
	committed map[string]string
}

func newKeys(c *cluster) *keys {
	return &keys{c: c, committed: make(map[string]string)}
}

// put writes key=value; the key counts as committed only if coordctl succeeds.
func (k *keys) put(key, value string) error {
	if _, err := k.c.ctl("kv", "put", key, value); err != nil {
		return err
	}
	k.committed[key] = value
	return nil
}

func (k *keys) mustPut(key, value string) {
	k.c.t.Helper()
	if err := k.put(key, value); err != nil {
		k.c.t.Fatal(err)
	}
}

// checkAll reads every committed key back with a linearizable read.
func (k *keys) checkAll() {
	k.c.t.Helper()
	for key, want := range k.committed {
		got, err := k.c.ctl("kv", "get", key)
		if err != nil {
			k.c.t.Errorf("get %s: %v", key, err)
		} else if got = strings.TrimSuffix(got, "\n"); got != want {
			k.c.t.Errorf("get %s = %q, want %q", key, got, want)
		}
	}
	k.c.t.Logf("read back %d committed keys", len(k.committed))
}

// checkStaleOnEveryNode reads every committed key from each node's own
// state. Call it after waitConverged.
func (k *keys) checkStaleOnEveryNode() {
	k.c.t.Helper()
	for i := 1; i <= k.c.size; i++ {
		for key, want := range k.committed {
			got, err := k.c.ctlAt(k.c.endpoint(i), "kv", "get", "--stale", key)
			if err != nil {
				k.c.t.Errorf("n%d: stale get %s: %v", i, key, err)
			} else if got = strings.TrimSuffix(got, "\n"); got != want {
				k.c.t.Errorf("n%d: stale get %s = %q, want %q", i, key, got, want)
			}
		}
	}
}
