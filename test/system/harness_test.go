package systemtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	// Tests use loopback ports in [portRangeLow, portRangeHigh]: below the
	// usual ephemeral range (32768 and up), so outgoing connections do not
	// take them. A cluster with base port B uses B+I, B+100+I and B+200+I for
	// node I, so one cluster needs a block of 300 ports.
	portRangeLow  = 20000
	portRangeHigh = 29999
	portBlock     = 300

	scriptTimeout = 2 * time.Minute  // for one cluster.sh command
	ctlTimeout    = 15 * time.Second // for one coordctl command
	maxLogBytes   = 64 << 10         // per node, printed when a test fails
)

// cluster is a local cluster of coordd processes run by scripts/cluster.sh in
// a temporary directory.
type cluster struct {
	t    *testing.T
	dir  string   // COORD_CLUSTER_DIR
	base int      // COORD_BASE_PORT
	size int      // number of nodes
	env  []string // environment for cluster.sh and coordctl
}

// startCluster starts a cluster of size nodes with `cluster.sh start` and
// waits until every node is ready. When the test ends, the cluster is stopped;
// if the test failed, the cluster's status and the node logs are printed first.
func startCluster(t *testing.T, size int) *cluster {
	t.Helper()
	skipIfUnsupported(t)
	c := &cluster{t: t, dir: t.TempDir(), size: size}
	c.base = freeBasePort(t, size)
	c.env = append(testEnv(os.Environ()),
		"COORD_BIN_DIR="+binDir,
		"COORD_CLUSTER_DIR="+c.dir,
		"COORD_BASE_PORT="+strconv.Itoa(c.base),
		"COORD_WAIT_TIMEOUT=60",
	)
	t.Cleanup(c.cleanup) // registered after t.TempDir, so it runs before the removal
	t.Logf("cluster of %d nodes in %s, base port %d", size, c.dir, c.base)
	c.mustScript("start", strconv.Itoa(size))
	return c
}

// cleanup stops the cluster, printing its state and logs first if the test
// failed, and fails the test if a coordd built with -race reported a race.
func (c *cluster) cleanup() {
	if c.t.Failed() {
		c.dumpState()
	}
	if out, err := c.script("stop"); err != nil {
		c.t.Errorf("stopping the cluster: %v\n%s", err, out)
	}
	c.checkRaces()
}

func (c *cluster) dumpState() {
	out, err := c.script("status")
	c.t.Logf("cluster.sh status (err: %v):\n%s", err, out)
	for i := 1; i <= c.size; i++ {
		log, err := os.ReadFile(c.logPath(i))
		if err != nil {
			c.t.Logf("n%d log: %v", i, err)
			continue
		}
		note := ""
		if len(log) > maxLogBytes {
			log, note = log[len(log)-maxLogBytes:], fmt.Sprintf(" (last %d bytes)", maxLogBytes)
		}
		c.t.Logf("===== n%d log%s =====\n%s", i, note, log)
	}
}

// checkRaces fails the test when a node's log holds a race detector report.
func (c *cluster) checkRaces() {
	for i := 1; i <= c.size; i++ {
		log, err := os.ReadFile(c.logPath(i))
		if err == nil && bytes.Contains(log, []byte("WARNING: DATA RACE")) {
			c.t.Errorf("n%d reported a data race; its log:\n%s", i, log)
		}
	}
}

func (c *cluster) logPath(i int) string {
	return filepath.Join(c.dir, fmt.Sprintf("n%d", i), "coordd.log")
}

// endpoint returns node i's gRPC address.
func (c *cluster) endpoint(i int) string {
	return fmt.Sprintf("127.0.0.1:%d", c.base+i)
}

// endpoints returns every node's gRPC address, comma separated.
func (c *cluster) endpoints() string {
	eps := make([]string, c.size)
	for i := range eps {
		eps[i] = c.endpoint(i + 1)
	}
	return strings.Join(eps, ",")
}

// script runs scripts/cluster.sh with args and returns its standard output.
func (c *cluster) script(args ...string) (string, error) {
	return c.exec(scriptTimeout, "bash", append([]string{filepath.Join(repoDir, "scripts", "cluster.sh")}, args...)...)
}

func (c *cluster) mustScript(args ...string) string {
	c.t.Helper()
	out, err := c.script(args...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

// ctl runs coordctl against every node.
func (c *cluster) ctl(args ...string) (string, error) {
	return c.ctlAt(c.endpoints(), args...)
}

// ctlAt runs coordctl against the given endpoints.
func (c *cluster) ctlAt(endpoints string, args ...string) (string, error) {
	args = append([]string{"--endpoints", endpoints, "--timeout", "5s"}, args...)
	return c.exec(ctlTimeout, filepath.Join(binDir, "coordctl"), args...)
}

// exec runs a command and returns its standard output; the error includes
// the standard error.
func (c *cluster) exec(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = c.env
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), &cmdError{
			cmd:    filepath.Base(name) + " " + strings.Join(args, " "),
			err:    err,
			stderr: strings.TrimSpace(stderr.String()),
		}
	}
	return stdout.String(), nil
}

