package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	coordv1 "coord/api/coord/v1"
)

// Defaults of a run.
const (
	DefaultRecoveryBound = 20 * time.Second
	DefaultCheckTimeout  = 3 * time.Minute
	// Snapshot settings for runs with SnapshotInstall: small enough that a
	// follower cut off for a few seconds falls behind the leader's log.
	snapshotThreshold = 256
	trailingLogs      = 128
	convergeWait      = 90 * time.Second
	finalWait         = 60 * time.Second
	warmup            = 2 * time.Second
)

// Options configure a run.
type Options struct {
	// Seed makes the run replayable: the fault schedule (kinds, order,
	// targets as choices among the nodes in the named role, durations)
	// and every client's choice of operations derive from it.
	Seed uint64
	// Nodes is 3 or 5.
	Nodes int
	// Duration is how long faults are injected; traffic runs as long, and
	// the last fault is always healed, so a run lasts somewhat longer.
	Duration time.Duration
	// Faults are the kinds to inject, in a seeded order, round-robin.
	Faults []FaultKind
	// Workloads are among kv, lock and log.
	Workloads []string
	// OutDir receives report.json and summary.txt, and, when the run does
	// not pass (or KeepArtifacts), the history, the node logs and data, and
	// porcupine's visualisations.
	OutDir string
	// Coordd is a coordd binary to run; when empty, coordd is built from
	// the module containing the working directory with CoorddTags.
	Coordd string
	// CoorddTags are the build tags the binary was (or is to be) built
	// with; they appear in the replay command.
	CoorddTags string
	// KeepArtifacts keeps the history and logs of a passing run.
	KeepArtifacts bool
	// RecoveryBound is how soon after a fault heals a write must succeed.
	RecoveryBound time.Duration
	// CheckTimeout bounds each porcupine check.
	CheckTimeout time.Duration
	// Logf receives progress lines (nil: discarded).
	Logf func(format string, args ...any)
}

func (o *Options) setDefaults() error {
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.Nodes != 3 && o.Nodes != 5 {
		return fmt.Errorf("nodes: %d, want 3 or 5", o.Nodes)
	}
	if o.Duration <= 0 {
		return fmt.Errorf("duration: must be positive")
	}
	if len(o.Workloads) == 0 {
		o.Workloads = []string{"kv", "lock", "log"}
	}
	if o.RecoveryBound == 0 {
		o.RecoveryBound = DefaultRecoveryBound
	}
	if o.CheckTimeout == 0 {
		o.CheckTimeout = DefaultCheckTimeout
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.OutDir == "" {
		return fmt.Errorf("out: an output directory is required")
	}
	return nil
}

// ReplayCommand is the command line that replays a run.
func (o *Options) ReplayCommand() string {
	cmd := fmt.Sprintf("go run ./cmd/coordchaos --seed %d --nodes %d --duration %s --faults %s --workloads %s",
		o.Seed, o.Nodes, o.Duration, faultsArg(o.Faults), strings.Join(o.Workloads, ","))
	if o.CoorddTags != "" {
		cmd += " --coordd-tags " + o.CoorddTags
	}
	return cmd
}

func faultsArg(ks []FaultKind) string {
	if len(ks) == 0 {
		return "none"
	}
	return joinFaults(ks)
}

func hasFault(ks []FaultKind, k FaultKind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

// Run starts a cluster, drives the workloads while injecting faults, heals,
// checks the history and writes the report. An error means the run could
// not be carried out; what the run found is in the report.
//
// The steps: build coordd (unless given); start the cluster and the status
// monitor; connect the workloads and let them run; after a warm-up, inject
// faults until Duration has passed, healing and measuring recovery after
// each; heal everything; stop the traffic; make the final reads that
// resolve unknown outcomes; wait until every node reports the same applied
// index and state hash; stop the cluster; check the history; write the
// report, keeping the artefacts when the run did not pass.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, err
	}
	if o.Coordd == "" {
		bin, cleanup, err := buildTemp(ctx, o.CoorddTags)
		if err != nil {
			return nil, err
		}
		defer cleanup()
		o.Coordd = bin
	}
	rep := &Report{Seed: o.Seed, Nodes: o.Nodes, Duration: o.Duration.String(), Faults: o.Faults, Workloads: o.Workloads,
		CoorddTags: o.CoorddTags, Started: time.Now(), Replay: o.ReplayCommand(), OutDir: o.OutDir,
		RecoveryBoundMs: o.RecoveryBound.Milliseconds(), Ops: map[string]opStats{},
		FaultsInjected: map[FaultKind]int{}, FaultsEffective: map[FaultKind]int{}}
	r := &runner{o: o, rep: rep, start: time.Now()}
	err := r.run(ctx)
	rep.ElapsedMs = time.Since(r.start).Milliseconds()
	rep.finish()
	if werr := r.writeArtifacts(); werr != nil && err == nil {
		err = werr
	}
	return rep, err
}

