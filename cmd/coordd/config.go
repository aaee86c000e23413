package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"coord/node"
)

// options are coordd's settings, from flags or COORD_* environment variables
// (a flag given on the command line wins).
type options struct {
	id, dataDir                       string
	raftAddr, raftAdvertise           string
	raftDialMap                       string
	grpcAddr, grpcAdvertise           string
	httpAddr, httpAdvertise           string
	bootstrap                         bool
	initialCluster, join              string
	heartbeatTimeout, electionTimeout time.Duration
	snapshotThreshold, trailingLogs   uint64
	snapshotInterval                  time.Duration
	logLevel, logFormat, raftLogLevel string
	showVersion                       bool
}

func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("coordd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.id, "id", "", "node id, unique in the cluster and stable across restarts (required)")
	fs.StringVar(&o.dataDir, "data-dir", "", "directory for the Raft log, raft.db, state.db and snapshots (required)")
	fs.StringVar(&o.raftAddr, "raft-addr", "127.0.0.1:7101", "address the Raft transport listens on")
	fs.StringVar(&o.raftAdvertise, "raft-advertise", "", "address peers reach this node's Raft transport at (default --raft-addr)")
	fs.StringVar(&o.raftDialMap, "raft-dial-map", "", "from=to[,from=to...]: dial address to whenever Raft connects to peer address from (NAT, port forwarding, proxies)")
	fs.StringVar(&o.grpcAddr, "grpc-addr", "127.0.0.1:7001", "address the gRPC API listens on")
	fs.StringVar(&o.grpcAdvertise, "grpc-advertise", "", "address clients reach the gRPC API at (default --grpc-addr)")
	fs.StringVar(&o.httpAddr, "http-addr", "127.0.0.1:7201", "address for /healthz, /readyz, /metrics and /debug/pprof (empty: off)")
	fs.StringVar(&o.httpAdvertise, "http-advertise", "", "address operators reach the HTTP endpoints at (default --http-addr)")
	fs.BoolVar(&o.bootstrap, "bootstrap", false, "form a new cluster from --initial-cluster if the data dir has no state (ignored otherwise)")
	fs.StringVar(&o.initialCluster, "initial-cluster", "", "initial members as id=raft-host:port,... (with --bootstrap)")
	fs.StringVar(&o.join, "join", "", "gRPC endpoints (host:port,...) of a running cluster to join as a voter")
	fs.DurationVar(&o.heartbeatTimeout, "heartbeat-timeout", 500*time.Millisecond, "Raft heartbeat timeout: a follower stands for election after hearing nothing from the leader for this long")
	fs.DurationVar(&o.electionTimeout, "election-timeout", 500*time.Millisecond, "Raft election timeout: how long a candidate waits for votes")
	fs.Uint64Var(&o.snapshotThreshold, "snapshot-threshold", 8192, "log entries between snapshots")
	fs.DurationVar(&o.snapshotInterval, "snapshot-interval", 2*time.Minute, "how often to check whether a snapshot is due")
	fs.Uint64Var(&o.trailingLogs, "trailing-logs", 10240, "log entries kept after a snapshot, for slow followers")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.raftLogLevel, "raft-log-level", "warn", "hashicorp/raft's own log level")
	fs.BoolVar(&o.showVersion, "version", false, "print the version and exit")
	if err := applyEnv(fs, getenv); err != nil {
		return nil, err
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return o, o.check()
}

// applyEnv sets each flag from COORD_<NAME> (dashes to underscores) before
// the command line is parsed, so flags override the environment.
func applyEnv(fs *flag.FlagSet, getenv func(string) string) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		key := "COORD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(key); v != "" && err == nil {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s: invalid value %q for --%s: %v", key, v, f.Name, e)
			}
		}
	})
	return err
}

func (o *options) check() error {
	if o.showVersion {
		return nil
	}
	if o.raftAdvertise == "" {
		o.raftAdvertise = o.raftAddr
	}
	if o.grpcAdvertise == "" {
		o.grpcAdvertise = o.grpcAddr
	}
	if o.httpAdvertise == "" {
		o.httpAdvertise = o.httpAddr
	}
	switch o.logLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("--log-level: %q is not debug, info, warn or error", o.logLevel)
	}
	switch o.logFormat {
	case "text", "json":
	default:
		return fmt.Errorf("--log-format: %q is not text or json", o.logFormat)
	}
	if o.bootstrap && o.join != "" {
		return fmt.Errorf("--join: cannot be combined with --bootstrap")
	}
	if o.snapshotThreshold == 0 {
		return fmt.Errorf("--snapshot-threshold: must be positive")
	}
	if o.heartbeatTimeout < 10*time.Millisecond {
		return fmt.Errorf("--heartbeat-timeout: %v is too short (minimum 10ms)", o.heartbeatTimeout)
	}
	return nil
}

// nodeConfig turns the options into a node configuration.
func (o *options) nodeConfig() (node.Config, error) {
	peers, err := node.ParseInitialCluster(o.initialCluster)
	if err != nil {
		return node.Config{}, fmt.Errorf("--%v", err)
	}
	dialMap, err := node.ParseDialMap(o.raftDialMap)
	if err != nil {
		return node.Config{}, fmt.Errorf("--%v", err)
	}
	cfg := node.Config{
		ID: o.id, DataDir: o.dataDir,
		RaftBind: o.raftAddr, RaftAdvertise: o.raftAdvertise,
		GRPCAdvertise: o.grpcAdvertise, HTTPAdvertise: o.httpAdvertise,
		Bootstrap: o.bootstrap, InitialCluster: peers,
		HeartbeatTimeout: o.heartbeatTimeout, ElectionTimeout: o.electionTimeout,
		LeaderLeaseTimeout: o.heartbeatTimeout / 2,
		SnapshotThreshold:  o.snapshotThreshold, SnapshotInterval: o.snapshotInterval,
		TrailingLogs: o.trailingLogs, RaftLogLevel: o.raftLogLevel, RaftLogJSON: o.logFormat == "json",
		RaftLogOutput: os.Stderr, DialMap: dialMap,
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("--%v", err)
	}
	return cfg, nil
}
