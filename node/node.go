package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"

	"coord/fsm"
)

// logCacheSize is how many recent entries raft.LogCache keeps in memory in
// front of raft.db, so that replicating to a follower a few thousand entries
// behind does not read the file.
const logCacheSize = 4096

// Node is one member of a coord cluster.
type Node struct {
	cfg   Config
	log   *slog.Logger
	raft  *raft.Raft
	fsm   *fsm.FSM
	store *raftboltdb.BoltStore
	logs  raft.LogStore
	snaps *raft.FileSnapshotStore
	trans raft.Transport
	ident *identity

	readyTerm atomic.Uint64 // term in which this node, as leader, passed its barrier
	verifier  verifier

	notifyCh chan bool
	stop     context.CancelFunc
	wg       sync.WaitGroup
	closeMu  sync.Mutex
	closed   bool
}

// New opens the data directory and starts Raft.
func New(cfg Config) (*Node, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data-dir: %w", err)
	}
	n := &Node{cfg: cfg, log: cfg.Logger, notifyCh: make(chan bool, 16)}
	ok := false
	defer func() {
		if !ok {
			n.closeStores()
		}
	}()
	var err error
	if n.ident, err = loadIdentity(cfg.DataDir, cfg.ID); err != nil {
		return nil, err
	}
	if err := n.openStores(); err != nil {
		return nil, err
	}
	if err := n.catchUpFromSnapshot(); err != nil {
		return nil, err
	}
	if err := n.ident.checkCluster(n.fsm); err != nil {
		return nil, err
	}
	if err := n.startRaft(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.stop = cancel
	n.verifier.r, n.verifier.timeout = n.raft, cfg.ElectionTimeout
	n.wg.Add(2)
	go n.leadershipLoop(ctx)
	go n.identityLoop(ctx)
	ok = true
	return n, nil
}

func (n *Node) openStores() error {
	var err error
	n.store, err = raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(n.cfg.DataDir, "raft.db"),
		BoltOptions: &bolt.Options{Timeout: time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType},
	})
	if err != nil {
		return fmt.Errorf("open raft.db: %w", err)
	}
	if n.logs, err = raft.NewLogCache(logCacheSize, n.store); err != nil {
		return err
	}
	n.snaps, err = raft.NewFileSnapshotStoreWithLogger(n.cfg.DataDir, n.cfg.SnapshotRetain, n.hclog("snapshots"))
	if err != nil {
		return fmt.Errorf("open snapshot store: %w", err)
	}
	var obs fsm.Observer
	if n.cfg.Metrics != nil {
		obs = n.cfg.Metrics
	}
	n.fsm, err = fsm.Open(fsm.Config{
		Path:     filepath.Join(n.cfg.DataDir, "state.db"),
		Machines: n.cfg.Machines,
		Logger:   n.log,
		Observer: obs,
		OnHalt:   n.cfg.OnHalt,
		// state.db commits are not fsynced: every applied entry is durable
		// in raft.db, and after a machine crash state.db is rebuilt from
		// the newest snapshot and the log (fsm/durability.go).
	})
	return err
}

// catchUpFromSnapshot restores the newest snapshot when state.db is behind
// it, so that Raft (which does not restore on start) finds state.db at or
// past its snapshot index.
func (n *Node) catchUpFromSnapshot() error {
	metas, err := n.snaps.List()
	if err != nil {
		return err
	}
	if len(metas) == 0 {
		return n.checkLogCoversState()
	}
	latest := metas[0]
	if n.fsm.AppliedIndex() >= latest.Index {
		return nil
	}
	n.log.Info("state.db is behind the latest snapshot; restoring it",
		"applied", n.fsm.AppliedIndex(), "snapshot", latest.ID, "snapshot_index", latest.Index)
	_, rc, err := n.snaps.Open(latest.ID)
	if err != nil {
		return fmt.Errorf("open snapshot %s: %w", latest.ID, err)
	}
	if err := n.fsm.Restore(rc); err != nil {
		return err
	}
	return n.checkLogCoversState()
}

// checkLogCoversState refuses to start when the Raft log no longer holds
// the entries after state.db's applied index (state.db was lost or moved
// aside and no snapshot covers the compacted part of the log).
func (n *Node) checkLogCoversState() error {
	first, err := n.logs.FirstIndex()
	if err != nil {
		return err
	}
	if applied := n.fsm.AppliedIndex(); first > applied+1 {
		return fmt.Errorf("data-dir: state.db is at index %d but the Raft log starts at %d and no snapshot covers the gap; restore the snapshots directory or rejoin this node with an empty data dir", applied, first)
	}
	return nil
}

