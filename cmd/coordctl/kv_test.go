package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	coordv1 "coord/api/coord/v1"
	"coord/client/clienttest"
)

func TestKVRoundTrip(t *testing.T) {
	fc := clienttest.Start(t, 3)
	if r := mustSucceed(t, runOn(t, fc, "kv", "put", "greeting", "hello world")); r.stdout != "OK revision=1\n" {
		t.Fatalf("put printed %q", r.stdout)
	}
	if r := mustSucceed(t, runOn(t, fc, "kv", "get", "greeting")); r.stdout != "hello world\n" {
		t.Fatalf("get printed %q", r.stdout)
	}
	if r := mustSucceed(t, runOn(t, fc, "kv", "get", "greeting", "--stale")); r.stdout != "hello world\n" {
		t.Fatalf("stale get printed %q", r.stdout)
	}
	if r := mustSucceed(t, runOn(t, fc, "kv", "del", "greeting")); r.stdout != "deleted \"greeting\"\n" {
		t.Fatalf("del printed %q", r.stdout)
	}
	if r := mustSucceed(t, runOn(t, fc, "kv", "del", "greeting")); r.stdout != "key \"greeting\" not found; nothing deleted\n" {
		t.Fatalf("second del printed %q", r.stdout)
	}
	r := runOn(t, fc, "kv", "get", "greeting")
	if msg := mustFail(t, r, exitError); msg != `key "greeting" not found` || r.stdout != "" {
		t.Fatalf("get of a deleted key: message %q, stdout %q", msg, r.stdout)
	}
}

func TestKVGetJSON(t *testing.T) {
	fc := clienttest.Start(t, 1)
	mustSucceed(t, runOn(t, fc, "kv", "put", "k", "v"))
	first := mustSucceed(t, runOn(t, fc, "-o", "json", "kv", "get", "k"))
	again := mustSucceed(t, runOn(t, fc, "-o", "json", "kv", "get", "k"))
	if first.stdout != again.stdout {
		t.Fatalf("JSON output not stable:\n%s\n%s", first.stdout, again.stdout)
	}
	var got struct {
		Found bool `json:"found"`
		Kv    struct {
			Key         string  `json:"key"`
			Value       string  `json:"value"`
			ModRevision string  `json:"mod_revision"`
			ExpireTime  *string `json:"expire_time"`
		} `json:"kv"`
		AppliedIndex string `json:"applied_index"`
	}
	if err := json.Unmarshal([]byte(first.stdout), &got); err != nil {
		t.Fatalf("get -o json printed invalid JSON %q: %v", first.stdout, err)
	}
	if !got.Found || got.Kv.Key != "k" || got.Kv.Value != base64.StdEncoding.EncodeToString([]byte("v")) ||
		got.Kv.ModRevision != "1" || got.AppliedIndex != "1" || got.Kv.ExpireTime != nil {
		t.Fatalf("get -o json = %+v", got)
	}
	for _, field := range []string{`"expire_time": null`, `"create_revision": "1"`, `"version": "1"`} {
		if !strings.Contains(first.stdout, field) {
			t.Errorf("get -o json lacks %s:\n%s", field, first.stdout)
		}
	}

	// An absent key prints the response and exits 1.
	r := runOn(t, fc, "-o", "json", "kv", "get", "nope")
	if msg := mustFail(t, r, exitError); msg != `key "nope" not found` {
		t.Fatalf("message %q", msg)
	}
	if !strings.Contains(r.stdout, `"found": false`) || !strings.Contains(r.stdout, `"kv": null`) {
		t.Fatalf("absent key JSON %q", r.stdout)
	}
}

func TestKVConditionalWrites(t *testing.T) {
	fc := clienttest.Start(t, 1)
	mustSucceed(t, runOn(t, fc, "kv", "put", "k", "v1", "--expect-revision", "0"))

	msg := mustFail(t, runOn(t, fc, "kv", "put", "k", "v2", "--expect-revision", "7"), exitError)
	if msg != `put "k": revision did not match: expected 7, current revision is 1` {
		t.Fatalf("put mismatch message %q", msg)
	}
	msg = mustFail(t, runOn(t, fc, "kv", "put", "other", "v", "--expect-revision", "3"), exitError)
	if msg != `put "other": revision did not match: expected 3, the key does not exist` {
		t.Fatalf("put mismatch on absent key: %q", msg)
	}
	msg = mustFail(t, runOn(t, fc, "kv", "del", "k", "--expect-revision", "9"), exitError)
	if msg != `delete "k": revision did not match: expected 9, current revision is 1` {
		t.Fatalf("delete mismatch message %q", msg)
	}
	if v, ok := fc.Value("k"); !ok || string(v) != "v1" {
		t.Fatalf("value after failed conditional writes = %q, %v", v, ok)
	}
	r := runOn(t, fc, "-o", "json", "kv", "put", "k", "v3", "--expect-revision", "2")
	mustFail(t, r, exitError)
	if !strings.Contains(r.stdout, `"succeeded": false`) {
		t.Fatalf("mismatched put -o json printed %q", r.stdout)
	}
	mustSucceed(t, runOn(t, fc, "kv", "put", "k", "v4", "--expect-revision", "1"))
}

func TestKVPutSendsTTL(t *testing.T) {
	fc := clienttest.Start(t, 1)
	mustSucceed(t, runOn(t, fc, "kv", "put", "k", "v", "--ttl", "30s"))
	mustSucceed(t, runOn(t, fc, "kv", "put", "k2", "v"))
	puts := fc.Calls("Put")
	if ttl := puts[0].Request.(*coordv1.PutRequest).GetTtl().AsDuration(); ttl != 30*time.Second {
		t.Fatalf("ttl sent as %v", ttl)
	}
	if ttl := puts[1].Request.(*coordv1.PutRequest).GetTtl(); ttl != nil {
		t.Fatalf("put without --ttl sent ttl %v", ttl)
	}
}

func TestServerErrorIsOneLine(t *testing.T) {
	fc := clienttest.Start(t, 1)
	fc.Nodes[0].SetHook(func(_ context.Context, call clienttest.Call) (any, error) {
		if call.Method == "Put" {
			return nil, status.Error(codes.InvalidArgument, "key: must be printable\nASCII")
		}
		return nil, nil
	})
	msg := mustFail(t, runOn(t, fc, "kv", "put", "k\x01", "v"), exitError)
	if !strings.Contains(msg, "InvalidArgument") || !strings.Contains(msg, "must be printable ASCII") {
		t.Fatalf("message %q", msg)
	}
	if n := len(fc.Calls("Put")); n != 1 {
		t.Fatalf("%d Put calls for an invalid argument, want 1", n)
	}
}

func TestTimeoutBoundsTheCommand(t *testing.T) {
	fc := clienttest.Start(t, 3)
	fc.SetLeader("")
	start := time.Now()
	msg := mustFail(t, runOn(t, fc, "--timeout", "300ms", "kv", "put", "k", "v"), exitError)
	if elapsed := time.Since(start); elapsed > 800*time.Millisecond {
		t.Fatalf("command took %v with --timeout 300ms", elapsed)
	}
	if !strings.Contains(msg, "deadline exceeded") || !strings.Contains(msg, "NO_LEADER") {
		t.Fatalf("message %q", msg)
	}
}