// buildTemp builds coordd into a temporary directory.
func buildTemp(ctx context.Context, tags string) (string, func(), error) {
	root, err := ModuleRoot(ctx)
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "coordchaos-bin-")
	if err != nil {
		return "", nil, err
	}
	bin, err := BuildCoordd(ctx, root, dir, tags, false)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

// runner carries one run.
type runner struct {
	o     Options
	rep   *Report
	start time.Time
	hist  *history
	ops   []*Op
}

func (r *runner) clusterDir() string { return filepath.Join(r.o.OutDir, "cluster") }

func (r *runner) run(ctx context.Context) error {
	cl, trailing, err := r.startCluster(ctx)
	if err != nil {
		return err
	}
	defer cl.Stop()
	r.hist = newHistory(r.start)
	mon, err := newMonitor(cl, r.start)
	if err != nil {
		return err
	}
	defer mon.close()
	stopMon := runInBackground(ctx, mon.run)
	defer stopMon()
	env := &runEnv{cl: cl, hist: r.hist, seed: r.o.Seed, logf: r.o.Logf}
	wls, err := r.setupWorkloads(ctx, env)
	defer func() {
		for _, w := range wls {
			w.close()
		}
	}()
	if err != nil {
		return err
	}
	probe, err := env.newClient(ctx)
	if err != nil {
		return err
	}
	defer probe.Close()
	nem := &nemesis{cl: cl, mon: mon, probe: probe, start: r.start, trailing: trailing, bound: r.o.RecoveryBound, logf: r.o.Logf}
	if err := r.drive(ctx, wls, nem); err != nil {
		return err
	}
	r.settle(ctx, wls, mon)
	stopMon()
	for _, c := range cl.Crashes() {
		r.rep.Anomalies = append(r.rep.Anomalies, anomalyf("crash", "", nil, "%s", c))
	}
	cl.Stop()
	r.collect(nem, mon)
	r.check(wls)
	return nil
}

// startCluster starts every node and waits until all are ready. It returns
// the --trailing-logs the nodes run with.
func (r *runner) startCluster(ctx context.Context) (*Cluster, uint64, error) {
	o := r.o
	extra := []string{"--log-level", "info"}
	trailing := uint64(10240)
	if hasFault(o.Faults, SnapshotInstall) {
		extra = append(extra, "--snapshot-threshold", fmt.Sprint(snapshotThreshold),
			"--trailing-logs", fmt.Sprint(trailingLogs), "--snapshot-interval", "1s")
		trailing = trailingLogs
	}
	_ = os.RemoveAll(r.clusterDir())
	cl, err := newCluster(clusterConfig{bin: o.Coordd, nodes: o.Nodes, dir: r.clusterDir(), extra: extra, seed: o.Seed, logf: o.Logf})
	if err != nil {
		return nil, 0, err
	}
	o.Logf("starting %d nodes (ports %d-%d, data and logs in %s)", o.Nodes, cl.ports.base, cl.ports.base+BlockSize-1, r.clusterDir())
	for i := 1; i <= o.Nodes; i++ {
		if err := cl.StartNode(i); err != nil {
			cl.Stop()
			return nil, 0, err
		}
	}
	sctx, cancel := context.WithTimeout(ctx, readyWait)
	defer cancel()
	if err := cl.WaitReady(sctx); err != nil {
		cl.Stop()
		return nil, 0, fmt.Errorf("starting the cluster: %w", err)
	}
	return cl, trailing, nil
}

// runInBackground runs fn in a goroutine under a context of its own; the
// returned function cancels it and waits for it (later calls do nothing).
func runInBackground(ctx context.Context, fn func(context.Context)) func() {
	bctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); fn(bctx) }()
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }
}

