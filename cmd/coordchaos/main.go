// Command coordchaos runs coord's chaos and linearizability suite against a
// real cluster: it starts 3 or 5 coordd processes on loopback, drives
// concurrent client traffic, kills, pauses and partitions nodes on a seeded
// schedule, and checks every recorded history (porcupine) and the cluster's
// invariants. It prints a short summary and writes report.json.
//
//	coordchaos --seed 7 --nodes 3 --duration 2m --faults all --out chaos-results/run
//	coordchaos --soak 30m --nodes 3,5 --duration 3m --out chaos-results/soak
//
// Exit status: 0 when every run passed, 1 when a run found an anomaly, did
// not converge, was invalid (a fault did not take effect) or inconclusive,
// 2 for bad flags, 3 when a run could not be carried out.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"coord/chaos"
)

type flags struct {
	seed          uint64
	nodes         []int
	duration      time.Duration
	faults        []chaos.FaultKind
	workloads     []string
	out           string
	coordd        string
	tags          string
	keep          bool
	soak          time.Duration
	recoveryBound time.Duration
	checkTimeout  time.Duration
	quiet         bool
}

func parseFlags(args []string, stderr io.Writer) (*flags, error) {
	f := &flags{}
	fs := flag.NewFlagSet("coordchaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Uint64Var(&f.seed, "seed", 0, "seed of the run (0: pick one and print it); a soak uses seed, seed+1, ...")
	nodes := fs.String("nodes", "3", "cluster size: 3 or 5, or a list (3,5) that a soak alternates")
	fs.DurationVar(&f.duration, "duration", 2*time.Minute, "how long each run injects faults under traffic")
	faults := fs.String("faults", "all", "faults to inject: all, none, or a list of "+strings.Join(faultNames(), ","))
	workloads := fs.String("workloads", "kv,lock,log", "workloads to drive: kv, lock, log")
	fs.StringVar(&f.out, "out", "chaos-results/run", "output directory (report.json, summary.txt; history, logs and porcupine HTML when a run fails)")
	fs.StringVar(&f.coordd, "coordd", "", "coordd binary to run (default: build ./cmd/coordd once into a temporary directory)")
	fs.StringVar(&f.tags, "coordd-tags", "", "build tags for coordd (e.g. chaosbug_staleread for a negative control)")
	fs.BoolVar(&f.keep, "keep", false, "keep history, logs and data of passing runs too")
	fs.DurationVar(&f.soak, "soak", 0, "run seeded runs back to back until this much time has passed")
	fs.DurationVar(&f.recoveryBound, "recovery-bound", chaos.DefaultRecoveryBound, "a write must succeed this soon after each fault heals")
	fs.DurationVar(&f.checkTimeout, "check-timeout", chaos.DefaultCheckTimeout, "time limit of each porcupine check")
	fs.BoolVar(&f.quiet, "quiet", false, "print only the summaries")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, s := range strings.Split(*nodes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || (n != 3 && n != 5) {
			return nil, fmt.Errorf("--nodes: %q is not 3 or 5", s)
		}
		f.nodes = append(f.nodes, n)
	}
	var err error
	if f.faults, err = chaos.ParseFaults(*faults); err != nil {
		return nil, fmt.Errorf("--faults: %w", err)
	}
	for _, w := range strings.Split(*workloads, ",") {
		if w = strings.TrimSpace(w); w != "" {
			f.workloads = append(f.workloads, w)
		}
	}
	if f.duration <= 0 {
		return nil, errors.New("--duration: must be positive")
	}
	if f.seed == 0 {
		f.seed = rand.Uint64N(1 << 31)
	}
	return f, nil
}

func faultNames() []string {
	var out []string
	for _, k := range chaos.AllFaults {
		out = append(out, string(k))
	}
	return out
}

func main() {
	f, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "coordchaos: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	code, err := run(ctx, f, os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "coordchaos: %v\n", err)
	}
	os.Exit(code)
}

func run(ctx context.Context, f *flags, stdout, stderr io.Writer) (int, error) {
	logf := func(format string, args ...any) {
		if !f.quiet {
			fmt.Fprintf(stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
		}
	}
	bin := f.coordd
	if bin == "" {
		root, err := chaos.ModuleRoot(ctx)
		if err != nil {
			return 3, err
		}
		dir, err := os.MkdirTemp("", "coordchaos-bin-")
		if err != nil {
			return 3, err
		}
		defer os.RemoveAll(dir)
		logf("building coordd (tags %q)", f.tags)
		if bin, err = chaos.BuildCoordd(ctx, root, dir, f.tags, false); err != nil {
			return 3, err
		}
	}
	opts := func(i int) chaos.Options {
		out := f.out
		if f.soak > 0 {
			out = filepath.Join(f.out, fmt.Sprintf("run-%03d-seed-%d", i, f.seed+uint64(i)))
		}
		return chaos.Options{Seed: f.seed + uint64(i), Nodes: f.nodes[i%len(f.nodes)], Duration: f.duration,
			Faults: f.faults, Workloads: f.workloads, OutDir: out, Coordd: bin, CoorddTags: f.tags,
			KeepArtifacts: f.keep, RecoveryBound: f.recoveryBound, CheckTimeout: f.checkTimeout, Logf: logf}
	}
	if f.soak <= 0 {
		rep, err := chaos.Run(ctx, opts(0))
		if rep != nil {
			fmt.Fprint(stdout, rep.Summary())
		}
		if err != nil {
			return 3, err
		}
		if !rep.Passed {
			return 1, nil
		}
		return 0, nil
	}
	return soak(ctx, f, opts, stdout, logf)
}

// soak runs seeded runs back to back until f.soak has passed and writes
// soak.json with the totals.
func soak(ctx context.Context, f *flags, opts func(int) chaos.Options, stdout io.Writer, logf func(string, ...any)) (int, error) {
	s := chaos.NewSoak()
	deadline := time.Now().Add(f.soak)
	code := 0
	for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
		o := opts(i)
		logf("soak run %d: seed %d, %d nodes", i, o.Seed, o.Nodes)
		rep, err := chaos.Run(ctx, o)
		if rep != nil {
			fmt.Fprint(stdout, rep.Summary())
			s.Add(rep)
			if !rep.Passed {
				code = 1
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			s.Errors = append(s.Errors, fmt.Sprintf("run %d (seed %d): %v", i, o.Seed, err))
			code = max(code, 1)
		}
		if err := s.Write(f.out); err != nil {
			return 3, err
		}
	}
	fmt.Fprint(stdout, s.Summary())
	if len(s.Runs) == 0 {
		return 3, errors.New("no run completed")
	}
	return code, nil
}
