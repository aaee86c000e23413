package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"

	"coord/client"
	"coord/internal/loadgen"
)

// benchFlags are the flags shared by every bench workload.
type benchFlags struct {
	clients, conns   int
	duration, warmup time.Duration
	rate             float64
	progress         bool
	cpuProfile       string
}

func (a *app) benchCmd() *cobra.Command {
	f := &benchFlags{}
	cmd := groupCmd("bench", "Measure throughput and latency of a workload",
		`Run a workload against the cluster and report throughput and latency.

--clients workers run the workload concurrently, sharing --conns client
instances (each with one connection per node). In a closed loop (the
default, --rate 0) a worker starts its next operation as soon as the
previous one ends. With --rate R, operations are scheduled at R per second
in total and each latency is measured from the scheduled start, so a stall
is charged to every operation it delays (open loop; --clients then bounds
the operations in flight). Operations of the --warmup period are not
counted. --timeout bounds connecting and each single operation; the run
itself lasts --warmup plus --duration.

A progress line is written to stderr each second when stderr is a terminal
or with --progress. The report gives ops/s, latency percentiles (p50, p90,
p99, p99.9, max, from a histogram with under 1% relative error) and failed
operations by gRPC code. Keys and lock names are prefixed with bench/ and a
random run id, so runs do not interfere.

Table output: one "name  value" line per figure.
JSON: {"workload", "params", "clients", "conns", "rate", "duration_s",
"warmup_s", "ops", "ops_per_sec", "errors": {CODE: N},
"latency_ms": {"mean", "p50", "p90", "p99", "p99_9", "max"}, "extra"}

Exit status 1 when no operation succeeded or a check failed (FIFO order of
a contended lock's grants).`)
	p := cmd.PersistentFlags()
	p.IntVar(&f.clients, "clients", 16, "concurrent workers")
	p.IntVar(&f.conns, "conns", 1, "client instances (connections per node) shared by the workers")
	p.DurationVar(&f.duration, "duration", 10*time.Second, "measured time")
	p.DurationVar(&f.warmup, "warmup", time.Second, "time before measuring, not counted")
	p.Float64Var(&f.rate, "rate", 0, "open loop: total operations per second (0: closed loop)")
	p.BoolVar(&f.progress, "progress", false, "print progress to stderr even when it is not a terminal")
	p.StringVar(&f.cpuProfile, "cpu-profile", "", "write a CPU profile of this load generator during the run to `FILE` (for go tool pprof)")
	cmd.AddCommand(a.benchKVPutCmd(f), a.benchReadCmd(f), a.benchLockCmd(f), a.benchLogAppendCmd(f))
	return cmd
}

func (f *benchFlags) check() error {
	switch {
	case f.clients < 1:
		return usagef("invalid --clients %d: want at least 1", f.clients)
	case f.conns < 1 || f.conns > f.clients:
		return usagef("invalid --conns %d: want 1 to --clients (%d)", f.conns, f.clients)
	case f.duration <= 0:
		return usagef("invalid --duration %v: must be positive", f.duration)
	case f.warmup < 0:
		return usagef("invalid --warmup %v: must not be negative", f.warmup)
	case f.rate < 0:
		return usagef("invalid --rate %v: must not be negative", f.rate)
	}
	return nil
}

func (a *app) benchKVPutCmd(f *benchFlags) *cobra.Command {
	var size, keys int
	cmd := &cobra.Command{
		Use:   "kv-put [--value-size 256] [--keys 1000]",
		Short: "Write keys (one Put per operation)",
		Long: `Each operation writes a value of --value-size bytes to a key picked at
random among --keys keys.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if size < 0 || size > 64<<10 || keys < 1 {
				return usagef("invalid --value-size %d or --keys %d: want 0 to 65536 bytes and at least one key", size, keys)
			}
			return a.runBench(cmd, f, "kv-put", map[string]any{"value_size": size, "keys": keys},
				func(pool loadgen.Pool, prefix string) loadgen.Workload {
					return &loadgen.KVPut{Pool: pool, Prefix: prefix, Keys: keys, ValueSize: size}
				})
		},
	}
	cmd.Flags().IntVar(&size, "value-size", 256, "value size in bytes")
	cmd.Flags().IntVar(&keys, "keys", 1000, "number of distinct keys")
	return cmd
}

func (a *app) benchReadCmd(f *benchFlags) *cobra.Command {
	var size, keys int
	var stale bool
	cmd := &cobra.Command{
		Use:   "read [--stale] [--keys 1000] [--value-size 256]",
		Short: "Read keys (one Get per operation)",
		Long: `Before the run, --keys keys of --value-size bytes are written; each
operation then reads one at random: linearizably on the leader (read-index,
no log write), or with --stale from the nearest node's local state.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if size < 0 || size > 64<<10 || keys < 1 {
				return usagef("invalid --value-size %d or --keys %d: want 0 to 65536 bytes and at least one key", size, keys)
			}
			params := map[string]any{"value_size": size, "keys": keys, "stale": stale}
			return a.runBench(cmd, f, "read", params, func(pool loadgen.Pool, prefix string) loadgen.Workload {
				return &loadgen.Read{Pool: pool, Prefix: prefix, Keys: keys, ValueSize: size, Stale: stale}
			})
		},
	}
	cmd.Flags().IntVar(&size, "value-size", 256, "value size in bytes")
	cmd.Flags().IntVar(&keys, "keys", 1000, "number of distinct keys")
	cmd.Flags().BoolVar(&stale, "stale", false, "read the nearest node's local state instead of reading linearizably")
	return cmd
}

