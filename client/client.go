package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	coordv1 "coord/api/coord/v1"
)

// minRediscoverInterval spaces out leader discoveries that found no leader,
// so that many failing calls do not flood the cluster with ListMembers.
const minRediscoverInterval = 50 * time.Millisecond

// Client talks to a coord cluster. It is safe for concurrent use; create one
// per process and share it. Close it when done.
type Client struct {
	cfg  Config
	log  *slog.Logger
	sess *session

	// root is cancelled by Close; background work (leader discovery) runs
	// under it.
	root   context.Context
	cancel context.CancelFunc
	bg     sync.WaitGroup

	rr      atomic.Uint64 // rotates leader-bound calls while no leader is known
	nearest atomic.Value  // string: the endpoint stale reads try first

	mu          sync.Mutex
	closed      bool
	conns       map[string]*grpc.ClientConn
	endpoints   []string          // configured endpoints, then discovered members
	members     map[string]string // member id -> gRPC address
	leaderID    string
	leaderAddr  string
	discovering chan struct{} // closed when the running discovery ends
	lastDiscov  time.Time     // when the last discovery that found no leader ended
}

// New connects to the cluster. It returns once some endpoint has answered
// ListMembers, from which the client learns the leader and every member's
// gRPC address; endpoints that are down do not matter as long as one
// answers within cfg.DialTimeout and ctx.
func New(ctx context.Context, cfg Config) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	sess, err := newSession()
	if err != nil {
		return nil, err
	}
	c := &Client{
		cfg:       cfg,
		log:       cfg.Logger,
		sess:      sess,
		conns:     make(map[string]*grpc.ClientConn),
		endpoints: append([]string(nil), cfg.Endpoints...),
		members:   make(map[string]string),
	}
	c.nearest.Store(cfg.Endpoints[0])
	c.root, c.cancel = context.WithCancel(context.Background())

	dctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if err := c.discover(dctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("client: no endpoint of %v answered: %w", cfg.Endpoints, err)
	}
	id, addr := c.Leader()
	c.log.Debug("coord client connected", "client_id", sess.id, "leader_id", id, "leader_address", addr)
	return c, nil
}

// Close closes every connection. Calls in progress fail with ErrClosed;
// later calls return ErrClosed at once. Close is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.bg.Wait()

	c.mu.Lock()
	conns := c.conns
	c.conns = nil
	c.mu.Unlock()
	var errs []error
	for _, cc := range conns {
		errs = append(errs, cc.Close())
	}
	return errors.Join(errs...)
}

// ClientID returns the random session id sent with every write.
func (c *Client) ClientID() uint64 { return c.sess.id }

// Leader returns the leader the client currently believes in (empty when
// none is known). It changes as the client follows redirects and failures.
func (c *Client) Leader() (id, addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leaderID, c.leaderAddr
}

// Endpoints returns every gRPC address the client knows: the configured
// endpoints followed by the members learnt from the cluster.
func (c *Client) Endpoints() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.endpoints...)
}

// conn returns the shared connection to addr, creating it on first use.
func (c *Client) conn(addr string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if cc, ok := c.conns[addr]; ok {
		return cc, nil
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  50 * time.Millisecond,
				Multiplier: 1.6,
				Jitter:     0.2,
				MaxDelay:   c.cfg.MaxBackoff,
			},
			MinConnectTimeout: c.cfg.DialTimeout,
		}),
	}
	cc, err := grpc.NewClient(addr, append(opts, c.cfg.DialOptions...)...)
	if err != nil {
		return nil, &Error{Code: codes.Unavailable, Message: fmt.Sprintf("dial %s: %v", addr, err), cause: err}
	}
	c.conns[addr] = cc
	return cc, nil
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// leaderAddress returns the known leader's gRPC address or "".
func (c *Client) leaderAddress() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leaderAddr
}

// followLeader records a leader named by a NOT_LEADER error. It resolves a
// missing address from the member list and reports the address to use, or
// "" when the leader's address is unknown.
func (c *Client) followLeader(id, addr string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if addr == "" {
		addr = c.members[id]
	}
	if addr == "" {
		return ""
	}
	if addr != c.leaderAddr {
		c.log.Debug("coord client following leader", "leader_id", id, "leader_address", addr)
	}
	c.leaderID, c.leaderAddr = id, addr
	c.endpoints = appendUnique(c.endpoints, addr)
	return addr
}

// forgetLeader clears the leader if it is still addr (another call may have
// learnt a newer one meanwhile).
func (c *Client) forgetLeader(addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leaderAddr == addr && addr != "" {
		c.log.Debug("coord client lost leader", "leader_id", c.leaderID, "leader_address", addr)
		c.leaderID, c.leaderAddr = "", ""
	}
}

// setLeaderID records a leader id (after a transfer), resolving its address
// from the member list; an unknown address leaves the leader unknown.
func (c *Client) setLeaderID(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leaderID, c.leaderAddr = "", ""
	if addr := c.members[id]; addr != "" {
		c.leaderID, c.leaderAddr = id, addr
	}
}

// applyMembers records a membership answer: every member's gRPC address
// and, when the answer names one with a known address, the leader.
// Members listed without a leader keep the current leader.
func (c *Client) applyMembers(leaderID string, members []*coordv1.Member) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(members) > 0 {
		c.members = make(map[string]string, len(members))
		eps := append([]string(nil), c.cfg.Endpoints...)
		for _, m := range members {
			if m.GetGrpcAddress() == "" {
				continue
			}
			c.members[m.GetId()] = m.GetGrpcAddress()
			eps = appendUnique(eps, m.GetGrpcAddress())
		}
		c.endpoints = eps
	}
	if addr := c.members[leaderID]; leaderID != "" && addr != "" {
		c.leaderID, c.leaderAddr = leaderID, addr
	}
}

// memberAddress returns the gRPC address of member id from the last
// membership answer.
func (c *Client) memberAddress(id string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.members[id]
}
