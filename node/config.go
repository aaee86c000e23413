package node

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"coord/internal/sm"
)

// MaxCommandBytes bounds one encoded command.
const MaxCommandBytes = 4 << 20

// Peer is a member of the initial cluster.
type Peer struct {
	ID      string
	Address string // Raft address
}

// Config configures a node.
type Config struct {
	// ID is the node's id, unique in the cluster and stable across restarts.
	ID string
	// DataDir holds raft.db, state.db, snapshots/ and node.json.
	DataDir string
	// RaftBind is the address the Raft transport listens on.
	RaftBind string
	// RaftAdvertise is the address peers reach this node at (default RaftBind).
	RaftAdvertise string
	// GRPCAdvertise and HTTPAdvertise are registered in the cluster so that
	// followers can forward to the leader and operators can find every node.
	GRPCAdvertise string
	HTTPAdvertise string
	// Bootstrap forms a new cluster from InitialCluster when the data
	// directory holds no Raft state; it is ignored otherwise.
	Bootstrap      bool
	InitialCluster []Peer

	// Raft timing and log compaction.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	MaxAppendEntries   int
	SnapshotThreshold  uint64
	SnapshotInterval   time.Duration
	TrailingLogs       uint64
	SnapshotRetain     int
	// TickInterval is how often the leader checks for due work.
	TickInterval time.Duration
	// ApplyTimeout bounds a write when the caller's context has no deadline.
	ApplyTimeout time.Duration

	// Machines are the primitives served by the state machine.
	Machines []sm.Machine
	// Transport overrides the TCP transport (tests use raft's in-memory one).
	Transport raft.Transport
	// DialMap makes the TCP transport dial DialMap[addr] whenever Raft asks
	// it to connect to peer address addr (peers not in the map are dialled
	// as they are). Raft's configuration keeps the peers' own addresses. It
	// serves NAT and port forwarding, and routing peer links through proxies.
	DialMap map[string]string
	// Clock is the leader's wall clock (default time.Now).
	Clock func() time.Time
	// Logger receives the node's logs; RaftLogOutput receives Raft's.
	Logger        *slog.Logger
	RaftLogOutput io.Writer
	RaftLogLevel  string
	RaftLogJSON   bool
	// Metrics receives timings (optional).
	Metrics Metrics
	// OnHalt overrides what happens when the state machine meets a corrupt
	// entry (default: log and panic).
	OnHalt func(error)
}

// Metrics receives the node's timings. Implementations must not block.
type Metrics interface {
	ApplyObserved(d time.Duration, ok bool)
	BatchApplied(entries int, d time.Duration)
	SnapshotPersisted(bytes int64, d time.Duration)
	Restored(d time.Duration)
}

func (c *Config) setDefaults() {
	if c.RaftAdvertise == "" {
		c.RaftAdvertise = c.RaftBind
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.HeartbeatTimeout, time.Second)
	def(&c.ElectionTimeout, time.Second)
	def(&c.LeaderLeaseTimeout, 500*time.Millisecond)
	def(&c.CommitTimeout, 5*time.Millisecond)
	def(&c.SnapshotInterval, 2*time.Minute)
	def(&c.TickInterval, 50*time.Millisecond)
	def(&c.ApplyTimeout, 10*time.Second)
	if c.MaxAppendEntries == 0 {
		c.MaxAppendEntries = 256
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 10240
	}
	if c.SnapshotRetain == 0 {
		c.SnapshotRetain = 2
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports the first configuration problem, naming the setting.
func (c *Config) Validate() error {
	if c.ID == "" {
		return fmt.Errorf("id: must be set")
	}
	if strings.ContainsAny(c.ID, " =,\t\n") {
		return fmt.Errorf("id: %q must not contain spaces, '=' or ','", c.ID)
	}
	if c.DataDir == "" {
		return fmt.Errorf("data-dir: must be set")
	}
	if c.Transport == nil {
		if err := checkHostPort("raft-addr", c.RaftBind); err != nil {
			return err
		}
		if err := checkHostPort("raft-advertise", c.RaftAdvertise); err != nil {
			return err
		}
		if host, _, _ := net.SplitHostPort(c.RaftAdvertise); host == "" || host == "0.0.0.0" || host == "::" {
			return fmt.Errorf("raft-advertise: %q is not an address peers can reach; set --raft-advertise", c.RaftAdvertise)
		}
	}
	for from, to := range c.DialMap {
		if err := checkHostPort("raft-dial-map", from); err != nil {
			return err
		}
		if err := checkHostPort("raft-dial-map", to); err != nil {
			return err
		}
	}
	if c.Bootstrap {
		if err := checkInitialCluster(c.ID, c.InitialCluster, c.Transport == nil); err != nil {
			return err
		}
	}
	if c.ElectionTimeout < c.HeartbeatTimeout {
		return fmt.Errorf("election-timeout: %v must be at least heartbeat-timeout %v", c.ElectionTimeout, c.HeartbeatTimeout)
	}
	return nil
}

func checkHostPort(flag, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s: %q is not host:port: %v", flag, addr, err)
	}
	_ = host
	if _, err := net.LookupPort("tcp", port); err != nil || port == "" {
		return fmt.Errorf("%s: %q has an invalid port", flag, addr)
	}
	return nil
}

func checkInitialCluster(self string, peers []Peer, tcp bool) error {
	if len(peers) == 0 {
		return fmt.Errorf("initial-cluster: must list the members when bootstrapping")
	}
	seen := map[string]bool{}
	found := false
	for _, p := range peers {
		if seen[p.ID] {
			return fmt.Errorf("initial-cluster: member %q listed twice", p.ID)
		}
		seen[p.ID] = true
		if tcp {
			if err := checkHostPort("initial-cluster", p.Address); err != nil {
				return err
			}
		}
		if p.ID == self {
			found = true
		}
	}
	if !found {
		return fmt.Errorf("initial-cluster: does not list this node's id %q", self)
	}
	return nil
}

// ParseInitialCluster parses "id=host:port,id=host:port".
func ParseInitialCluster(s string) ([]Peer, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []Peer
	for _, part := range strings.Split(s, ",") {
		id, addr, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("initial-cluster: %q is not id=host:port", part)
		}
		out = append(out, Peer{ID: id, Address: addr})
	}
	return out, nil
}
