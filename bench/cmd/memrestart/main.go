// Command memrestart measures what coord's state costs and how fast a
// cluster restarts with it: it loads a running local cluster (started with
// scripts/cluster.sh) with N keys, N events and N held locks, reads each
// node's resident memory from /proc, its Go heap from /metrics and the size
// of its files after every phase, then restarts the cluster (SIGTERM, start,
// time until every node is ready and a linearizable read succeeds) and
// finally restarts it as after a machine crash (state.db discarded and
// rebuilt from the latest snapshot and the Raft log). bench/memrestart.sh
// runs it (`make bench-memory`).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"coord/client"
	"coord/internal/loadgen"
)

type options struct {
	repo, clusterDir, binDir string
	basePort                 int
	n, valueSize, workers    int
	locksPerLease            int
	docOut, command          string
	skip                     string
}

func main() {
	o := &options{}
	flag.StringVar(&o.repo, "repo", ".", "the coord repository (for scripts/cluster.sh)")
	flag.StringVar(&o.clusterDir, "cluster-dir", "", "COORD_CLUSTER_DIR of the running cluster")
	flag.StringVar(&o.binDir, "bin-dir", "", "COORD_BIN_DIR of the running cluster")
	flag.IntVar(&o.basePort, "base-port", 17000, "COORD_BASE_PORT of the running cluster")
	flag.IntVar(&o.n, "n", 1000000, "keys, events and locks to load (each)")
	flag.IntVar(&o.valueSize, "value-size", 100, "bytes per key value and event payload")
	flag.IntVar(&o.workers, "workers", 256, "concurrent requests while loading")
	flag.IntVar(&o.locksPerLease, "locks-per-lease", 1000, "held locks per lease")
	flag.StringVar(&o.skip, "skip", "", "comma-separated phases to skip: keys, events, locks")
	flag.StringVar(&o.docOut, "doc", "", "write the results into this Markdown file, between the memory markers")
	flag.StringVar(&o.command, "command", "", "the command line to record in --doc")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "memrestart: %v\n", err)
		os.Exit(1)
	}
}

func (o *options) endpoints() []string {
	var eps []string
	for i := 1; i <= 3; i++ {
		eps = append(eps, fmt.Sprintf("127.0.0.1:%d", o.basePort+i))
	}
	return eps
}

// phase is one measured state of the cluster.
type phase struct {
	Name    string        `json:"phase"`
	Load    time.Duration `json:"load_ns,omitempty"`
	Restart time.Duration `json:"restart_ns,omitempty"`
	Nodes   []nodeStats   `json:"nodes"`
}

func run(o *options) error {
	ctx := context.Background()
	c, err := client.New(ctx, client.Config{Endpoints: o.endpoints()})
	if err != nil {
		return err
	}
	defer c.Close()
	var phases []phase
	measure := func(name string, load, restart time.Duration) error {
		p := phase{Name: name, Load: load, Restart: restart}
		for i := 1; i <= 3; i++ {
			st, err := o.stats(i)
			if err != nil {
				return err
			}
			p.Nodes = append(p.Nodes, st)
		}
		phases = append(phases, p)
		fmt.Fprintf(os.Stderr, "%s: %s\n", name, p.summary())
		return nil
	}
	if err := measure("empty", 0, 0); err != nil {
		return err
	}
	for _, l := range []struct {
		name string
		fn   func(context.Context, *client.Client, *options) error
	}{{"keys", loadKeys}, {"events", loadEvents}, {"locks", loadLocks}} {
		if strings.Contains(","+o.skip+",", ","+l.name+",") {
			continue
		}
		start := time.Now()
		if err := l.fn(ctx, c, o); err != nil {
			return fmt.Errorf("load %s: %w", l.name, err)
		}
		if err := measure(fmt.Sprintf("+%d %s", o.n, l.name), time.Since(start), 0); err != nil {
			return err
		}
	}
	c.Close()
	for _, crash := range []bool{false, true} {
		d, err := o.restart(ctx, crash)
		if err != nil {
			return err
		}
		name := "after a restart"
		if crash {
			name = "after a restart that rebuilt state.db"
		}
		if err := measure(name, 0, d); err != nil {
			return err
		}
	}
	out := report(o, phases)
	fmt.Print(out)
	b, _ := json.MarshalIndent(phases, "", "  ")
	_ = os.WriteFile(filepath.Join(o.clusterDir, "memrestart.json"), b, 0o644)
	if o.docOut != "" {
		return writeDoc(o.docOut, out)
	}
	return nil
}

// progress prints how far a load got, every 5 seconds.
func progress(what string, done *atomic.Int64, total int) func() {
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		start := time.Now()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				n := done.Load()
				fmt.Fprintf(os.Stderr, "  %s: %d of %d (%.0f/s)\n", what, n, total, float64(n)/time.Since(start).Seconds())
			}
		}
	}()
	return func() { close(stop) }
}

func loadKeys(ctx context.Context, c *client.Client, o *options) error {
	value := loadgen.Value(o.valueSize)
	var done atomic.Int64
	defer progress("keys", &done, o.n)()
	return loadgen.Parallel(ctx, o.n, o.workers, func(ctx context.Context, i int) error {
		_, err := c.Put(ctx, "mem/kv/"+loadgen.KeyName(i), value)
		done.Add(1)
		return err
	})
}

