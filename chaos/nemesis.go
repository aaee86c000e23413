package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"coord/client"
)

// Nemesis timing limits.
const (
	leaderWait     = 15 * time.Second // for a leader before a fault, or a new one during it
	readyWait      = 60 * time.Second // for restarted nodes to become ready
	snapshotWait   = 90 * time.Second // for the leader to compact past a cut-off follower
	restoreWait    = 30 * time.Second // for that follower to install the snapshot
	restoreMetric  = "coord_snapshot_restore_seconds_count"
	probeKey       = "chaos/probe"
	fillerKey      = "chaos/filler"
	probeAttemptTO = 2 * time.Second
)

// nemesis injects the faults of a run, one episode at a time, and proves
// that each took effect. After every episode it heals the cluster and
// measures how long a write takes to succeed again.
type nemesis struct {
	cl       *Cluster
	mon      *monitor
	probe    *client.Client
	start    time.Time
	trailing uint64        // --trailing-logs of the run
	bound    time.Duration // recovery bound
	logf     func(format string, args ...any)

	mu        sync.Mutex
	records   []FaultRecord
	anomalies []Anomaly
	probeN    int
}

func (n *nemesis) ms() int64 { return time.Since(n.start).Milliseconds() }

// run injects episodes until stop ends; every episode that started is
// completed and healed (under ctx, which only an abort cancels).
func (n *nemesis) run(ctx, stop context.Context, sched *scheduler) {
	for {
		p, ok := sched.next()
		if !ok || !sleepCtx(stop, p.Gap) {
			return
		}
		rec := n.episode(ctx, p)
		n.logf("fault %-16s target=%s effective=%v recovery=%dms %s%s", rec.Kind, rec.Target, rec.Effective, rec.RecoveryMs, rec.Proof, rec.Invalid)
		n.mu.Lock()
		n.records = append(n.records, rec)
		n.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
	}
}

// episode injects one fault, heals it and measures recovery.
func (n *nemesis) episode(ctx context.Context, p faultPlan) FaultRecord {
	rec := FaultRecord{Kind: p.Kind, StartMs: n.ms()}
	var target, proof, invalid string
	switch p.Kind {
	case KillLeader:
		target, proof, invalid = n.kill(ctx, p, true)
	case KillNode:
		target, proof, invalid = n.kill(ctx, p, false)
	case KillAll:
		target, proof, invalid = n.killAll(ctx, p)
	case PauseLeader:
		target, proof, invalid = n.pauseLeader(ctx, p)
	case IsolateLeader:
		target, proof, invalid = n.isolateLeader(ctx, p)
	case Partition:
		target, proof, invalid = n.partition(ctx, p)
	case Latency:
		target, proof, invalid = n.latency(ctx, p)
	case SnapshotInstall:
		target, proof, invalid = n.snapshotInstall(ctx, p)
	case DeposedLeader:
		target, proof, invalid = n.deposedLeader(ctx, p)
	}
	rec.HealMs = n.ms()
	if err := n.heal(); err != nil && invalid == "" {
		invalid = "healing failed: " + err.Error()
	}
	rec.RecoveryMs = n.recovery(ctx, p.Kind, rec.HealMs)
	if err := n.waitReady(ctx); err != nil && invalid == "" {
		invalid = "after healing: " + err.Error()
	}
	rec.Target, rec.Proof, rec.Invalid, rec.Effective = target, proof, invalid, invalid == ""
	return rec
}

// leader waits for a leader that is running and not paused.
func (n *nemesis) leader(ctx context.Context) (int, uint64, error) {
	wctx, cancel := context.WithTimeout(ctx, leaderWait)
	defer cancel()
	return n.mon.waitLeader(wctx)
}

// newLeader waits for a leader elected in a term above term on a node
// outside exclude.
func (n *nemesis) newLeader(ctx context.Context, term uint64, exclude ...int) (LeaderObservation, error) {
	wctx, cancel := context.WithTimeout(ctx, leaderWait)
	defer cancel()
	for {
		o, err := n.mon.waitNewLeader(wctx, term, 0)
		if err != nil {
			return o, fmt.Errorf("no new leader within %v", leaderWait)
		}
		ok := true
		for _, x := range exclude {
			ok = ok && o.Node != nodeName(x)
		}
		if ok {
			return o, nil
		}
		term = o.Term
	}
}

func nodeName(i int) string { return fmt.Sprintf("n%d", i) }

