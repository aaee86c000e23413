package health

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// RaftStats is what the metrics read from a node at scrape time.
type RaftStats struct {
	Role                            string
	Term, CommitIndex, AppliedIndex uint64
	LastLogIndex, LastSnapshotIndex uint64
	Ready                           bool
}

// Metrics holds coord's Prometheus metrics. It implements node.Metrics.
type Metrics struct {
	Registry *prometheus.Registry

	applyLatency   *prometheus.HistogramVec
	batchSize      prometheus.Histogram
	batchLatency   prometheus.Histogram
	snapshotTime   prometheus.Histogram
	snapshotBytes  prometheus.Gauge
	restoreTime    prometheus.Histogram
	requests       *prometheus.CounterVec
	requestLatency *prometheus.HistogramVec
}

// NewMetrics registers the metrics. stats is called at each scrape.
func NewMetrics(stats func() RaftStats) *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	lat := prometheus.ExponentialBuckets(0.0001, 2, 18) // 100µs .. ~13s
	m := &Metrics{
		Registry: reg,
		applyLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "coord_apply_seconds", Help: "Time from proposing a command to its result, by outcome.", Buckets: lat,
		}, []string{"outcome"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "coord_fsm_batch_entries", Help: "Log entries applied per state-machine transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		}),
		batchLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "coord_fsm_batch_seconds", Help: "Time to apply and commit one state-machine batch.", Buckets: lat,
		}),
		snapshotTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "coord_snapshot_persist_seconds", Help: "Time to write a snapshot.", Buckets: lat,
		}),
		snapshotBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "coord_snapshot_last_bytes", Help: "Size of the last snapshot written.",
		}),
		restoreTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "coord_snapshot_restore_seconds", Help: "Time to restore a snapshot.", Buckets: lat,
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "coord_grpc_requests_total", Help: "gRPC requests served, by method and code.",
		}, []string{"method", "code"}),
		requestLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "coord_grpc_request_seconds", Help: "gRPC request latency, by method and code.", Buckets: lat,
		}, []string{"method", "code"}),
	}
	reg.MustRegister(m.applyLatency, m.batchSize, m.batchLatency, m.snapshotTime, m.snapshotBytes,
		m.restoreTime, m.requests, m.requestLatency, newRaftCollector(stats))
	return m
}

// ApplyObserved implements node.Metrics.
func (m *Metrics) ApplyObserved(d time.Duration, ok bool) {
	outcome := "ok"
	if !ok {
		outcome = "error"
	}
	m.applyLatency.WithLabelValues(outcome).Observe(d.Seconds())
}

// BatchApplied implements node.Metrics.
func (m *Metrics) BatchApplied(entries int, d time.Duration) {
	m.batchSize.Observe(float64(entries))
	m.batchLatency.Observe(d.Seconds())
}

// SnapshotPersisted implements node.Metrics.
func (m *Metrics) SnapshotPersisted(bytes int64, d time.Duration) {
	m.snapshotTime.Observe(d.Seconds())
	m.snapshotBytes.Set(float64(bytes))
}

// Restored implements node.Metrics.
func (m *Metrics) Restored(d time.Duration) { m.restoreTime.Observe(d.Seconds()) }

// UnaryInterceptor counts and times unary calls by method and code. Install
// it outermost so that it sees the final status.
func (m *Metrics) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := h(ctx, req)
		m.observe(info.FullMethod, err, time.Since(start))
		return resp, err
	}
}

// StreamInterceptor counts and times streaming calls.
func (m *Metrics) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		start := time.Now()
		err := h(srv, ss)
		m.observe(info.FullMethod, err, time.Since(start))
		return err
	}
}

func (m *Metrics) observe(method string, err error, d time.Duration) {
	code := status.Code(err).String()
	m.requests.WithLabelValues(method, code).Inc()
	m.requestLatency.WithLabelValues(method, code).Observe(d.Seconds())
}

// raftCollector reads the node's Raft progress at scrape time.
type raftCollector struct {
	stats                                        func() RaftStats
	state, term, commit, applied, last, snap, ok *prometheus.Desc
}

func newRaftCollector(stats func() RaftStats) *raftCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &raftCollector{
		stats:   stats,
		state:   d("coord_raft_state", "1 for the node's current Raft role.", "role"),
		term:    d("coord_raft_term", "Current Raft term."),
		commit:  d("coord_raft_commit_index", "Highest log index known to be committed."),
		applied: d("coord_raft_applied_index", "Highest log index applied to the state machine."),
		last:    d("coord_raft_last_log_index", "Last index in the node's log."),
		snap:    d("coord_raft_last_snapshot_index", "Index of the latest snapshot."),
		ok:      d("coord_ready", "1 when the node is ready to serve."),
	}
}

func (c *raftCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.state, c.term, c.commit, c.applied, c.last, c.snap, c.ok} {
		ch <- d
	}
}

func (c *raftCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	for _, role := range []string{"leader", "follower", "candidate", "shutdown"} {
		v := 0.0
		if s.Role == role {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, v, role)
	}
	gauge := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	gauge(c.term, s.Term)
	gauge(c.commit, s.CommitIndex)
	gauge(c.applied, s.AppliedIndex)
	gauge(c.last, s.LastLogIndex)
	gauge(c.snap, s.LastSnapshotIndex)
	ready := uint64(0)
	if s.Ready {
		ready = 1
	}
	gauge(c.ok, ready)
}