func (a *app) benchLockCmd(f *benchFlags) *cobra.Command {
	var contended bool
	cmd := &cobra.Command{
		Use:   "lock [--contended]",
		Short: "Acquire and release locks (one acquire and release per operation)",
		Long: `Every worker holds a lease for the run (renewed in the background) and
each operation acquires a lock under it and releases it.

By default each worker uses a lock of its own, so nothing waits. With
--contended every worker uses one hot lock: --clients waiters queue in its
FIFO queue, and every operation is one grant, so ops/s is handoffs per
second. The grants are followed through a lock watch and checked to go to
the head of the queue; the report's "extra" section gives the grants
checked and any violation (which makes coordctl exit 1).`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runBench(cmd, f, "lock", map[string]any{"contended": contended},
				func(pool loadgen.Pool, prefix string) loadgen.Workload {
					return &loadgen.Lock{Pool: pool, Prefix: prefix, Contended: contended}
				})
		},
	}
	cmd.Flags().BoolVar(&contended, "contended", false, "all workers use one lock (FIFO handoffs)")
	return cmd
}

// runBench connects, sets the workload up, runs it and prints the report.
func (a *app) runBench(cmd *cobra.Command, f *benchFlags, name string, params map[string]any, mk func(loadgen.Pool, string) loadgen.Workload) error {
	if err := f.check(); err != nil {
		return err
	}
	eps, err := a.endpointList()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	cctx, cancel := context.WithTimeout(ctx, a.timeout)
	pool, err := loadgen.NewPool(cctx, f.conns, client.Config{Endpoints: eps, DialTimeout: a.timeout})
	cancel()
	if err != nil {
		return err
	}
	defer pool.Close()
	w := mk(pool, "bench/"+loadgen.RunID()+"/")
	if err := w.Setup(ctx, f.clients); err != nil {
		return fmt.Errorf("bench %s: setup: %w", name, err)
	}
	cfg := loadgen.Config{Clients: f.clients, Duration: f.duration, Warmup: f.warmup, Rate: f.rate, OpTimeout: a.timeout}
	if f.progress || isTerminal(a.stderr) {
		cfg.Progress = a.stderr
	}
	stopProfile, err := startCPUProfile(f.cpuProfile)
	if err != nil {
		_ = w.Close(ctx)
		return err
	}
	res, runErr := loadgen.Run(ctx, cfg, w.Op)
	if err := stopProfile(); err != nil && runErr == nil {
		runErr = err
	}
	cleanCtx, cancelClean := context.WithTimeout(context.Background(), a.timeout)
	closeErr := w.Close(cleanCtx)
	cancelClean()
	if runErr != nil {
		return runErr
	}
	rep := loadgen.NewReport(name, params, cfg, f.conns, res, w.Extra())
	if err := a.printBench(rep); err != nil {
		return err
	}
	return benchVerdict(rep, closeErr)
}

// benchVerdict fails a run in which nothing succeeded or a check failed.
func benchVerdict(rep loadgen.Report, closeErr error) error {
	if v, _ := rep.Extra["fifo_violations"].(uint64); v > 0 {
		return fmt.Errorf("bench %s: %d grants out of FIFO order (first: %v)", rep.Workload, v, rep.Extra["first_violation"])
	}
	if rep.Ops == 0 {
		return fmt.Errorf("bench %s: no operation succeeded (errors: %v)", rep.Workload, rep.Errors)
	}
	if closeErr != nil {
		return fmt.Errorf("bench %s: cleanup: %w", rep.Workload, closeErr)
	}
	return nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// startCPUProfile starts profiling this process into path ("": no
// profile) and returns the function that stops it and closes the file.
func startCPUProfile(path string) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	out, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	if err := pprof.StartCPUProfile(out); err != nil {
		_ = out.Close()
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := out.Close(); err != nil {
			return fmt.Errorf("--cpu-profile: %w", err)
		}
		return nil
	}, nil
}