// kill SIGKILLs the leader (leader true) or a random node and restarts it.
func (n *nemesis) kill(ctx context.Context, p faultPlan, leader bool) (string, string, string) {
	l, term, err := n.leader(ctx)
	if err != nil {
		return "", "", "no leader before the fault: " + err.Error()
	}
	i := l
	if !leader {
		i = 1 + int(p.Pick%uint64(n.cl.Size()))
	}
	oldPid := n.cl.Pid(i)
	if _, err := n.cl.Kill(i); err != nil {
		return nodeName(i), "", err.Error()
	}
	sleepCtx(ctx, p.Hold)
	if err := n.cl.StartNode(i); err != nil {
		return nodeName(i), "", err.Error()
	}
	if err := n.waitReady(ctx, i); err != nil {
		return nodeName(i), "", err.Error()
	}
	newPid := n.cl.Pid(i)
	proof := fmt.Sprintf("%s pid %d killed, restarted as pid %d", nodeName(i), oldPid, newPid)
	if newPid == 0 || newPid == oldPid {
		return nodeName(i), proof, "the process was not replaced"
	}
	if i == l {
		o, err := n.newLeader(ctx, term)
		if err != nil {
			return nodeName(i), proof, "the killed leader was not replaced: " + err.Error()
		}
		proof += fmt.Sprintf("; %s leads term %d (was %s in term %d)", o.Node, o.Term, nodeName(l), term)
	}
	return nodeName(i), proof, ""
}

func (n *nemesis) waitReady(ctx context.Context, nodes ...int) error {
	wctx, cancel := context.WithTimeout(ctx, readyWait)
	defer cancel()
	return n.cl.WaitReady(wctx, nodes...)
}

// killAll SIGKILLs every node and restarts them all.
func (n *nemesis) killAll(ctx context.Context, p faultPlan) (string, string, string) {
	_, term, err := n.leader(ctx)
	if err != nil {
		return "all", "", "no leader before the fault: " + err.Error()
	}
	old := map[int]int{}
	for i := 1; i <= n.cl.Size(); i++ {
		old[i] = n.cl.Pid(i)
		if _, err := n.cl.Kill(i); err != nil {
			return "all", "", err.Error()
		}
	}
	sleepCtx(ctx, p.Hold)
	for i := 1; i <= n.cl.Size(); i++ {
		if err := n.cl.StartNode(i); err != nil {
			return "all", "", err.Error()
		}
	}
	if err := n.waitReady(ctx); err != nil {
		return "all", "", err.Error()
	}
	var pids []string
	for i := 1; i <= n.cl.Size(); i++ {
		if pid := n.cl.Pid(i); pid == 0 || pid == old[i] {
			return "all", "", fmt.Sprintf("%s was not replaced", nodeName(i))
		}
		pids = append(pids, fmt.Sprintf("%s %d->%d", nodeName(i), old[i], n.cl.Pid(i)))
	}
	o, err := n.newLeader(ctx, term)
	if err != nil {
		return "all", "", "no leader after the restart: " + err.Error()
	}
	return "all", fmt.Sprintf("pids %s; %s leads term %d (was term %d)", strings.Join(pids, ", "), o.Node, o.Term, term), ""
}

// pauseLeader SIGSTOPs the leader until another node leads, holds, then
// SIGCONTs it.
func (n *nemesis) pauseLeader(ctx context.Context, p faultPlan) (string, string, string) {
	l, term, err := n.leader(ctx)
	if err != nil {
		return "", "", "no leader before the fault: " + err.Error()
	}
	pid, err := n.cl.Pause(l)
	if err != nil {
		return nodeName(l), "", err.Error()
	}
	paused := time.Now()
	o, err := n.newLeader(ctx, term, l)
	sleepCtx(ctx, p.Hold)
	stopped := time.Since(paused)
	if rerr := n.cl.Resume(l); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		return nodeName(l), "", "while paused: " + err.Error()
	}
	return nodeName(l), fmt.Sprintf("%s (pid %d) stopped for %v; %s leads term %d (was term %d)", nodeName(l), pid, stopped.Round(time.Millisecond), o.Node, o.Term, term), ""
}

// isolateLeader cuts every link of the leader until another node leads.
func (n *nemesis) isolateLeader(ctx context.Context, p faultPlan) (string, string, string) {
	l, term, err := n.leader(ctx)
	if err != nil {
		return "", "", "no leader before the fault: " + err.Error()
	}
	links := func(from, to int) bool { return from == l || to == l }
	before := n.cl.linkStats(links)
	n.cl.cut(links)
	o, err := n.newLeader(ctx, term, l)
	sleepCtx(ctx, p.Hold)
	after := n.cl.linkStats(links)
	n.cl.healNetwork()
	if err != nil {
		return nodeName(l), "", "while isolated: " + err.Error()
	}
	return nodeName(l), fmt.Sprintf("%s cut off (%d connections severed, %d blackholed); %s leads term %d (was term %d)",
		nodeName(l), after.Severed-before.Severed, after.Blackholed-before.Blackholed, o.Node, o.Term, term), ""
}

