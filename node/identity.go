package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"coord/fsm"
)

// identity is node.json: which node and cluster a data directory belongs to.
// A node refuses to start on a data directory of another node id, and halts
// if its state machine ever reports a cluster id other than the recorded one.
type identity struct {
	mu        sync.Mutex
	path      string
	NodeID    string `json:"node_id"`
	ClusterID string `json:"cluster_id,omitempty"`
}

func loadIdentity(dir, id string) (*identity, error) {
	ident := &identity{path: filepath.Join(dir, "node.json")}
	b, err := os.ReadFile(ident.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		ident.NodeID = id
		return ident, ident.save()
	case err != nil:
		return nil, fmt.Errorf("data-dir: read %s: %w", ident.path, err)
	}
	if err := json.Unmarshal(b, ident); err != nil {
		return nil, fmt.Errorf("data-dir: %s is corrupt: %w", ident.path, err)
	}
	if ident.NodeID != id {
		return nil, fmt.Errorf("data-dir: %s belongs to node %q, not %q; use that node's id or an empty directory", dir, ident.NodeID, id)
	}
	return ident, nil
}

func (i *identity) save() error {
	b, err := json.MarshalIndent(i, "", "  ")
	if err != nil {
		return err
	}
	tmp := i.path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, i.path)
}

// cluster returns the recorded cluster id.
func (i *identity) cluster() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.ClusterID
}

// CheckJoin refuses to join a cluster other than the one recorded.
func (i *identity) checkJoin(clusterID string) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.ClusterID != "" && clusterID != "" && i.ClusterID != clusterID {
		return fmt.Errorf("data-dir: belongs to cluster %s, not %s; use an empty directory to join", i.ClusterID, clusterID)
	}
	return nil
}

// checkCluster compares the recorded cluster id with the state machine's and
// records the latter when none is recorded yet.
func (i *identity) checkCluster(f *fsm.FSM) error {
	meta, err := f.Meta()
	if err != nil {
		return err
	}
	if meta.ClusterId == "" {
		return nil
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	switch i.ClusterID {
	case meta.ClusterId:
		return nil
	case "":
		i.ClusterID = meta.ClusterId
		return i.save()
	default:
		return fmt.Errorf("data-dir: state belongs to cluster %s but node.json records cluster %s", meta.ClusterId, i.ClusterID)
	}
}

// identityLoop records the cluster id once the state machine has one, and
// halts the node if it ever disagrees with the record.
func (n *Node) identityLoop(ctx context.Context) {
	defer n.wg.Done()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := n.ident.checkCluster(n.fsm); err != nil {
			n.log.Error("cluster identity mismatch; shutting down", "error", err)
			go n.Kill()
			return
		}
	}
}

// ClusterID is the cluster's id (empty until the first leader has set it).
func (n *Node) ClusterID() string {
	if id := n.ident.cluster(); id != "" {
		return id
	}
	if m, err := n.fsm.Meta(); err == nil {
		return m.ClusterId
	}
	return ""
}

// CheckJoin refuses to join clusterID when the data directory belongs to another cluster.
func (n *Node) CheckJoin(clusterID string) error { return n.ident.checkJoin(clusterID) }