// loadEvents appends N events, 10 per append, to 1000 streams.
func loadEvents(ctx context.Context, c *client.Client, o *options) error {
	const perAppend, streams = 10, 1000
	value := loadgen.Value(o.valueSize)
	var done atomic.Int64
	defer progress("events", &done, o.n)()
	return loadgen.Parallel(ctx, o.n/perAppend, o.workers, func(ctx context.Context, i int) error {
		evs := make([]client.Event, perAppend)
		for k := range evs {
			evs[k] = client.Event{Type: "mem", Data: value}
		}
		_, err := c.Append(ctx, "mem-stream-"+strconv.Itoa(i%streams), evs)
		done.Add(perAppend)
		return err
	})
}

// loadLocks acquires N distinct locks, locksPerLease under each lease.
func loadLocks(ctx context.Context, c *client.Client, o *options) error {
	leases := (o.n + o.locksPerLease - 1) / o.locksPerLease
	ids := make([]uint64, leases)
	err := loadgen.Parallel(ctx, leases, 64, func(ctx context.Context, i int) error {
		l, err := c.GrantLease(ctx, 12*time.Hour, "mem")
		if err == nil {
			ids[i] = l.Id
		}
		return err
	})
	if err != nil {
		return err
	}
	var done atomic.Int64
	defer progress("locks", &done, o.n)()
	return loadgen.Parallel(ctx, o.n, o.workers, func(ctx context.Context, i int) error {
		_, err := c.TryLock(ctx, "mem/lock/"+loadgen.KeyName(i), client.WithLease(ids[i/o.locksPerLease]), client.Owner("mem"))
		done.Add(1)
		return err
	})
}

// restart stops every node and starts them again; with crash, each node's
// state.db marker is made to look like a machine crash, so that state.db
// is rebuilt. It returns the time from the start until every node is ready
// and a linearizable read succeeds.
func (o *options) restart(ctx context.Context, crash bool) (time.Duration, error) {
	if err := o.cluster("stop"); err != nil {
		return 0, err
	}
	if crash {
		for i := 1; i <= 3; i++ {
			mark := filepath.Join(o.clusterDir, fmt.Sprintf("n%d", i), "data", "state.db.unsynced")
			if err := os.WriteFile(mark, []byte("another-boot\n"), 0o600); err != nil {
				return 0, err
			}
		}
	}
	start := time.Now()
	if err := o.cluster("start"); err != nil {
		return 0, err
	}
	c, err := client.New(ctx, client.Config{Endpoints: o.endpoints()})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if _, err := c.Get(rctx, "mem/kv/"+loadgen.KeyName(0)); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func (o *options) cluster(cmd string) error {
	c := exec.Command(filepath.Join(o.repo, "scripts", "cluster.sh"), cmd)
	c.Env = append(os.Environ(), "COORD_BASE_PORT="+strconv.Itoa(o.basePort),
		"COORD_CLUSTER_DIR="+o.clusterDir, "COORD_BIN_DIR="+o.binDir, "COORD_WAIT_TIMEOUT=600")
	c.Stdout, c.Stderr = io.Discard, os.Stderr
	return c.Run()
}

// nodeStats is one node's footprint.
type nodeStats struct {
	RSS      int64 `json:"rss_bytes"`
	RSSAnon  int64 `json:"rss_anon_bytes"` // the process's own memory
	RSSFile  int64 `json:"rss_file_bytes"` // mapped file pages: state.db's memory map
	HeapUsed int64 `json:"heap_inuse_bytes"`
	StateDB  int64 `json:"state_db_bytes"`
	RaftLog  int64 `json:"raft_log_bytes"`
	Snaps    int64 `json:"snapshots_bytes"`
}

func (o *options) stats(i int) (nodeStats, error) {
	var st nodeStats
	dir := filepath.Join(o.clusterDir, fmt.Sprintf("n%d", i))
	pid, err := os.ReadFile(filepath.Join(dir, "coordd.pid"))
	if err != nil {
		return st, err
	}
	status, err := os.ReadFile("/proc/" + strings.TrimSpace(string(pid)) + "/status")
	if err != nil {
		return st, err
	}
	for _, l := range strings.Split(string(status), "\n") {
		name, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch name {
		case "VmRSS":
			st.RSS = kb << 10
		case "RssAnon":
			st.RSSAnon = kb << 10
		case "RssFile":
			st.RSSFile = kb << 10
		}
	}
	// A heap profile with gc=1 collects garbage first, so that the heap
	// figure is live data rather than whatever GOGC let accumulate.
	if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap?gc=1", o.basePort+200+i)); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	st.HeapUsed = metric(fmt.Sprintf("http://127.0.0.1:%d/metrics", o.basePort+200+i), "go_memstats_heap_inuse_bytes")
	data := filepath.Join(dir, "data")
	st.StateDB = size(filepath.Join(data, "state.db"))
	st.RaftLog = size(filepath.Join(data, "raft-log")) + size(filepath.Join(data, "raft.db"))
	st.Snaps = size(filepath.Join(data, "snapshots"))
	return st, nil
}

// metric reads one gauge from a Prometheus text endpoint (0 when absent).
func metric(url, name string) int64 {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int64(f)
		}
	}
	return 0
}

// size is the size of a file, or of every file under a directory.
func size(path string) int64 {
	var n int64
	_ = filepath.Walk(path, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			n += info.Size()
		}
		return nil
	})
	return n
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func (p phase) summary() string {
	n := p.Nodes[0]
	return fmt.Sprintf("n1 RSS %s (anon %s, file %s), heap %s, state.db %s, log %s", mib(n.RSS), mib(n.RSSAnon), mib(n.RSSFile), mib(n.HeapUsed), mib(n.StateDB), mib(n.RaftLog))
}
