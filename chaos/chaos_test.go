package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// The chaos tests start real coordd processes. Settings from the
// environment:
//
//	COORD_CHAOS_SEED      seed of the first run (default: random, logged)
//	COORD_CHAOS_DURATION  fault-injection time of the 3-node run (default 75s;
//	                      the 5-node run gets two thirds of it)
//	COORD_CHAOS_OUT       where reports (and the artefacts of failed runs) go
//	                      (default: a temporary directory, kept if a run fails)
//	COORD_CHAOS_COORDD    a prebuilt coordd to test instead of building one
//	COORD_CHAOS_RACE=1    run TestChaos under the race detector too (by
//	                      default it is skipped there: `make test` runs every
//	                      package with -race and `make chaos` runs this test
//	                      without, so that the runner's timing is not skewed)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	binDir    string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// coorddBinary builds coordd (once per test binary, no build tags) unless
// COORD_CHAOS_COORDD names one.
func coorddBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("COORD_CHAOS_COORDD"); bin != "" {
		return bin
	}
	buildOnce.Do(func() {
		builtBin, buildErr = buildTagged(t.Context(), "")
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

func buildTagged(ctx context.Context, tags string) (string, error) {
	root, err := ModuleRoot(ctx)
	if err != nil {
		return "", err
	}
	if binDir == "" {
		if binDir, err = os.MkdirTemp("", "coordchaos-test-bin-"); err != nil {
			return "", err
		}
	}
	dir := filepath.Join(binDir, "build-"+tags)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return BuildCoordd(ctx, root, dir, tags, false)
}

func envDuration(t *testing.T, key string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return d
}

func envSeed(t *testing.T) uint64 {
	t.Helper()
	if v := os.Getenv("COORD_CHAOS_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("COORD_CHAOS_SEED: %v", err)
		}
		return s
	}
	return rand.Uint64N(1 << 31)
}

// outDir returns where a run writes. A temporary directory is removed when
// the test passes and kept, with its path logged, when it fails.
func outDir(t *testing.T, name string) string {
	t.Helper()
	if base := os.Getenv("COORD_CHAOS_OUT"); base != "" {
		return filepath.Join(base, name)
	}
	dir, err := os.MkdirTemp("", "coordchaos-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("artefacts kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	return dir
}

// TestChaos runs the suite against the current code: a 3-node and a 5-node
// cluster, every fault kind, every workload. It is what `make chaos` runs.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real coordd processes for minutes; skipped with -short")
	}
	if raceEnabled && os.Getenv("COORD_CHAOS_RACE") != "1" {
		t.Skip("skipped under -race (make chaos runs it); set COORD_CHAOS_RACE=1 to run it here")
	}
	bin := coorddBinary(t)
	seed := envSeed(t)
	d := envDuration(t, "COORD_CHAOS_DURATION", 75*time.Second)
	for _, tc := range []struct {
		nodes    int
		duration time.Duration
	}{{3, d}, {5, d * 2 / 3}} {
		t.Run(fmt.Sprintf("nodes=%d", tc.nodes), func(t *testing.T) {
			o := Options{Seed: seed + uint64(tc.nodes), Nodes: tc.nodes, Duration: tc.duration, Faults: AllFaults,
				Workloads: []string{"kv", "lock", "log"}, OutDir: outDir(t, fmt.Sprintf("nodes%d", tc.nodes)), Coordd: bin, Logf: t.Logf}
			rep, err := Run(t.Context(), o)
			if rep != nil {
				t.Log("\n" + rep.Summary())
			}
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Passed {
				t.Fatalf("%s; replay: %s", rep.Verdict(), rep.Replay)
			}
			for _, w := range o.Workloads {
				if rep.Ops[w].OK == 0 {
					t.Errorf("workload %s completed no operation", w)
				}
			}
		})
	}
}
