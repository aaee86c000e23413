package chaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clusterConfig describes the coordd processes of a run.
type clusterConfig struct {
	bin   string   // coordd binary
	nodes int      // 3 or 5
	dir   string   // n<I>/ data directories and logs/ live here
	extra []string // extra coordd flags (snapshot settings)
	seed  uint64   // spreads port claims over the range
	logf  func(format string, args ...any)
}

// procNode is one coordd process slot: fixed addresses, changing process.
type procNode struct {
	idx              int // 1-based
	id               string
	grpc, raft, http string
	dataDir, logPath string

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when the current process has exited
	paused   bool
	expected bool // the current process is meant to exit (we killed or stopped it)
	starts   int
	crashes  []string // unexpected exits
}

// Cluster runs coordd processes on loopback with a proxy on every directed
// Raft link: node i dials node j's Raft address through proxy(i->j), set up
// with coordd's --raft-dial-map.
type Cluster struct {
	cfg     clusterConfig
	ports   *portBlock
	nodes   []*procNode
	proxies map[[2]int]*Proxy
	http    *http.Client
	stop    sync.Once
}

// newCluster claims ports and starts the proxies; it starts no process.
func newCluster(cfg clusterConfig) (*Cluster, error) {
	if cfg.nodes != 3 && cfg.nodes != 5 {
		return nil, fmt.Errorf("cluster size %d: want 3 or 5", cfg.nodes)
	}
	ports, err := claimPorts(int(cfg.seed % 1000))
	if err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg, ports: ports, proxies: map[[2]int]*Proxy{},
		http: &http.Client{Timeout: time.Second}}
	for i := 1; i <= cfg.nodes; i++ {
		n := &procNode{idx: i, id: "n" + strconv.Itoa(i), grpc: ports.grpc(i), raft: ports.raft(i), http: ports.http(i),
			dataDir: filepath.Join(cfg.dir, "n"+strconv.Itoa(i)), logPath: filepath.Join(cfg.dir, "logs", "n"+strconv.Itoa(i)+".log")}
		n.done = make(chan struct{})
		close(n.done)
		c.nodes = append(c.nodes, n)
	}
	k := 0
	for i := 1; i <= cfg.nodes; i++ {
		for j := 1; j <= cfg.nodes; j++ {
			if i == j {
				continue
			}
			p, err := newProxy(i, j, ports.proxy(k), ports.raft(j))
			if err != nil {
				c.closeProxies()
				ports.release()
				return nil, fmt.Errorf("proxy %d->%d: %w", i, j, err)
			}
			c.proxies[[2]int{i, j}] = p
			k++
		}
	}
	if err := os.MkdirAll(filepath.Join(cfg.dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	return c, nil
}

// Size is the number of nodes.
func (c *Cluster) Size() int { return len(c.nodes) }

func (c *Cluster) node(i int) *procNode { return c.nodes[i-1] }

// Endpoints lists the gRPC addresses.
func (c *Cluster) Endpoints() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.grpc
	}
	return out
}

// args are node i's coordd flags: those scripts/cluster.sh passes, plus the
// dial map through the proxies and the run's extra flags.
func (c *Cluster) args(i int) []string {
	n := c.node(i)
	var initial, dial []string
	for _, m := range c.nodes {
		initial = append(initial, m.id+"="+m.raft)
		if m.idx != i {
			dial = append(dial, m.raft+"="+c.proxies[[2]int{i, m.idx}].Addr())
		}
	}
	args := []string{
		"--id", n.id,
		"--data-dir", n.dataDir,
		"--raft-addr", n.raft,
		"--grpc-addr", n.grpc,
		"--http-addr", n.http,
		"--bootstrap",
		"--initial-cluster", strings.Join(initial, ","),
		"--raft-dial-map", strings.Join(dial, ","),
	}
	return append(args, c.cfg.extra...)
}

// environ is the environment without COORD_* variables, so that the flags
// alone configure coordd.
func environ() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "COORD_") {
			out = append(out, kv)
		}
	}
	return out
}

// StartNode starts node i's process (which must not be running).
func (c *Cluster) StartNode(i int) error {
	n := c.node(i)
	n.mu.Lock()
	defer n.mu.Unlock()
	select {
	case <-n.done:
	default:
		return fmt.Errorf("%s is already running", n.id)
	}
	lf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(lf, "=== coordchaos: starting %s at %s ===\n", n.id, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(c.cfg.bin, c.args(i)...)
	cmd.Env = environ()
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("start %s: %w", n.id, err)
	}
	done := make(chan struct{})
	n.cmd, n.done, n.paused, n.expected = cmd, done, false, false
	n.starts++
	go func() {
		err := cmd.Wait()
		lf.Close()
		n.mu.Lock()
		if !n.expected {
			n.crashes = append(n.crashes, fmt.Sprintf("%s (pid %d) exited unexpectedly: %v", n.id, cmd.Process.Pid, err))
		}
		n.mu.Unlock()
		close(done)
	}()
	return nil
}

// Pid is node i's current process id (0 when not running).
func (c *Cluster) Pid(i int) int {
	n := c.node(i)
	n.mu.Lock()
	defer n.mu.Unlock()
	select {
	case <-n.done:
		return 0
	default:
		return n.cmd.Process.Pid
	}
}

// Running reports whether node i's process exists (running or paused).
func (c *Cluster) Running(i int) bool { return c.Pid(i) != 0 }