// cmdError is a failed command with its standard error.
type cmdError struct {
	cmd    string
	err    error
	stderr string
}

func (e *cmdError) Error() string { return fmt.Sprintf("%s: %v: %s", e.cmd, e.err, e.stderr) }
func (e *cmdError) Unwrap() error { return e.err }

// leader returns the number of the current leader, as `cluster.sh leader`
// reports it once it names a running node.
func (c *cluster) leader() int {
	c.t.Helper()
	var leader int
	eventually(c.t, 30*time.Second, "a leader", func() error {
		out, err := c.script("leader")
		if err != nil {
			return err
		}
		leader, err = strconv.Atoi(strings.TrimSpace(out))
		return err
	})
	return leader
}

// stateHashes returns, per node id, "applied_index sha256" as reported by
// `coordctl -o json cluster hash`.
func (c *cluster) stateHashes() (map[string]string, error) {
	out, err := c.ctl("-o", "json", "cluster", "hash")
	if err != nil {
		return nil, err
	}
	var resp struct {
		Hashes []struct {
			ID           string `json:"id"`
			AppliedIndex string `json:"applied_index"`
			SHA256       string `json:"sha256"`
			Error        string `json:"error"`
		} `json:"hashes"`
	}
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		return nil, fmt.Errorf("cluster hash output: %v\n%s", err, out)
	}
	hashes := make(map[string]string)
	for _, h := range resp.Hashes {
		if h.Error != "" {
			return nil, fmt.Errorf("cluster hash: %s: %s", h.ID, h.Error)
		}
		hashes[h.ID] = h.AppliedIndex + " " + h.SHA256
	}
	return hashes, nil
}

// waitConverged waits until every node reports the same state hash at the
// same applied index, and returns that "applied_index sha256".
func (c *cluster) waitConverged() string {
	c.t.Helper()
	var common string
	eventually(c.t, 60*time.Second, "every node at the same state hash", func() error {
		hashes, err := c.stateHashes()
		if err != nil {
			return err
		}
		if len(hashes) != c.size {
			return fmt.Errorf("%d nodes reported a hash, want %d: %v", len(hashes), c.size, hashes)
		}
		common = ""
		for _, h := range hashes {
			if common != "" && h != common {
				return fmt.Errorf("nodes differ: %v", hashes)
			}
			common = h
		}
		return nil
	})
	return common
}

// eventually calls f until it succeeds, every 100ms, and fails the test with
// f's last error if that takes longer than timeout. It returns how long it took.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		err := f()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("no %s after %v; last error: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freeBasePort picks a base port whose ports for size nodes are all free and
// claims it for the rest of the test. Blocks are tried from a random one on;
// the claim is an exclusive flock on a file in the temporary directory, so
// concurrent test runs never share a block, even while a killed node's ports
// are briefly free. The claim ends with the test (or with a crashed process).
func freeBasePort(t *testing.T, size int) int {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "coord-systemtest-ports")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	blocks := (portRangeHigh - portRangeLow + 1) / portBlock
	first := rand.IntN(blocks)
	for k := range blocks {
		base := portRangeLow + ((first+k)%blocks)*portBlock
		f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(base)+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil && portsFree(base, size) {
			t.Cleanup(func() { f.Close() }) // runs after the cluster's cleanup has stopped it
			return base
		}
		f.Close()
	}
	t.Fatalf("no free block of ports between %d and %d", portRangeLow, portRangeHigh)
	return 0
}

func portsFree(base, size int) bool {
	for i := 1; i <= size; i++ {
		for _, port := range []int{base + i, base + 100 + i, base + 200 + i} {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				return false
			}
			l.Close()
		}
	}
	return true
}

// testEnv returns env without COORD_* variables, which coordd, coordctl and
// cluster.sh all read, so that the caller's settings do not leak in. It also
// stops binaries built with -race from sleeping 1s on exit (the race
// detector's atexit_sleep_ms), which would make every coordctl call slow.
func testEnv(env []string) []string {
	var out []string
	gorace := "GORACE="
	for _, kv := range env {
		switch {
		case strings.HasPrefix(kv, "COORD_"):
		case strings.HasPrefix(kv, "GORACE="):
			gorace = kv
		default:
			out = append(out, kv)
		}
	}
	if !strings.Contains(gorace, "atexit_sleep_ms") {
		gorace = strings.TrimSpace(gorace + " atexit_sleep_ms=0")
	}
	return append(out, gorace)
}

// exitCode returns the exit status in err, or -1.
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}
