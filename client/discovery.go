package client

import (
	"context"
	"time"

	coordv1 "coord/api/coord/v1"
)

// membersAnswer is one endpoint's reply to ListMembers.
type membersAnswer struct {
	addr string
	resp *coordv1.ListMembersResponse
	err  error
}

// discover asks every known endpoint for the member list at once and
// applies the first answer that names a leader with a gRPC address, or else
// the first answer at all. It returns nil when some endpoint answered and
// otherwise the last error (or ctx's error).
func (c *Client) discover(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	addrs := c.Endpoints()
	answers := make(chan membersAnswer, len(addrs))
	for _, addr := range addrs {
		go func() { answers <- c.listMembers(ctx, addr) }()
	}
	var first *coordv1.ListMembersResponse
	var lastErr error
	for range addrs {
		a := <-answers
		if a.err != nil {
			lastErr = a.err
			continue
		}
		if leaderAddr(a.resp) != "" {
			c.applyMembers(a.resp.GetLeaderId(), a.resp.GetMembers())
			return nil
		}
		if first == nil {
			first = a.resp
		}
	}
	if first != nil {
		c.applyMembers("", first.GetMembers())
		return nil
	}
	if lastErr == nil {
		lastErr = ctx.Err()
	}
	return lastErr
}

// listMembers calls ListMembers on addr, bounded by AttemptTimeout.
func (c *Client) listMembers(ctx context.Context, addr string) membersAnswer {
	cc, err := c.conn(addr)
	if err != nil {
		return membersAnswer{addr: addr, err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.AttemptTimeout)
	defer cancel()
	resp, err := coordv1.NewClusterServiceClient(cc).ListMembers(ctx, &coordv1.ListMembersRequest{})
	if err != nil {
		if e, ok := asError(err); ok {
			err = e
		}
		c.log.Debug("coord client ListMembers failed", "address", addr, "err", err)
	}
	return membersAnswer{addr: addr, resp: resp, err: err}
}

// leaderAddr returns the gRPC address of the leader named in resp, or "".
func leaderAddr(resp *coordv1.ListMembersResponse) string {
	if resp.GetLeaderId() == "" {
		return ""
	}
	for _, m := range resp.GetMembers() {
		if m.GetId() == resp.GetLeaderId() {
			return m.GetGrpcAddress()
		}
	}
	return ""
}

// rediscover runs one shared discovery in the background (under the
// client's root context, bounded by AttemptTimeout) and waits for it or for
// ctx. Concurrent callers share the running discovery; right after one that
// found no leader, it returns at once.
func (c *Client) rediscover(ctx context.Context) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	done := c.discovering
	if done == nil {
		if time.Since(c.lastDiscov) < minRediscoverInterval {
			c.mu.Unlock()
			return
		}
		done = make(chan struct{})
		c.discovering = done
		c.bg.Add(1)
		go c.runDiscovery(done)
	}
	c.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// runDiscovery is rediscover's background half.
func (c *Client) runDiscovery(done chan struct{}) {
	defer c.bg.Done()
	ctx, cancel := context.WithTimeout(c.root, c.cfg.AttemptTimeout)
	defer cancel()
	err := c.discover(ctx)
	c.mu.Lock()
	c.discovering = nil
	if c.leaderAddr == "" {
		c.lastDiscov = time.Now()
	}
	c.mu.Unlock()
	close(done)
	if err != nil {
		c.log.Debug("coord client discovery failed", "err", err)
	}
}
