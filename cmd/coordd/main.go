// Command coordd runs one node of a coord cluster.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"coord/eventlog"
	"coord/health"
	"coord/internal/sm"
	"coord/kv"
	"coord/locks"
	"coord/node"
	"coord/server"
)

var version = "dev"

func main() {
	tuneGC()
	o, err := parseOptions(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "coordd: %v\n", err)
		os.Exit(2)
	}
	if o.showVersion {
		fmt.Println(version)
		return
	}
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "coordd: %v\n", err)
		os.Exit(1)
	}
}

// machines lists the primitives this build serves.
func machines() []sm.Machine { return []sm.Machine{kv.Machine{}, locks.Machine{}, eventlog.Machine{}} }

func newLogger(o *options) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(o.logLevel))
	hopts := &slog.HandlerOptions{Level: level}
	if o.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, hopts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, hopts))
}

// run starts the node and its servers and blocks until a signal arrives.
func run(o *options) error {
	log := newLogger(o).With("node", o.id)
	cfg, err := o.nodeConfig()
	if err != nil {
		return err
	}
	grpcLis, err := net.Listen("tcp", o.grpcAddr)
	if err != nil {
		return fmt.Errorf("--grpc-addr: %w", err)
	}
	var httpLis net.Listener
	if o.httpAddr != "" {
		if httpLis, err = net.Listen("tcp", o.httpAddr); err != nil {
			grpcLis.Close()
			return fmt.Errorf("--http-addr: %w", err)
		}
	}
	var n *node.Node
	metrics := health.NewMetrics(func() health.RaftStats { return raftStats(n) })
	cfg.Logger, cfg.Metrics, cfg.Machines = log, metrics, machines()
	if n, err = node.New(cfg); err != nil {
		grpcLis.Close()
		if httpLis != nil {
			httpLis.Close()
		}
		return err
	}
	log.Info("coordd started", "version", version, "raft", o.raftAdvertise, "grpc", o.grpcAdvertise, "http", o.httpAdvertise)

	srv := server.New(n, log, version)
	checker := health.NewChecker(n, "coord.v1.ClusterService", "coord.v1.KVService", "coord.v1.LockService", "coord.v1.EventLogService")
	g := grpc.NewServer(
		grpc.ChainUnaryInterceptor(metrics.UnaryInterceptor(), srv.UnaryInterceptor()),
		grpc.ChainStreamInterceptor(metrics.StreamInterceptor()),
		grpc.MaxRecvMsgSize(node.MaxCommandBytes+(1<<20)),
		grpc.NumStreamWorkers(streamWorkers),
	)
	srv.Register(g)
	healthpb.RegisterHealthServer(g, checker.GRPC())
	reflection.Register(g)
	go func() {
		if err := g.Serve(grpcLis); err != nil {
			log.Error("gRPC server stopped", "error", err)
		}
	}()
	var hs *http.Server
	if httpLis != nil {
		hs = &http.Server{Handler: health.Handler(n, metrics.Registry), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := hs.Serve(httpLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("HTTP server stopped", "error", err)
			}
		}()
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go checker.Run(ctx, 250*time.Millisecond)
	joinErr := make(chan error, 1)
	go func() { joinErr <- maybeJoin(ctx, log, n, o) }()
	go srv.KeepRegistered(ctx, o.grpcAdvertise)

	select {
	case <-ctx.Done():
		log.Info("signal received; shutting down")
	case err = <-joinErr:
		if err == nil {
			<-ctx.Done()
			log.Info("signal received; shutting down")
		}
	}
	shutdown(log, n, g, srv, hs)
	return err
}

func shutdown(log *slog.Logger, n *node.Node, g *grpc.Server, srv *server.Server, hs *http.Server) {
	done := make(chan struct{})
	go func() { g.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		g.Stop()
	}
	if err := n.Close(); err != nil {
		log.Warn("node shutdown", "error", err)
	}
	_ = srv.Close()
	if hs != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
	}
	log.Info("stopped")
}

func raftStats(n *node.Node) health.RaftStats {
	if n == nil {
		return health.RaftStats{Role: "shutdown"}
	}
	st := n.Status()
	return health.RaftStats{
		Role: st.Role, Term: st.Term, CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex,
		LastLogIndex: st.LastLogIndex, LastSnapshotIndex: st.LastSnapshotIndex, Ready: st.Ready,
	}
}