// partition splits the cluster into a minority and a majority.
func (n *nemesis) partition(ctx context.Context, p faultPlan) (string, string, string) {
	l, term, err := n.leader(ctx)
	if err != nil {
		return "", "", "no leader before the fault: " + err.Error()
	}
	size := n.cl.Size()
	m := (size - 1) / 2
	var others []int
	for i := 1; i <= size; i++ {
		if i != l {
			others = append(others, i)
		}
	}
	rng := rand.New(rand.NewPCG(p.Pick, 1))
	rng.Shuffle(len(others), func(i, j int) { others[i], others[j] = others[j], others[i] })
	minority := map[int]bool{}
	if p.Minority {
		minority[l] = true
		for _, i := range others[:m-1] {
			minority[i] = true
		}
	} else {
		for _, i := range others[:m] {
			minority[i] = true
		}
	}
	target := describeSplit(size, minority)
	links := func(from, to int) bool { return minority[from] != minority[to] }
	before := n.cl.linkStats(links)
	n.cl.cut(links)
	var proof, invalid string
	if p.Minority {
		var excl []int
		for i := range minority {
			excl = append(excl, i)
		}
		o, err := n.newLeader(ctx, term, excl...)
		if err != nil {
			invalid = "the leader, in the minority, was not replaced: " + err.Error()
		} else {
			proof = fmt.Sprintf("leader %s in the minority; %s leads term %d", nodeName(l), o.Node, o.Term)
		}
	} else {
		proof = fmt.Sprintf("leader %s in the majority", nodeName(l))
	}
	sleepCtx(ctx, p.Hold)
	after := n.cl.linkStats(links)
	n.cl.healNetwork()
	cut := (after.Severed - before.Severed) + (after.Blackholed - before.Blackholed)
	proof += fmt.Sprintf("; %d connections severed or blackholed", cut)
	if cut == 0 && invalid == "" {
		invalid = "no connection crossed the partition"
	}
	return target, proof, invalid
}

func describeSplit(size int, minority map[int]bool) string {
	var a, b []string
	for i := 1; i <= size; i++ {
		if minority[i] {
			a = append(a, nodeName(i))
		} else {
			b = append(b, nodeName(i))
		}
	}
	sort.Strings(a)
	return strings.Join(a, ",") + "|" + strings.Join(b, ",")
}

// latency delays every link for the hold.
func (n *nemesis) latency(ctx context.Context, p faultPlan) (string, string, string) {
	before := n.cl.linkStats(allLinks)
	n.cl.setDelay(p.Delay)
	t0 := time.Now()
	err := n.probeWrite(ctx, 10*time.Second)
	took := time.Since(t0)
	sleepCtx(ctx, p.Hold)
	after := n.cl.linkStats(allLinks)
	n.cl.setDelay(0)
	target := fmt.Sprintf("all links +%v", p.Delay)
	delayed := after.DelayedBytes - before.DelayedBytes
	proof := fmt.Sprintf("%d bytes delayed; a write took %v", delayed, took.Round(time.Millisecond))
	if err != nil {
		proof += " (failed: " + err.Error() + ")"
	}
	if delayed == 0 {
		return target, proof, "no byte was delayed"
	}
	return target, proof, ""
}