// setupWorkloads creates and connects the workloads; those created are
// returned even on error, to be closed.
func (r *runner) setupWorkloads(ctx context.Context, env *runEnv) ([]workload, error) {
	var wls []workload
	for _, name := range r.o.Workloads {
		w, err := newWorkload(name, env)
		if err != nil {
			return wls, err
		}
		wls = append(wls, w)
		if err := w.setup(ctx); err != nil {
			return wls, fmt.Errorf("workload %s: %w", name, err)
		}
	}
	return wls, nil
}

// drive runs the traffic and, after a warm-up, the faults until Duration
// has passed; then it heals everything and stops the traffic.
func (r *runner) drive(ctx context.Context, wls []workload, nem *nemesis) error {
	o := r.o
	tctx, stopTraffic := context.WithCancel(ctx)
	defer stopTraffic()
	var wg sync.WaitGroup
	for _, w := range wls {
		wg.Add(1)
		go func() { defer wg.Done(); w.run(tctx) }()
	}
	o.Logf("traffic started (%s); faults: %s", strings.Join(o.Workloads, ","), faultsArg(o.Faults))
	stop, cancelStop := context.WithTimeout(ctx, o.Duration)
	defer cancelStop()
	if sleepCtx(stop, warmup) {
		nem.run(ctx, stop, newScheduler(o.Seed, o.Faults))
	}
	<-stop.Done()
	if err := nem.healAll(ctx); err != nil {
		o.Logf("healing at the end: %v", err)
	}
	stopTraffic()
	wg.Wait()
	return ctx.Err()
}

// settle makes the final reads and waits for the nodes to converge.
func (r *runner) settle(ctx context.Context, wls []workload, mon *monitor) {
	fctx, cancel := context.WithTimeout(ctx, finalWait)
	defer cancel()
	for _, w := range wls {
		if err := w.final(fctx); err != nil {
			r.rep.Anomalies = append(r.rep.Anomalies, anomalyf("unavailable-after-heal", w.name(), nil, "%v", err))
		}
	}
	r.converge(ctx, mon)
}

// converge waits until every node reports the same applied index and state
// hash. Equal indexes with different hashes are a divergence.
func (r *runner) converge(ctx context.Context, mon *monitor) {
	t0 := time.Now()
	wctx, cancel := context.WithTimeout(ctx, convergeWait)
	defer cancel()
	var last string
	var lastIdx []uint64
	for {
		idx, hashes, err := stateHashes(wctx, mon)
		if err == nil {
			lastIdx = idx
			same := true
			for i := range hashes {
				same = same && idx[i] == idx[0] && hashes[i] == hashes[0]
				if idx[i] == idx[0] && hashes[i] != hashes[0] {
					r.rep.Anomalies = append(r.rep.Anomalies, anomalyf("state-divergence", "", nil,
						"n1 and n%d are both at applied index %d with different state hashes %s and %s", i+1, idx[0], hashes[0], hashes[i]))
					return
				}
			}
			if same {
				r.rep.Converged, r.rep.ConvergedIndex, r.rep.StateHash = true, idx[0], hashes[0]
				r.rep.ConvergeMs = time.Since(t0).Milliseconds()
				return
			}
			last = fmt.Sprintf("applied indexes %v", idx)
		} else {
			last = err.Error()
		}
		if !sleepCtx(wctx, 200*time.Millisecond) {
			last += dumpLaggards(mon.cl, lastIdx)
			r.rep.Anomalies = append(r.rep.Anomalies, anomalyf("no-convergence", "", nil, "the nodes did not converge within %v: %s", convergeWait, last))
			return
		}
	}
}

// dumpLaggards makes every node behind the most advanced one print its
// goroutine stacks to its log, and says so.
func dumpLaggards(cl *Cluster, idx []uint64) string {
	var top uint64
	for _, x := range idx {
		top = max(top, x)
	}
	var out string
	for i, x := range idx {
		if x < top && cl.Dump(i+1) == nil {
			out += fmt.Sprintf("; n%d (at %d) dumped its goroutine stacks to %s", i+1, x, cl.node(i+1).logPath)
		}
	}
	return out
}

