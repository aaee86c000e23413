package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"coord/internal/testcluster"
)

// jsonEvents parses the JSON lines of a read, read-all or tail.
func jsonEvents(t *testing.T, out string) []eventLine {
	t.Helper()
	var evs []eventLine
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		var ev eventLine
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

func TestLogAppendReadWalkthrough(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	r := mustSucceed(t, runOnCluster(t, c, "log", "append", "orders", "first", "second", "--type", "OrderPlaced", "--id", "o1", "--meta", "src=cli"))
	if r.stdout != "appended 2 event(s) to orders: versions 0-1, positions 0-1\n" {
		t.Fatalf("append printed %q", r.stdout)
	}
	r = mustSucceed(t, runOnCluster(t, c, "log", "append", "orders", "first", "second", "--id", "o1"))
	if !strings.HasPrefix(r.stdout, "duplicate 2 event(s)") {
		t.Fatalf("repeated append printed %q", r.stdout)
	}
	msg := mustFail(t, runOnCluster(t, c, "log", "append", "orders", "x", "--expect-version", "0"), exitError)
	if !strings.Contains(msg, "last version is 1") {
		t.Fatalf("mismatch message %q", msg)
	}
	mustSucceed(t, runOnCluster(t, c, "log", "append", "users", "\xffbin", "--expect-version", "no-stream"))

	r = mustSucceed(t, runOnCluster(t, c, "log", "read", "orders"))
	if !strings.Contains(r.stdout, "pos=1 orders@1 type=OrderPlaced id=o1-1 second\n") {
		t.Fatalf("read printed %q", r.stdout)
	}
	evs := jsonEvents(t, mustSucceed(t, runOnCluster(t, c, "-o", "json", "log", "read-all")).stdout)
	if len(evs) != 3 || evs[0].ID != "o1-0" || evs[0].Data != "first" || evs[0].Metadata["src"] != "cli" || evs[0].DataEncoding != "utf8" {
		t.Fatalf("read-all: %+v", evs)
	}
	if evs[2].Stream != "users" || evs[2].DataEncoding != "base64" || evs[2].Data != "/2Jpbg==" || evs[2].Position != 2 {
		t.Fatalf("binary event: %+v", evs[2])
	}
	if _, err := time.Parse(time.RFC3339Nano, evs[2].Time); err != nil {
		t.Fatalf("time %q: %v", evs[2].Time, err)
	}
	evs = jsonEvents(t, mustSucceed(t, runOnCluster(t, c, "-o", "json", "log", "read", "orders", "--backwards", "--limit", "1")).stdout)
	if len(evs) != 1 || evs[0].Version != 1 {
		t.Fatalf("read --backwards --limit 1: %+v", evs)
	}
	evs = jsonEvents(t, mustSucceed(t, runOnCluster(t, c, "-o", "json", "log", "read-all", "--type", "event")).stdout)
	if len(evs) != 1 || evs[0].Stream != "users" {
		t.Fatalf("read-all --type event: %+v", evs)
	}

	list := mustSucceed(t, runOnCluster(t, c, "log", "streams"))
	if !strings.Contains(list.stdout, "orders") || !strings.Contains(list.stdout, "users") {
		t.Fatalf("streams printed %q", list.stdout)
	}
	info := mustSucceed(t, runOnCluster(t, c, "log", "info", "orders"))
	if !strings.Contains(info.stdout, "next version: 2") {
		t.Fatalf("info printed %q", info.stdout)
	}
	mustSucceed(t, runOnCluster(t, c, "log", "delete", "users"))
	if msg := mustFail(t, runOnCluster(t, c, "log", "append", "users", "again"), exitError); !strings.Contains(msg, "deleted") {
		t.Fatalf("append to a deleted stream: %q", msg)
	}
	if msg := mustFail(t, runOnCluster(t, c, "log", "read", "users"), exitError); !strings.Contains(msg, "deleted") {
		t.Fatalf("read of a deleted stream: %q", msg)
	}
	mustFail(t, runOnCluster(t, c, "log", "info", "nothing"), exitError)

	mustSucceed(t, runOnCluster(t, c, "log", "cursor", "set", "billing", "42"))
	if r := mustSucceed(t, runOnCluster(t, c, "log", "cursor", "get", "billing")); r.stdout != "42\n" {
		t.Fatalf("cursor get printed %q", r.stdout)
	}
	mustFail(t, runOnCluster(t, c, "log", "cursor", "get", "nobody"), exitError)
}

func TestLogBadCommandLines(t *testing.T) {
	c := testcluster.New(t, 1, testcluster.Options{})
	for name, args := range map[string][]string{
		"no data":         {"log", "append", "s"},
		"data and file":   {"log", "append", "s", "x", "--file", "f"},
		"bad expectation": {"log", "append", "s", "x", "--expect-version", "soon"},
		"bad type":        {"log", "append", "s", "x", "--type", "a b"},
		"tail neither":    {"log", "tail"},
		"tail both":       {"log", "tail", "s", "--all"},
		"tail filter":     {"log", "tail", "s", "--type", "t"},
		"cursor position": {"log", "cursor", "set", "c", "-1"},
		"negative limit":  {"log", "read", "s", "--limit", "-1"},
	} {
		t.Run(name, func(t *testing.T) { mustFail(t, runOnCluster(t, c, args...), exitUsage) })
	}
}

// TestLogAppendFileInBatches appends more lines than fit one append from a
// file and reads them back in order.
func TestLogAppendFileInBatches(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	const n = 2500
	var in bytes.Buffer
	for i := range n {
		fmt.Fprintf(&in, "line %d\n", i)
	}
	in.WriteString("\n") // empty lines are skipped
	path := filepath.Join(t.TempDir(), "events.txt")
	if err := os.WriteFile(path, in.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	r := mustSucceed(t, runOnCluster(t, c, "log", "append", "bulk", "--file", path, "--expect-version", "no-stream", "--id", "bulk"))
	if got := strings.Count(r.stdout, "\n"); got != 3 {
		t.Fatalf("%d batches reported, want 3:\n%s", got, r.stdout)
	}
	again := mustSucceed(t, runOnCluster(t, c, "log", "append", "bulk", "--file", path, "--id", "bulk"))
	if strings.Count(again.stdout, "duplicate") != 3 {
		t.Fatalf("a second run must append nothing:\n%s", again.stdout)
	}
	evs := jsonEvents(t, mustSucceed(t, runOnCluster(t, c, "-o", "json", "log", "read", "bulk")).stdout)
	if len(evs) != n {
		t.Fatalf("read back %d events, want %d", len(evs), n)
	}
	for i, ev := range evs {
		if ev.Version != uint64(i) || ev.Data != fmt.Sprintf("line %d", i) || ev.ID != fmt.Sprintf("bulk-%d", i) {
			t.Fatalf("event %d: %+v", i, ev)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a concurrent reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestLogTailFollowsAcrossLeaderRestart tails a stream from version 0 while
// events are appended and the leader is killed and restarted, then
// interrupts it.
func TestLogTailFollowsAcrossLeaderRestart(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	mustSucceed(t, runOnCluster(t, c, "log", "append", "feed", "e0"))
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan int)
	go func() {
		args := []string{"--endpoints", strings.Join(c.Endpoints(), ","), "-o", "json", "log", "tail", "feed", "--from", "0"}
		done <- run(ctx, args, &out, &errOut, func(string) string { return "" })
	}()
	for i := 1; i < 20; i++ {
		if i == 10 {
			leader := c.Leader()
			leader.Kill()
			c.Leader()
			leader.Restart()
		}
		mustSucceed(t, runOnCluster(t, c, "log", "append", "feed", fmt.Sprintf("e%d", i)))
	}
	c.Eventually(20*time.Second, "the tail to print 20 events", func() bool {
		return strings.Count(out.String(), "\n") >= 20
	})
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("tail exited %d: %s", code, errOut.String())
	}
	for i, ev := range jsonEvents(t, out.String()) {
		if ev.Version != uint64(i) || ev.Data != fmt.Sprintf("e%d", i) {
			t.Fatalf("tail line %d: %+v", i, ev)
		}
	}
}
