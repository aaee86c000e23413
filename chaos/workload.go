package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"coord/client"
)

// workload drives one kind of traffic and checks its part of the history.
type workload interface {
	// name is the workload's name in flags and reports.
	name() string
	// setup connects the workload's clients.
	setup(ctx context.Context) error
	// run drives traffic until ctx ends.
	run(ctx context.Context)
	// final records the reads that settle the workload's outcome once the
	// cluster has healed and traffic has stopped.
	final(ctx context.Context) error
	// check examines the workload's operations.
	check(ops []*Op, cc checkConfig) workloadResult
	// close releases the clients.
	close()
}

// runEnv is what every workload shares within a run.
type runEnv struct {
	cl   *Cluster
	hist *history
	seed uint64
	logf func(format string, args ...any)
}

// newClient connects a client library instance to the cluster. Each
// instance has its own session (client id), so every write it sends
// carries a request id unique in the run.
func (e *runEnv) newClient(ctx context.Context) (*client.Client, error) {
	return client.New(ctx, client.Config{
		Endpoints:      e.cl.Endpoints(),
		DialTimeout:    5 * time.Second,
		AttemptTimeout: 1500 * time.Millisecond,
		MaxBackoff:     300 * time.Millisecond,
	})
}

// rng returns a generator for stream k of the run's seed.
func (e *runEnv) rng(k uint64) *rand.Rand { return rand.New(rand.NewPCG(e.seed, k)) }

// sleepCtx waits d or until ctx ends; it reports whether d elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// workloadResult is one workload's check.
type workloadResult struct {
	Stats        opStats
	Anomalies    []Anomaly
	Inconclusive []string
	Notes        []string
	CheckTime    time.Duration
}

// Anomaly is a violated property. Ops names the operations involved (ids in
// history.jsonl) and File an artefact that shows it (porcupine's HTML).
type Anomaly struct {
	Kind     string `json:"kind"`
	Workload string `json:"workload,omitempty"`
	Detail   string `json:"detail"`
	Ops      []int  `json:"ops,omitempty"`
	File     string `json:"file,omitempty"`
}

// checkConfig is what checks need besides the history.
type checkConfig struct {
	outDir  string
	timeout time.Duration // per porcupine check
}

func anomalyf(kind, wl string, ops []int, format string, args ...any) Anomaly {
	return Anomaly{Kind: kind, Workload: wl, Ops: ops, Detail: fmt.Sprintf(format, args...)}
}

func newWorkload(name string, env *runEnv) (workload, error) {
	switch name {
	case "kv":
		return newKVWorkload(env), nil
	case "lock":
		return newLockWorkload(env), nil
	case "log":
		return newLogWorkload(env), nil
	}
	return nil, fmt.Errorf("unknown workload %q (want kv, lock or log)", name)
}