// snapshotInstall cuts a follower off until the leader's log no longer
// holds the entries the follower needs, heals, and waits for the follower
// to install the leader's snapshot.
func (n *nemesis) snapshotInstall(ctx context.Context, p faultPlan) (string, string, string) {
	l, _, err := n.leader(ctx)
	if err != nil {
		return "", "", "no leader before the fault: " + err.Error()
	}
	var followers []int
	for i := 1; i <= n.cl.Size(); i++ {
		if i != l {
			followers = append(followers, i)
		}
	}
	f := followers[p.Pick%uint64(len(followers))]
	restored0, err := n.cl.metric(ctx, f, restoreMetric)
	if err != nil {
		return nodeName(f), "", "reading the restore metric: " + err.Error()
	}
	links := func(from, to int) bool { return from == f || to == f }
	n.cl.cut(links)
	cutAt := time.Now()
	s0, err := n.mon.waitSample(ctx, f, func(s nodeSample) bool { return s.At.After(cutAt.Add(300 * time.Millisecond)) })
	if err != nil {
		n.cl.healNetwork()
		return nodeName(f), "", "no status from the cut-off follower"
	}
	need := s0.LastLog + n.trailing + 64
	fctx, stopFill := context.WithCancel(ctx)
	go n.fill(fctx)
	snap, err := n.waitLeaderSnapshot(ctx, need)
	stopFill()
	n.cl.healNetwork()
	if err != nil {
		return nodeName(f), "", fmt.Sprintf("the leader did not snapshot past index %d: %v", need, err)
	}
	rctx, cancel := context.WithTimeout(ctx, restoreWait)
	defer cancel()
	var restored float64
	for {
		restored, err = n.cl.metric(rctx, f, restoreMetric)
		if err == nil && restored > restored0 {
			break
		}
		if !sleepCtx(rctx, 100*time.Millisecond) {
			why := fmt.Sprintf("%s did not install a snapshot within %v (restores %v)", nodeName(f), restoreWait, restored0)
			if err := n.cl.Dump(f); err == nil {
				why += fmt.Sprintf("; its goroutine stacks are in %s", n.cl.node(f).logPath)
			}
			return nodeName(f), "", why
		}
	}
	s1, _ := n.mon.waitSample(rctx, f, func(s nodeSample) bool { return s.LastSnapshotIndex > s0.LastLog })
	return nodeName(f), fmt.Sprintf("%s cut off at log index %d; leader snapshot at %d; restores %v->%v; its snapshot index %d->%d",
		nodeName(f), s0.LastLog, snap, restored0, restored, s0.LastSnapshotIndex, s1.LastSnapshotIndex), ""
}

// waitLeaderSnapshot waits until the current leader's snapshot index
// reaches need.
func (n *nemesis) waitLeaderSnapshot(ctx context.Context, need uint64) (uint64, error) {
	wctx, cancel := context.WithTimeout(ctx, snapshotWait)
	defer cancel()
	for {
		if l, _ := n.mon.leader(); l != 0 {
			if s := n.mon.latestSample(l); s.LastSnapshotIndex >= need {
				return s.LastSnapshotIndex, nil
			}
		}
		if !sleepCtx(wctx, 50*time.Millisecond) {
			return 0, wctx.Err()
		}
	}
}

// fill writes to a filler key until ctx ends, so the log grows even when
// the workloads write little.
func (n *nemesis) fill(ctx context.Context) {
	for i := 0; ctx.Err() == nil; i++ {
		wctx, cancel := context.WithTimeout(ctx, probeAttemptTO)
		_, _ = n.probe.Put(wctx, fillerKey, []byte(fmt.Sprintf("filler-%d", i)))
		cancel()
	}
}

// probeWrite puts a unique value and retries until it succeeds or limit
// passes.
func (n *nemesis) probeWrite(ctx context.Context, limit time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		n.mu.Lock()
		n.probeN++
		v := fmt.Sprintf("probe-%d", n.probeN)
		n.mu.Unlock()
		actx, acancel := context.WithTimeout(wctx, probeAttemptTO)
		_, err := n.probe.Put(actx, probeKey, []byte(v))
		acancel()
		if err == nil {
			return nil
		}
		if wctx.Err() != nil {
			return err
		}
		sleepCtx(wctx, 50*time.Millisecond)
	}
}

// recovery measures the time from healing to the first successful write
// and records an anomaly when it exceeds the bound.
func (n *nemesis) recovery(ctx context.Context, kind FaultKind, healMs int64) int64 {
	err := n.probeWrite(ctx, n.bound)
	took := n.ms() - healMs
	if err != nil && ctx.Err() == nil {
		n.mu.Lock()
		n.anomalies = append(n.anomalies, anomalyf("slow-recovery", "", nil,
			"no write succeeded within %v of healing %s (at %dms): %v", n.bound, kind, healMs, err))
		n.mu.Unlock()
	}
	return took
}

// healAll heals everything and waits until every node is ready.
func (n *nemesis) healAll(ctx context.Context) error {
	if err := n.heal(); err != nil {
		return err
	}
	return n.waitReady(ctx)
}

// heal heals the network, resumes paused nodes and restarts dead ones.
func (n *nemesis) heal() error {
	n.cl.healNetwork()
	for i := 1; i <= n.cl.Size(); i++ {
		if n.cl.Paused(i) {
			if err := n.cl.Resume(i); err != nil {
				return err
			}
		}
		if !n.cl.Running(i) {
			if err := n.cl.StartNode(i); err != nil {
				return err
			}
		}
	}
	return nil
}

func (n *nemesis) result() ([]FaultRecord, []Anomaly) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]FaultRecord(nil), n.records...), append([]Anomaly(nil), n.anomalies...)
}
