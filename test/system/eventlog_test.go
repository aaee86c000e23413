package systemtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// logEvent is the part of `coordctl -o json log ...` event lines the tests
// check.
type logEvent struct {
	Stream   string `json:"stream"`
	Version  uint64 `json:"version"`
	Position uint64 `json:"position"`
	ID       string `json:"id"`
	Data     string `json:"data"`
}

// ctlInput runs coordctl against every node with stdin as its standard
// input and a per-command timeout.
func (c *cluster) ctlInput(timeout time.Duration, stdin io.Reader, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "coordctl"), append([]string{"--endpoints", c.endpoints()}, args...)...)
	cmd.Env, cmd.Stdin, cmd.WaitDelay = c.env, stdin, 5*time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), &cmdError{cmd: "coordctl " + strings.Join(args, " "), err: err, stderr: strings.TrimSpace(stderr.String())}
	}
	return stdout.String(), nil
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// parseEvents decodes JSON event lines.
func parseEvents(t *testing.T, out string) []logEvent {
	t.Helper()
	var evs []logEvent
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var ev logEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("bad event line %q: %v", sc.Text(), err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// TestLogTailSurvivesLeaderKillAndRestart runs `coordctl log tail` while
// events are appended and the leader is killed with SIGKILL and restarted,
// twice. The tail must print every event exactly once, in order, and exit 0
// on SIGINT.
func TestLogTailSurvivesLeaderKillAndRestart(t *testing.T) {
	c := startCluster(t, 3)
	var out, errOut lockedBuffer
	tail := exec.Command(filepath.Join(binDir, "coordctl"), "--endpoints", c.endpoints(), "-o", "json", "log", "tail", "feed", "--from", "0")
	tail.Env, tail.Stdout, tail.Stderr = c.env, &out, &errOut
	if err := tail.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tail.Process.Kill() }()

	const total = 60
	killed := 0
	for i := range total {
		switch i {
		case 15, 35:
			killed = c.leader()
			c.mustScript("kill", strconv.Itoa(killed))
			t.Logf("killed leader n%d after %d events", killed, i)
		case 25, 45:
			c.mustScript("restart", strconv.Itoa(killed))
			t.Logf("restarted n%d after %d events", killed, i)
		}
		// A fixed id makes retries exactly-once even across coordctl runs.
		id := fmt.Sprintf("e%d", i)
		eventually(t, 30*time.Second, "append "+id, func() error {
			_, err := c.ctl("log", "append", "feed", id, "--id", id)
			return err
		})
	}
	eventually(t, 30*time.Second, "the tail to print every event", func() error {
		if n := strings.Count(out.String(), "\n"); n < total {
			return fmt.Errorf("%d of %d events printed; stderr: %s", n, total, errOut.String())
		}
		return nil
	})
	if err := tail.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := tail.Wait(); err != nil {
		t.Fatalf("tail exited with %v; stderr: %s", err, errOut.String())
	}
	evs := parseEvents(t, out.String())
	if len(evs) != total {
		t.Fatalf("tail printed %d events, want %d", len(evs), total)
	}
	for i, ev := range evs {
		if ev.Version != uint64(i) || ev.ID != fmt.Sprintf("e%d", i) || ev.Data != ev.ID {
			t.Fatalf("tail line %d: %+v", i, ev)
		}
	}
}

// TestLogBulkAppendReadsBackIdentical pipes 100,000 lines into `coordctl log
// append --file -`, which sends them in batches, and reads the stream back
// with `coordctl -o json log read`: every event, in order, with its data
// unchanged.
func TestLogBulkAppendReadsBackIdentical(t *testing.T) {
	c := startCluster(t, 3)
	const total = 100000
	var in bytes.Buffer
	for i := range total {
		fmt.Fprintf(&in, "event %06d {\"n\":%d,\"pad\":\"%s\"}\n", i, i, strings.Repeat("x", i%50))
	}
	want := strings.Split(strings.TrimSuffix(in.String(), "\n"), "\n")

	start := time.Now()
	out, err := c.ctlInput(2*time.Minute, bytes.NewReader(in.Bytes()), "--timeout", "30s", "log", "append", "bulk", "--file", "-", "--expect-version", "no-stream", "--type", "Bulk")
	if err != nil {
		t.Fatal(err)
	}
	batches := strings.Count(out, "\n")
	t.Logf("appended %d events in %d batches in %v", total, batches, time.Since(start).Round(time.Millisecond))
	if batches < total/1000 {
		t.Fatalf("%d batches reported, want at least %d", batches, total/1000)
	}

	start = time.Now()
	out, err = c.ctlInput(2*time.Minute, nil, "--timeout", "30s", "-o", "json", "log", "read", "bulk")
	if err != nil {
		t.Fatal(err)
	}
	evs := parseEvents(t, out)
	t.Logf("read back %d events in %v", len(evs), time.Since(start).Round(time.Millisecond))
	if len(evs) != total {
		t.Fatalf("read back %d events, want %d", len(evs), total)
	}
	for i, ev := range evs {
		if ev.Version != uint64(i) || ev.Position != uint64(i) || ev.Data != want[i] {
			t.Fatalf("event %d: %+v; want data %q", i, ev, want[i])
		}
	}
	t.Logf("all nodes at %s", c.waitConverged())
}
