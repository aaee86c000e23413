package systemtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hold starts `coordctl lock hold` in the background and returns it.
func (c *cluster) hold(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "coordctl"), append([]string{"--endpoints", c.endpoints(), "--timeout", "5s", "lock", "hold"}, args...)...)
	cmd.Env = c.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
	})
	return cmd, &out
}

// holderToken waits until lock name has a holder and returns its token.
func (c *cluster) holderToken(t *testing.T, name string) string {
	t.Helper()
	var token string
	eventually(t, 30*time.Second, "a holder of "+name, func() error {
		out, err := c.ctl("lock", "get", name)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) >= 3 && f[0] == "holder" {
				token = f[2]
				return nil
			}
		}
		return fmt.Errorf("no holder yet: %s", out)
	})
	return token
}

func waitExit(t *testing.T, cmd *exec.Cmd, timeout time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			return 0
		}
		return exitCode(err)
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %v", cmd.Args, timeout)
		return -1
	}
}

// TestLockHoldSurvivesLeaderKillAndSerializes runs two `lock hold` commands
// on one lock: the second waits for the first, and killing the leader while
// the first holds the lock does not lose it.
func TestLockHoldSurvivesLeaderKillAndSerializes(t *testing.T) {
	c := startCluster(t, 3)
	log := filepath.Join(t.TempDir(), "log")
	script := func(d string) string {
		return fmt.Sprintf(`echo "start $COORD_LOCK_TOKEN" >> %s; sleep %s; echo "end $COORD_LOCK_TOKEN" >> %s`, log, d, log)
	}
	first, firstOut := c.hold(t, "jobs/nightly", "--ttl", "5s", "--", "sh", "-c", script("8"))
	c.holderToken(t, "jobs/nightly")
	second, secondOut := c.hold(t, "jobs/nightly", "--ttl", "5s", "--wait", "60s", "--", "sh", "-c", script("0"))
	eventually(t, 10*time.Second, "the second hold to queue", func() error {
		out, err := c.ctl("lock", "get", "jobs/nightly")
		if err != nil || !strings.Contains(out, "waiter 1") {
			return fmt.Errorf("not queued: %v %s", err, out)
		}
		return nil
	})
	c.mustScript("kill", strconv.Itoa(c.leader()))
	if code := waitExit(t, first, 40*time.Second); code != 0 || strings.Contains(firstOut.String(), "lost") {
		t.Fatalf("first hold exited %d: %s", code, firstOut)
	}
	if code := waitExit(t, second, 40*time.Second); code != 0 {
		t.Fatalf("second hold exited %d: %s", code, secondOut)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "start") || !strings.HasPrefix(lines[1], "end") ||
		!strings.HasPrefix(lines[2], "start") || !strings.HasPrefix(lines[3], "end") {
		t.Fatalf("the commands overlapped or did not run:\n%s", b)
	}
	t1, _ := strconv.Atoi(strings.Fields(lines[0])[1])
	t2, _ := strconv.Atoi(strings.Fields(lines[2])[1])
	if t2 <= t1 {
		t.Fatalf("second token %d is not above the first %d", t2, t1)
	}
}

// TestPausedHolderLosesLockAndIsFenced pauses a holder process (SIGSTOP):
// its lease expires after the TTL, the lock passes to a waiter, and a write
// fenced with the paused holder's token is refused. When the holder resumes
// it learns the lock is lost, kills its command and exits non-zero.
func TestPausedHolderLosesLockAndIsFenced(t *testing.T) {
	c := startCluster(t, 3)
	holder, holderOut := c.hold(t, "res", "--ttl", "3s", "--", "sleep", "120")
	token := c.holderToken(t, "res")
	if out, err := c.ctl("kv", "put", "data", "from-holder", "--fence", "res:"+token); err != nil {
		t.Fatalf("fenced write by the holder: %v %s", err, out)
	}
	if err := holder.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	out, err := c.exec(60*time.Second, filepath.Join(binDir, "coordctl"), "--endpoints", c.endpoints(), "--timeout", "5s",
		"lock", "acquire", "res", "--wait", "30s", "--ttl", "30s", "--owner", "successor")
	if err != nil {
		t.Fatalf("successor acquire: %v", err)
	}
	newToken := strings.TrimPrefix(strings.Fields(out)[1], "token=")
	if n, _ := strconv.Atoi(newToken); n <= mustInt(t, token) {
		t.Fatalf("successor token %s is not above %s", newToken, token)
	}
	_, err = c.ctl("kv", "put", "data", "stale", "--fence", "res:"+token)
	if err == nil || !strings.Contains(err.Error(), "fenced") {
		t.Fatalf("stale fenced write: %v", err)
	}
	if got, _ := c.ctl("kv", "get", "data"); strings.TrimSpace(got) != "from-holder" {
		t.Fatalf("data = %q after the refused write", got)
	}
	if err := holder.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, holder, 30*time.Second); code == 0 || !strings.Contains(holderOut.String(), "lost") {
		t.Fatalf("resumed holder exited %d: %s", code, holderOut)
	}
}

func mustInt(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