func (n *Node) raftConfig() *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.cfg.ID)
	rc.HeartbeatTimeout = n.cfg.HeartbeatTimeout
	rc.ElectionTimeout = n.cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = n.cfg.LeaderLeaseTimeout
	rc.CommitTimeout = n.cfg.CommitTimeout
	rc.MaxAppendEntries = n.cfg.MaxAppendEntries
	rc.BatchApplyCh = true
	rc.SnapshotThreshold = n.cfg.SnapshotThreshold
	rc.SnapshotInterval = n.cfg.SnapshotInterval
	rc.TrailingLogs = n.cfg.TrailingLogs
	rc.NoSnapshotRestoreOnStart = true
	rc.NotifyCh = n.notifyCh
	rc.Logger = n.hclog("raft")
	return rc
}

func (n *Node) hclog(name string) hclog.Logger {
	out := n.cfg.RaftLogOutput
	if out == nil {
		out = os.Stderr
	}
	level := n.cfg.RaftLogLevel
	if level == "" {
		level = "warn"
	}
	return hclog.New(&hclog.LoggerOptions{Name: name + "[" + n.cfg.ID + "]", Output: out, Level: hclog.LevelFromString(level), JSONFormat: n.cfg.RaftLogJSON})
}

func (n *Node) startRaft() error {
	n.trans = n.cfg.Transport
	if n.trans == nil {
		addr, err := resolveTCP(n.cfg.RaftAdvertise)
		if err != nil {
			return fmt.Errorf("raft-advertise: %w", err)
		}
		tcp, err := newTCPTransport(n.cfg.RaftBind, addr, n.cfg.DialMap, n.hclog("transport"))
		if err != nil {
			return fmt.Errorf("raft-addr: listen on %s: %w", n.cfg.RaftBind, err)
		}
		n.trans = tcp
	}
	full, ok := n.trans.(confirmTransport)
	if !ok {
		return fmt.Errorf("transport %T does not support pre-vote and close", n.trans)
	}
	acks := newAckTransport(full)
	n.verifier.acks, n.verifier.self = acks, raft.ServerID(n.cfg.ID)
	rc := n.raftConfig()
	existing, err := raft.HasExistingState(n.logs, n.store, n.snaps)
	if err != nil {
		return err
	}
	if n.cfg.Bootstrap && !existing {
		var conf raft.Configuration
		for _, p := range n.cfg.InitialCluster {
			conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Address)})
		}
		if err := raft.BootstrapCluster(rc, n.logs, n.store, n.snaps, acks, conf); err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
		n.log.Info("bootstrapped a new cluster", "members", len(conf.Servers))
	}
	n.raft, err = raft.NewRaft(rc, n.fsm, n.logs, n.store, n.snaps, acks)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	return nil
}

// Close shuts the node down. A leader first tries to hand leadership to a
// peer so the cluster does not wait for an election timeout.
func (n *Node) Close() error {
	n.closeMu.Lock()
	defer n.closeMu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	if n.raft.State() == raft.Leader && n.voters() > 1 {
		if err := n.raft.LeadershipTransfer().Error(); err != nil {
			n.log.Warn("leadership transfer on shutdown failed", "error", err)
		}
	}
	n.stop()
	err := n.raft.Shutdown().Error()
	n.wg.Wait()
	if c, ok := n.trans.(raft.WithClose); ok && n.cfg.Transport == nil {
		err = errors.Join(err, c.Close())
	}
	return errors.Join(err, n.closeStores())
}

// Kill stops the node abruptly, as a crash would: no leadership transfer.
// Tests use it; state on disk stays as it is.
func (n *Node) Kill() error {
	n.closeMu.Lock()
	defer n.closeMu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	n.stop()
	err := n.raft.Shutdown().Error()
	n.wg.Wait()
	if c, ok := n.trans.(raft.WithClose); ok && n.cfg.Transport == nil {
		err = errors.Join(err, c.Close())
	}
	return errors.Join(err, n.closeStores())
}

func (n *Node) closeStores() error {
	var err error
	if n.fsm != nil {
		err = errors.Join(err, n.fsm.Close())
	}
	if n.store != nil {
		err = errors.Join(err, n.store.Close())
	}
	return err
}

func (n *Node) voters() int {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return 0
	}
	c := 0
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			c++
		}
	}
	return c
}

// ID is the node's id.
func (n *Node) ID() string { return n.cfg.ID }

// FSM exposes the state machine (read access for servers and tests).
func (n *Node) FSM() *fsm.FSM { return n.fsm }

// Raft exposes the Raft instance for tests and status.
func (n *Node) Raft() *raft.Raft { return n.raft }

// IsLeader reports whether this node is the leader.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }
