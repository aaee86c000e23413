package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"coord/client"
	"coord/internal/testcluster"
)

func runOnCluster(t *testing.T, c *testcluster.Cluster, args ...string) result {
	t.Helper()
	return runCLI(t, nil, append([]string{"--endpoints", strings.Join(c.Endpoints(), ",")}, args...)...)
}

// field returns the value of key=value in a line of table output.
func field(t *testing.T, out, key string) string {
	t.Helper()
	for _, f := range strings.Fields(out) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	t.Fatalf("no %s= in %q", key, out)
	return ""
}

func TestLockAcquireReleaseWalkthrough(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	r := mustSucceed(t, runOnCluster(t, c, "lock", "acquire", "jobs/nightly", "--ttl", "30s", "--owner", "alice"))
	if field(t, r.stdout, "owner") != "alice" {
		t.Fatalf("acquire output %q", r.stdout)
	}
	token := field(t, r.stdout, "token")

	msg := mustFail(t, runOnCluster(t, c, "lock", "acquire", "jobs/nightly", "--owner", "bob"), 1)
	if !strings.Contains(msg, "alice") || !strings.Contains(msg, token) {
		t.Fatalf("busy message %q should name the holder and token", msg)
	}
	get := mustSucceed(t, runOnCluster(t, c, "lock", "get", "jobs/nightly"))
	if !strings.Contains(get.stdout, "alice") || !strings.Contains(get.stdout, token) {
		t.Fatalf("get output %q", get.stdout)
	}
	list := mustSucceed(t, runOnCluster(t, c, "lock", "list", "jobs/"))
	if !strings.Contains(list.stdout, "jobs/nightly") {
		t.Fatalf("list output %q", list.stdout)
	}
	mustSucceed(t, runOnCluster(t, c, "lock", "check", "jobs/nightly", token))

	wrong := strconv.Itoa(mustAtoi(t, token) + 1000)
	if msg := mustFail(t, runOnCluster(t, c, "lock", "release", "jobs/nightly", "--token", wrong), 1); !strings.Contains(msg, "not held with token") {
		t.Fatalf("wrong-token release: %q", msg)
	}
	if msg := mustFail(t, runOnCluster(t, c, "lock", "release", "jobs/nightly", "--token", token, "--owner", "bob"), 1); !strings.Contains(msg, "alice") {
		t.Fatalf("wrong-owner release: %q", msg)
	}
	mustSucceed(t, runOnCluster(t, c, "lock", "release", "jobs/nightly", "--token", token, "--owner", "alice"))
	mustFail(t, runOnCluster(t, c, "lock", "check", "jobs/nightly", token), 1)
	// JSON output is the AcquireResponse.
	js := mustSucceed(t, runOnCluster(t, c, "-o", "json", "lock", "acquire", "jobs/nightly"))
	if !strings.Contains(js.stdout, `"acquired": true`) || !strings.Contains(js.stdout, `"token": "`) {
		t.Fatalf("json output %q", js.stdout)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestLockBadFlags(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	for name, args := range map[string][]string{
		"short ttl":      {"lock", "acquire", "x", "--ttl", "10ms"},
		"negative wait":  {"lock", "acquire", "x", "--wait", "-1s"},
		"zero limit":     {"lock", "acquire", "x", "--limit", "0"},
		"no token":       {"lock", "release", "x"},
		"bad token":      {"lock", "check", "x", "abc"},
		"hold no dash":   {"lock", "hold", "x", "true"},
		"hold no cmd":    {"lock", "hold", "x", "--"},
		"long lockdelay": {"lock", "acquire", "x", "--lock-delay", "2m"},
	} {
		t.Run(name, func(t *testing.T) { mustFail(t, runOnCluster(t, c, args...), 2) })
	}
	// Bad names are refused by the server: one line, exit 1, nothing applied.
	msg := mustFail(t, runOnCluster(t, c, "lock", "acquire", "bad name"), 1)
	if !strings.Contains(msg, "lock name") {
		t.Fatalf("bad name: %q", msg)
	}
}

func TestLockHoldRunsCommandAndReturnsItsStatus(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	r := runOnCluster(t, c, "lock", "hold", "h", "--", "sh", "-c", `echo "$COORD_LOCK_NAME $COORD_LOCK_TOKEN"; exit 7`)
	if r.code != 7 {
		t.Fatalf("exit %d, want the command's 7 (stderr %q)", r.code, r.stderr)
	}
	parts := strings.Fields(r.stdout)
	if len(parts) != 2 || parts[0] != "h" || mustAtoi(t, parts[1]) <= 0 {
		t.Fatalf("command saw %q", r.stdout)
	}
	// The lock was released when the command exited.
	mustSucceed(t, runOnCluster(t, c, "lock", "acquire", "h", "--ttl", "5s"))
}

func TestLockHoldSerializesCommands(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	log := filepath.Join(t.TempDir(), "log")
	script := `echo "start $COORD_LOCK_TOKEN" >> ` + log + `; sleep 1; echo "end $COORD_LOCK_TOKEN" >> ` + log
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = runOnCluster(t, c, "lock", "hold", "serial", "--wait", "30s", "--", "sh", "-c", script).code
		}()
	}
	wg.Wait()
	if codes[0] != 0 || codes[1] != 0 {
		t.Fatalf("exit codes %v", codes)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "start") || !strings.HasPrefix(lines[1], "end") ||
		!strings.HasPrefix(lines[2], "start") || !strings.HasPrefix(lines[3], "end") {
		t.Fatalf("the two commands overlapped:\n%s", b)
	}
	t1, t2 := mustAtoi(t, strings.Fields(lines[0])[1]), mustAtoi(t, strings.Fields(lines[2])[1])
	if t2 <= t1 {
		t.Fatalf("second holder's token %d is not above the first's %d", t2, t1)
	}
}

func TestLockHoldKillsTheGroupWhenTheLockIsLost(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli, err := client.New(ctx, client.Config{Endpoints: c.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	pidFile := filepath.Join(t.TempDir(), "pid")
	done := make(chan result, 1)
	go func() {
		// The command starts a grandchild in its group, then waits.
		done <- runOnCluster(t, c, "lock", "hold", "doomed", "--ttl", "3s", "--", "sh", "-c",
			`sleep 60 & echo $! > `+pidFile+`; wait`)
	}()
	var lease uint64
	c.Eventually(10*time.Second, "the holder to run", func() bool {
		g, err := cli.GetLock(ctx, "doomed")
		if err != nil || !g.Found || len(g.Lock.Holders) == 0 {
			return false
		}
		lease = g.Lock.Holders[0].LeaseId
		_, err = os.Stat(pidFile)
		return err == nil
	})
	if err := cli.RevokeLease(ctx, lease); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("hold did not end after the lock was lost")
	}
	if r.code == 0 || !strings.Contains(r.stderr, "lost") {
		t.Fatalf("exit %d stderr %q: want a non-zero exit naming the loss", r.code, r.stderr)
	}
	b, _ := os.ReadFile(pidFile)
	pid := mustAtoi(t, strings.TrimSpace(string(b)))
	c.Eventually(5*time.Second, "the grandchild to be killed", func() bool {
		return processGone(pid)
	})
}

func processGone(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return true
	}
	// Signal 0 probes for existence; a zombie still counts, so also check /proc.
	if err := p.Signal(syscall.Signal(0)); err != nil {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err != nil || strings.Contains(string(b), ") Z ")
}