// Paused reports whether node i is stopped with SIGSTOP.
func (c *Cluster) Paused(i int) bool {
	n := c.node(i)
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.paused
}

// signal sends sig to node i's process, marking an exit as expected when
// the signal ends it.
func (c *Cluster) signal(i int, sig syscall.Signal) (pid int, done chan struct{}, err error) {
	n := c.node(i)
	n.mu.Lock()
	defer n.mu.Unlock()
	select {
	case <-n.done:
		return 0, n.done, fmt.Errorf("%s is not running", n.id)
	default:
	}
	if sig == syscall.SIGKILL || sig == syscall.SIGTERM || sig == syscall.SIGQUIT {
		n.expected = true
	}
	switch sig {
	case syscall.SIGSTOP:
		n.paused = true
	case syscall.SIGCONT, syscall.SIGKILL, syscall.SIGQUIT:
		n.paused = false
	}
	return n.cmd.Process.Pid, n.done, n.cmd.Process.Signal(sig)
}

// Kill sends SIGKILL to node i and waits until the process is gone.
func (c *Cluster) Kill(i int) (int, error) {
	pid, done, err := c.signal(i, syscall.SIGKILL)
	if err != nil {
		return pid, err
	}
	select {
	case <-done:
		return pid, nil
	case <-time.After(10 * time.Second):
		return pid, fmt.Errorf("n%d (pid %d) survived SIGKILL for 10s", i, pid)
	}
}

// Dump makes node i print every goroutine's stack to its log and exit
// (SIGQUIT), for a node that is stuck; the exit counts as expected.
func (c *Cluster) Dump(i int) error {
	pid, done, err := c.signal(i, syscall.SIGQUIT)
	if err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Second):
		_, err := c.Kill(i)
		return errors.Join(fmt.Errorf("n%d (pid %d) survived SIGQUIT", i, pid), err)
	}
}

// Pause sends SIGSTOP to node i.
func (c *Cluster) Pause(i int) (int, error) {
	pid, _, err := c.signal(i, syscall.SIGSTOP)
	return pid, err
}

// Resume sends SIGCONT to node i.
func (c *Cluster) Resume(i int) error {
	_, _, err := c.signal(i, syscall.SIGCONT)
	return err
}

// Stop ends every process (SIGCONT and SIGTERM, SIGKILL after 10s) and
// closes the proxies and the port claim. Later calls do nothing.
func (c *Cluster) Stop() { c.stop.Do(c.stopAll) }

func (c *Cluster) stopAll() {
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		if !c.Running(n.idx) {
			continue
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, done, err := c.signal(i, syscall.SIGTERM)
			if err != nil {
				return
			}
			_, _, _ = c.signal(i, syscall.SIGCONT)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_, _ = c.Kill(i)
			}
		}(n.idx)
	}
	wg.Wait()
	c.closeProxies()
	c.ports.release()
}

func (c *Cluster) closeProxies() {
	for _, p := range c.proxies {
		p.Close()
	}
}

// Crashes lists the processes that exited without being killed or stopped.
func (c *Cluster) Crashes() []string {
	var out []string
	for _, n := range c.nodes {
		n.mu.Lock()
		out = append(out, n.crashes...)
		n.mu.Unlock()
	}
	return out
}

// ready reports whether node i answers 200 on /readyz.
func (c *Cluster) ready(ctx context.Context, i int) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.node(i).http+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// WaitReady polls /readyz until every given node (all when none given) is
// ready. It fails when one of them is not running or ctx ends.
func (c *Cluster) WaitReady(ctx context.Context, nodes ...int) error {
	if len(nodes) == 0 {
		for i := 1; i <= c.Size(); i++ {
			nodes = append(nodes, i)
		}
	}
	for {
		var pending []string
		for _, i := range nodes {
			if !c.Running(i) {
				return fmt.Errorf("n%d is not running (see %s)", i, c.node(i).logPath)
			}
			if !c.ready(ctx, i) {
				pending = append(pending, "n"+strconv.Itoa(i))
			}
		}
		if len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %v to become ready: %w", pending, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// metric reads one sample of a Prometheus metric from node i's /metrics.
func (c *Cluster) metric(ctx context.Context, i int, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.node(i).http+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("metric " + name + " not found")
}

// cut cuts every link for which pick(from, to) is true.
func (c *Cluster) cut(pick func(from, to int) bool) {
	for k, p := range c.proxies {
		if pick(k[0], k[1]) {
			p.Cut()
		}
	}
}

// healNetwork heals every link and removes every delay.
func (c *Cluster) healNetwork() {
	for _, p := range c.proxies {
		p.SetDelay(0)
		p.Heal()
	}
}

// setDelay sets the latency of every link.
func (c *Cluster) setDelay(d time.Duration) {
	for _, p := range c.proxies {
		p.SetDelay(d)
	}
}

// linkStats sums the counters of the links for which pick is true.
func (c *Cluster) linkStats(pick func(from, to int) bool) proxyStats {
	var s proxyStats
	for k, p := range c.proxies {
		if pick(k[0], k[1]) {
			ps := p.stats()
			s.Forwarded += ps.Forwarded
			s.Blackholed += ps.Blackholed
			s.Severed += ps.Severed
			s.DelayedBytes += ps.DelayedBytes
		}
	}
	return s
}

func allLinks(int, int) bool { return true }
