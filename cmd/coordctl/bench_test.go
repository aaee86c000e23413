package main

import (
	"encoding/json"
	"strings"
	"testing"

	"coord/internal/loadgen"
	"coord/internal/testcluster"
)

// TestBenchWorkloads runs every workload for a second against an
// in-process cluster and checks that operations succeeded. Throughput is
// not asserted: benchmarks measure, tests check function.
func TestBenchWorkloads(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Options{})
	eps := strings.Join(c.Endpoints(), ",")
	cases := map[string][]string{
		"kv-put":         {"kv-put", "--value-size", "64", "--keys", "10"},
		"read":           {"read", "--keys", "10"},
		"read stale":     {"read", "--keys", "10", "--stale"},
		"lock":           {"lock"},
		"lock contended": {"lock", "--contended"},
		"open loop":      {"kv-put", "--rate", "200"},
		"log-append":     {"log-append", "--events", "3", "--value-size", "100"},
		"shared streams": {"log-append", "--streams", "2"},
		"subscribers":    {"log-append", "--subscribers", "2", "--events", "2"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			c.Leader() // a settled cluster, so that the second measured is not an election
			argv := append([]string{"--endpoints", eps, "-o", "json", "bench"}, args...)
			argv = append(argv, "--clients", "4", "--conns", "2", "--duration", "1s", "--warmup", "200ms")
			r := mustSucceed(t, runCLI(t, nil, argv...))
			var rep loadgen.Report
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
				t.Fatalf("output is not a report: %v\n%s", err, r.stdout)
			}
			if rep.Ops == 0 || rep.OpsPerSec <= 0 {
				t.Fatalf("no operation succeeded: %+v", rep)
			}
			if len(rep.Errors) > 0 {
				t.Fatalf("errors: %v (%v)", rep.Errors, rep.ErrorSamples)
			}
			if rep.LatencyMS.P50 <= 0 || rep.LatencyMS.P50 > rep.LatencyMS.P99 || rep.LatencyMS.P99 > rep.LatencyMS.Max {
				t.Fatalf("latency percentiles out of order: %+v", rep.LatencyMS)
			}
			if name == "subscribers" {
				appended, _ := rep.Extra["events_appended"].(float64)
				delivered, _ := rep.Extra["events_delivered"].(float64)
				if appended == 0 || delivered < 2*appended {
					t.Fatalf("2 subscribers received %v events of %v appended: %v", delivered, appended, rep.Extra)
				}
				lag, _ := rep.Extra["subscription_lag_ms"].(map[string]any)
				if p99, _ := lag["p99"].(float64); p99 <= 0 {
					t.Fatalf("no subscription lag measured: %v", rep.Extra)
				}
			}
			if name == "lock contended" {
				if n, _ := rep.Extra["fifo_grants_checked"].(float64); n == 0 {
					t.Fatalf("no grant was checked for FIFO order: %v", rep.Extra)
				}
				if v, _ := rep.Extra["fifo_violations"].(float64); v != 0 {
					t.Fatalf("grants out of FIFO order: %v", rep.Extra)
				}
			}
		})
	}
}

func TestBenchTableOutput(t *testing.T) {
	c := testcluster.New(t, 1, testcluster.Options{})
	r := mustSucceed(t, runCLI(t, nil, "--endpoints", c.Endpoints()[0], "bench", "kv-put",
		"--clients", "2", "--duration", "300ms", "--warmup", "0s"))
	for _, want := range []string{"ops/s", "p99.9", "errors", "kv-put"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("table output lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestBenchBadFlagsSendNothing(t *testing.T) {
	cases := map[string][]string{
		"no clients":          {"bench", "kv-put", "--clients", "0"},
		"more conns":          {"bench", "kv-put", "--clients", "2", "--conns", "3"},
		"zero duration":       {"bench", "read", "--duration", "0s"},
		"negative rate":       {"bench", "lock", "--rate", "-1"},
		"negative warmup":     {"bench", "lock", "--warmup", "-1s"},
		"huge value":          {"bench", "kv-put", "--value-size", "1000000"},
		"no events":           {"bench", "log-append", "--events", "0"},
		"unknown workload":    {"bench", "nope"},
		"positional argument": {"bench", "kv-put", "extra"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			// An endpoint nobody listens on: nothing must be sent anyway.
			mustFail(t, runCLI(t, nil, append([]string{"--endpoints", "127.0.0.1:1"}, args...)...), exitUsage)
		})
	}
}
