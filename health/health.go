package health

import (
	"context"
	"fmt"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Node is what health needs from a node.
type Node interface {
	Ready() (bool, string)
}

// Checker keeps the gRPC health service in step with the node's readiness.
type Checker struct {
	node     Node
	grpc     *health.Server
	services []string
}

// NewChecker returns a checker for n that reports on the named gRPC services
// (and on the whole server, service "").
func NewChecker(n Node, services ...string) *Checker {
	return &Checker{node: n, grpc: health.NewServer(), services: append([]string{""}, services...)}
}

// GRPC is the grpc.health.v1 service to register.
func (c *Checker) GRPC() healthpb.HealthServer { return c.grpc }

// Run updates the gRPC health status every interval until ctx ends, then
// marks every service NOT_SERVING.
func (c *Checker) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		c.update()
		select {
		case <-ctx.Done():
			c.grpc.Shutdown()
			return
		case <-t.C:
		}
	}
}

func (c *Checker) update() {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ok, _ := c.node.Ready(); ok {
		st = healthpb.HealthCheckResponse_SERVING
	}
	for _, s := range c.services {
		c.grpc.SetServingStatus(s, st)
	}
}

// Handler returns the HTTP handler for /healthz, /readyz, /metrics and
// /debug/pprof/.
func Handler(n Node, reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ok, why := n.Ready(); !ok {
			http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
