package health_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"coord/health"
)

type fakeNode struct{ ready atomic.Bool }

func (f *fakeNode) Ready() (bool, string) {
	if f.ready.Load() {
		return true, ""
	}
	return false, "no known leader"
}

func get(t *testing.T, srv *httptest.Server, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHTTPEndpoints(t *testing.T) {
	n := &fakeNode{}
	m := health.NewMetrics(func() health.RaftStats {
		return health.RaftStats{Role: "leader", Term: 7, CommitIndex: 42, AppliedIndex: 41, Ready: n.ready.Load()}
	})
	m.ApplyObserved(3*time.Millisecond, true)
	m.BatchApplied(16, time.Millisecond)
	m.SnapshotPersisted(1024, time.Second)
	srv := httptest.NewServer(health.Handler(n, m.Registry))
	defer srv.Close()

	if code, _ := get(t, srv, "/healthz"); code != 200 {
		t.Fatalf("/healthz = %d", code)
	}
	if code, body := get(t, srv, "/readyz"); code != 503 || !strings.Contains(body, "no known leader") {
		t.Fatalf("/readyz while not ready = %d %q", code, body)
	}
	n.ready.Store(true)
	if code, _ := get(t, srv, "/readyz"); code != 200 {
		t.Fatalf("/readyz when ready = %d", code)
	}
	code, body := get(t, srv, "/metrics")
	for _, want := range []string{`coord_raft_state{role="leader"} 1`, "coord_raft_term 7", "coord_raft_commit_index 42",
		"coord_apply_seconds_count", "coord_fsm_batch_entries_sum 16", "coord_snapshot_persist_seconds_count 1", "coord_ready 1"} {
		if code != 200 || !strings.Contains(body, want) {
			t.Fatalf("/metrics lacks %q", want)
		}
	}
	if code, _ := get(t, srv, "/debug/pprof/"); code != 200 {
		t.Fatalf("/debug/pprof/ = %d", code)
	}
}

func TestGRPCHealthFollowsReadiness(t *testing.T) {
	n := &fakeNode{}
	c := health.NewChecker(n, "coord.v1.KVService")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx, 5*time.Millisecond); close(done) }()
	status := func(svc string) healthpb.HealthCheckResponse_ServingStatus {
		r, err := c.GRPC().Check(context.Background(), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil {
			return healthpb.HealthCheckResponse_UNKNOWN
		}
		return r.Status
	}
	waitFor := func(want healthpb.HealthCheckResponse_ServingStatus) {
		deadline := time.Now().Add(2 * time.Second)
		for status("coord.v1.KVService") != want || status("") != want {
			if time.Now().After(deadline) {
				t.Fatalf("health never became %v", want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitFor(healthpb.HealthCheckResponse_NOT_SERVING)
	n.ready.Store(true)
	waitFor(healthpb.HealthCheckResponse_SERVING)
	cancel()
	<-done
}