func stateHashes(ctx context.Context, mon *monitor) ([]uint64, []string, error) {
	var idx []uint64
	var hashes []string
	for i, cc := range mon.conns {
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := coordv1.NewClusterServiceClient(cc).GetStateHash(hctx, &coordv1.GetStateHashRequest{})
		cancel()
		if err != nil {
			return nil, nil, fmt.Errorf("n%d: %w", i+1, err)
		}
		idx = append(idx, resp.GetAppliedIndex())
		hashes = append(hashes, resp.GetSha256())
	}
	return idx, hashes, nil
}

// collect copies the monitor's and the nemesis's findings into the report.
func (r *runner) collect(nem *nemesis, mon *monitor) {
	recs, anomalies := nem.result()
	r.rep.FaultLog = recs
	r.rep.Anomalies = append(r.rep.Anomalies, anomalies...)
	for _, rec := range recs {
		r.rep.FaultsInjected[rec.Kind]++
		if rec.Effective {
			r.rep.FaultsEffective[rec.Kind]++
		} else {
			r.rep.InvalidReasons = append(r.rep.InvalidReasons, fmt.Sprintf("%s at %dms: %s", rec.Kind, rec.StartMs, rec.Invalid))
		}
		r.rep.MaxRecoveryMs = max(r.rep.MaxRecoveryMs, rec.RecoveryMs)
	}
	for _, k := range r.o.Faults {
		if r.rep.FaultsInjected[k] == 0 {
			r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("fault %s was not reached in %v", k, r.o.Duration))
		}
	}
	mr := mon.result()
	r.rep.LeaderChanges, r.rep.LeaderTimeline, r.rep.StatusSamples = mr.LeaderChanges, mr.Timeline, mr.Samples
	for term, nodes := range mr.SplitTerms {
		r.rep.Anomalies = append(r.rep.Anomalies, anomalyf("two-leaders", "", nil, "term %d had more than one leader: %v", term, nodes))
	}
}

// check runs every workload's checks.
func (r *runner) check(wls []workload) {
	t0 := time.Now()
	r.ops = r.hist.snapshot()
	cc := checkConfig{outDir: r.o.OutDir, timeout: r.o.CheckTimeout}
	for _, w := range wls {
		res := w.check(r.ops, cc)
		r.rep.Ops[w.name()] = res.Stats
		r.rep.Anomalies = append(r.rep.Anomalies, res.Anomalies...)
		r.rep.Inconclusive = append(r.rep.Inconclusive, res.Inconclusive...)
		for _, n := range res.Notes {
			r.rep.Notes = append(r.rep.Notes, w.name()+": "+n)
		}
	}
	r.rep.CheckerMs = time.Since(t0).Milliseconds()
	r.rep.Anomalies = capPerKind(r.rep.Anomalies, maxAnomaliesPerKind)
}

// maxAnomaliesPerKind bounds the anomalies of one kind kept in a report.
const maxAnomaliesPerKind = 20

// capPerKind keeps the first n anomalies of each kind and, for a kind with
// more, one more entry that says how many were left out.
func capPerKind(as []Anomaly, n int) []Anomaly {
	count := map[string]int{}
	for _, a := range as {
		count[a.Kind]++
	}
	var out []Anomaly
	kept := map[string]int{}
	for _, a := range as {
		kept[a.Kind]++
		switch k := kept[a.Kind]; {
		case k <= n:
			out = append(out, a)
		case k == n+1:
			out = append(out, Anomaly{Kind: a.Kind, Workload: a.Workload, Detail: fmt.Sprintf("and %d more %s anomalies", count[a.Kind]-n, a.Kind)})
		}
	}
	return out
}

// writeArtifacts writes the report and, unless the run passed (and
// KeepArtifacts is off), the history; a passing run's cluster directory
// (data and logs) is removed.
func (r *runner) writeArtifacts() error {
	var errs []error
	keep := !r.rep.Passed || r.o.KeepArtifacts
	if keep && r.hist != nil {
		if r.ops == nil {
			r.ops = r.hist.snapshot()
		}
		errs = append(errs, writeJSONL(filepath.Join(r.o.OutDir, "history.jsonl"), r.ops))
	}
	if !keep {
		errs = append(errs, os.RemoveAll(r.clusterDir()))
	}
	errs = append(errs, writeJSON(filepath.Join(r.o.OutDir, "report.json"), r.rep))
	errs = append(errs, os.WriteFile(filepath.Join(r.o.OutDir, "summary.txt"), []byte(r.rep.Summary()), 0o644))
	return errors.Join(errs...)
}
