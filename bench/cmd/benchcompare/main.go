// Command benchcompare runs the same workloads against a coord cluster and
// an etcd cluster, one system after the other for each row, and prints one
// table with both systems and the coord/etcd ratios. bench/compare.sh
// starts both clusters and calls it (`make bench-compare`).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"coord/client"
	"coord/internal/loadgen"
)

// options are the command line.
type options struct {
	coordEndpoints, etcdEndpoints []string
	clients                       []int
	waiters                       int
	duration, warmup              time.Duration
	conns                         int
	valueSize, keys               int
	only, system                  string
	jsonOut, docOut, command      string
	cpuProfile                    string
	etcdAll                       bool
	repeat                        int
	dataDir                       string
}

func parseOptions(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("benchcompare", flag.ContinueOnError)
	coordEps := fs.String("coord-endpoints", "127.0.0.1:17001,127.0.0.1:17002,127.0.0.1:17003", "coord gRPC endpoints")
	etcdEps := fs.String("etcd-endpoints", "127.0.0.1:18001,127.0.0.1:18002,127.0.0.1:18003", "etcd client endpoints")
	clients := fs.String("clients", "1,16,64,256", "client counts, one row each")
	fs.IntVar(&o.waiters, "waiters", 64, "waiters on the contended lock")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "measured time per system and row")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "warm-up per system and row")
	fs.IntVar(&o.conns, "conns", 1, "client instances per system (shared by the workers)")
	fs.IntVar(&o.valueSize, "value-size", 256, "value size of puts, appends and reads")
	fs.IntVar(&o.keys, "keys", 1000, "key space of puts and reads")
	fs.StringVar(&o.only, "only", "", "comma-separated workloads to run (put,append,lock,lock-contended,read; default all)")
	fs.IntVar(&o.repeat, "repeat", 1, "measure each row this many times, alternating the systems, and report each system's median run")
	fs.BoolVar(&o.etcdAll, "etcd-all-endpoints", false, "let the etcd client spread requests over every member (default: send them to the leader, as coord's client does)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the benchmark client to this file")
	fs.StringVar(&o.system, "system", "both", "measure only one system (etcd or coord; for profiling)")
	fs.StringVar(&o.jsonOut, "json", "", "also write every result as JSON to this file")
	fs.StringVar(&o.docOut, "doc", "", "write the table, machine and commands into this Markdown file, between the bench-compare markers")
	fs.StringVar(&o.command, "command", "", "the command line to record in --doc")
	fs.StringVar(&o.dataDir, "data-dir", os.TempDir(), "a directory on the clusters' disk, for the fsync measurement in the machine description")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.repeat < 1 {
		return nil, fmt.Errorf("--repeat: %d, want at least 1", o.repeat)
	}
	o.coordEndpoints = strings.Split(*coordEps, ",")
	o.etcdEndpoints = strings.Split(*etcdEps, ",")
	for _, s := range strings.Split(*clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--clients: %q is not a positive number", s)
		}
		o.clients = append(o.clients, n)
	}
	return o, nil
}

func main() {
	o, err := parseOptions(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchcompare: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "benchcompare: %v\n", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(ctx, o, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "benchcompare: %v\n", err)
		stop()
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	pools, err := connect(ctx, o)
	if err != nil {
		return err
	}
	defer pools.close()
	started := time.Now()
	var rows []row
	for _, spec := range plan(o) {
		fmt.Fprintf(stderr, "%s, %d clients: ", spec.title, spec.clients)
		r, err := runRow(ctx, o, pools, spec)
		if err != nil {
			return fmt.Errorf("%s with %d clients: %w", spec.title, spec.clients, err)
		}
		fmt.Fprintf(stderr, "etcd %.0f ops/s, coord %.0f ops/s\n", r.etcd.OpsPerSec, r.coord.OpsPerSec)
		rows = append(rows, r)
	}
	fmt.Fprintf(stderr, "done in %s\n", time.Since(started).Round(time.Second))
	if _, err := io.WriteString(stdout, textTable(rows)); err != nil {
		return err
	}
	if o.jsonOut != "" {
		if err := writeJSON(o.jsonOut, rows); err != nil {
			return err
		}
	}
	if o.docOut != "" {
		return writeDoc(o, rows)
	}
	return nil
}

// pools holds the clients of both systems for the whole run.
type pools struct {
	coord loadgen.Pool
	etcd  etcdPool
}

func connect(ctx context.Context, o *options) (*pools, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cp, err := loadgen.NewPool(cctx, o.conns, client.Config{Endpoints: o.coordEndpoints})
	if err != nil {
		return nil, fmt.Errorf("coord: %w", err)
	}
	eps := o.etcdEndpoints
	if !o.etcdAll {
		if eps, err = etcdLeader(cctx, o.etcdEndpoints); err != nil {
			cp.Close()
			return nil, fmt.Errorf("etcd: %w", err)
		}
	}
	ep, err := newEtcdPool(o.conns, eps)
	if err != nil {
		cp.Close()
		return nil, fmt.Errorf("etcd: %w", err)
	}
	if _, err := ep[0].Get(cctx, "bench/ping"); err != nil {
		cp.Close()
		ep.close()
		return nil, fmt.Errorf("etcd: %w", err)
	}
	return &pools{coord: cp, etcd: ep}, nil
}

func (p *pools) close() {
	p.coord.Close()
	p.etcd.close()
}

func writeJSON(path string, rows []row) error {
	type out struct {
		Title   string         `json:"workload"`
		Clients int            `json:"clients"`
		Etcd    loadgen.Report `json:"etcd"`
		Coord   loadgen.Report `json:"coord"`
	}
	var all []out
	for _, r := range rows {
		all = append(all, out{Title: r.spec.title, Clients: r.spec.clients, Etcd: r.etcd, Coord: r.coord})
	}
	b, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
