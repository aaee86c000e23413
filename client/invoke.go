package client

import (
	"context"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	coordv1 "coord/api/coord/v1"
)

// maxRedirects bounds consecutive immediate retries after NOT_LEADER, so two
// nodes naming each other cannot make a call spin; further redirects back off.
const maxRedirects = 3

// callFunc performs one attempt of a call on cc. ctx carries the attempt's
// deadline and, for writes, the request id headers.
type callFunc func(ctx context.Context, cc grpc.ClientConnInterface) error

// target says where a call goes.
type target int

const (
	// toLeader sends to the known leader, discovering it when unknown and
	// rotating through the endpoints when no leader can be found.
	toLeader target = iota
	// toNearest sends to the first endpoint that works.
	toNearest
	// toAddr sends to one fixed address.
	toAddr
)

// policy describes how a call is routed and retried.
type policy struct {
	target target
	addr   string // for toAddr
	write  bool   // mutating: carries a request id; outcome tracking
	stream bool   // fn opens a stream that outlives the attempt
	// longPoll extends each attempt's timeout for calls that block by
	// design (a lock acquire that waits in the queue).
	longPoll time.Duration
}

// verdict is what the retry loop does after a failed attempt.
type verdict int

const (
	giveUp verdict = iota
	retryNow
	retryLater
)

// call tracks one call across its attempts.
type call struct {
	seq       uint64
	attempts  int
	redirects int // consecutive immediate redirects
	backoffs  int
	unknown   bool // a write attempt may have been applied
	last      error
}

// write runs fn against the leader as a mutating call: one sequence number
// for the call's whole life, sent with every attempt, so retries after an
// unknown outcome are deduplicated by the server.
func (c *Client) write(ctx context.Context, fn callFunc) error {
	return c.invoke(ctx, policy{target: toLeader, write: true}, fn)
}

// writeLong is write for a call that may block server-side for up to
// blockFor: each attempt may last that much longer than AttemptTimeout.
func (c *Client) writeLong(ctx context.Context, blockFor time.Duration, fn callFunc) error {
	return c.invoke(ctx, policy{target: toLeader, write: true, longPoll: blockFor}, fn)
}

// read runs fn as a read: linearizable reads go to the leader, stale reads
// to the nearest endpoint that works.
func (c *Client) read(ctx context.Context, consistency coordv1.ReadConsistency, fn callFunc) error {
	if consistency == coordv1.ReadConsistency_READ_CONSISTENCY_STALE {
		return c.invoke(ctx, policy{target: toNearest}, fn)
	}
	return c.invoke(ctx, policy{target: toLeader}, fn)
}

// maxAddrAttempts bounds the attempts of a call to one given node that
// finds it unreachable (Unavailable): a caller asking one node, such as
// "coordctl cluster hash" asking each member, learns that it is down in
// well under a second instead of at the end of its deadline.
const maxAddrAttempts = 3

// readAt runs fn against one address, retrying transient failures there
// (at most maxAddrAttempts attempts while the node is unreachable).
func (c *Client) readAt(ctx context.Context, addr string, fn callFunc) error {
	return c.invoke(ctx, policy{target: toAddr, addr: addr}, fn)
}

// openStream runs open (which should open a server stream bound to the ctx
// it receives and return once the stream is established, e.g. after its
// first message) against the leader, or the nearest node for
// READ_CONSISTENCY_STALE, retrying like a read. Each attempt is bounded by
// AttemptTimeout only until open returns; a stream that opened lives as long
// as the caller's ctx.
func (c *Client) openStream(ctx context.Context, consistency coordv1.ReadConsistency, open callFunc) error {
	p := policy{target: toLeader, stream: true}
	if consistency == coordv1.ReadConsistency_READ_CONSISTENCY_STALE {
		p.target = toNearest
	}
	return c.invoke(ctx, p, open)
}

// invoke is the retry loop shared by every call. Each iteration picks an
// address for the policy, runs one attempt, and on failure decides:
// permanent errors are returned; NOT_LEADER with a new leader address is
// retried there at once; other transient failures back off (full jitter)
// and retry with the same request id. The loop ends with the caller's ctx
// or Close, wrapping ctx.Err() (and ErrOutcomeUnknown when a write may have
// been applied).
func (c *Client) invoke(ctx context.Context, p policy, fn callFunc) error {
	if c.isClosed() {
		return ErrClosed
	}
	cl := &call{}
	if p.write {
		cl.seq = c.sess.begin()
		defer c.sess.end(cl.seq)
	}
	for {
		if err := c.stopped(ctx); err != nil {
			return cl.abandon(err)
		}
		addr := c.pick(ctx, p)
		err := c.attempt(ctx, p, cl, addr, fn)
		if err == nil {
			c.succeeded(p, addr)
			return nil
		}
		e, ok := asError(err)
		if ok {
			cl.record(e, p.write, ctxOver(ctx) != nil)
		}
		if stop := c.stopped(ctx); stop != nil {
			return cl.abandon(stop)
		}
		if !ok {
			return err
		}
		switch c.judge(p, addr, e, cl) {
		case giveUp:
			return e
		case retryNow:
			continue
		}
		if err := c.sleep(ctx, c.backoff(cl.backoffs)); err != nil {
			return cl.abandon(err)
		}
		cl.backoffs++
	}
}

// attempt runs fn once on addr.
func (c *Client) attempt(ctx context.Context, p policy, cl *call, addr string, fn callFunc) error {
	cc, err := c.conn(addr)
	if err != nil {
		return err
	}
	cl.attempts++
	if p.write {
		ctx = c.sess.outgoing(ctx, cl.seq)
	}
	if p.stream {
		return c.attemptStream(ctx, cc, fn)
	}
	actx, cancel := context.WithTimeout(ctx, c.cfg.AttemptTimeout+p.longPoll)
	defer cancel()
	return fn(actx, cc)
}

// attemptStream runs a stream-opening fn whose stream must survive the
// attempt: the attempt's context is cancelled only if fn fails or does not
// return within AttemptTimeout.
func (c *Client) attemptStream(ctx context.Context, cc grpc.ClientConnInterface, fn callFunc) error {
	sctx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(c.cfg.AttemptTimeout, cancel)
	err := fn(sctx, cc)
	if !timer.Stop() && err == nil {
		err = &Error{Code: codes.DeadlineExceeded, Message: "stream open timed out"}
	}
	if err != nil {
		cancel()
	}
	return err
}

// stopped returns the reason to stop retrying: ctx's error or ErrClosed.
func (c *Client) stopped(ctx context.Context) error {
	if err := ctxOver(ctx); err != nil {
		return err
	}
	if c.isClosed() {
		return ErrClosed
	}
	return nil
}

// ctxOver returns ctx's error, or context.DeadlineExceeded once its
// deadline has passed even if its timer has not fired yet (gRPC refuses to
// start an RPC in that window).
func ctxOver(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// record notes a failed attempt. An attempt cut short by the caller's
// context leaves the previous, more telling error as the last one, but a
// write it carried may still have been applied.
func (cl *call) record(e *Error, write bool, ctxDone bool) {
	if cl.last == nil || !ctxDone {
		cl.last = e
	}
	if write && !e.notApplied() {
		cl.unknown = true
	}
}

// abandon builds the error for a call stopped by ctx or Close.
func (cl *call) abandon(cause error) error {
	return &abandonedError{cause: cause, last: cl.last, attempts: cl.attempts, unknown: cl.unknown}
}

// pick chooses the address for the next attempt.
func (c *Client) pick(ctx context.Context, p policy) string {
	switch p.target {
	case toAddr:
		return p.addr
	case toNearest:
		return c.nearest.Load().(string)
	}
	if addr := c.leaderAddress(); addr != "" {
		return addr
	}
	c.rediscover(ctx)
	if addr := c.leaderAddress(); addr != "" {
		return addr
	}
	eps := c.Endpoints()
	return eps[(c.rr.Add(1)-1)%uint64(len(eps))]
}

// succeeded remembers a working endpoint for stale reads.
func (c *Client) succeeded(p policy, addr string) {
	if p.target == toNearest {
		c.nearest.Store(addr)
	}
}

// judge classifies a failed attempt on addr and updates the routing state.
func (c *Client) judge(p policy, addr string, e *Error, cl *call) verdict {
	if e.Reason == coordv1.ReasonNotLeader && p.target == toLeader {
		next := c.followLeader(e.LeaderID, e.LeaderAddress)
		if next != "" && next != addr && cl.redirects < maxRedirects {
			cl.redirects++
			c.log.Debug("coord client redirected", "from", addr, "to", next, "seq", cl.seq)
			return retryNow
		}
		if next == "" {
			c.forgetLeader(addr)
		}
		cl.redirects = 0
		return retryLater
	}
	if !e.retryable() || e.Reason == coordv1.ReasonNotLeader {
		return giveUp
	}
	cl.redirects = 0
	switch p.target {
	case toLeader:
		c.forgetLeader(addr)
	case toNearest:
		c.skipNearest(addr)
	case toAddr:
		if e.Code == codes.Unavailable && cl.attempts >= maxAddrAttempts {
			return giveUp // the node is down: say so rather than wait out ctx
		}
	}
	c.log.Debug("coord client retrying", "address", addr, "attempt", cl.attempts, "seq", cl.seq, "err", e)
	return retryLater
}

// skipNearest moves stale reads on to the endpoint after addr, unless
// another call already moved them.
func (c *Client) skipNearest(addr string) {
	eps := c.Endpoints()
	for i, ep := range eps {
		if ep == addr {
			c.nearest.CompareAndSwap(addr, eps[(i+1)%len(eps)])
			return
		}
	}
	c.nearest.CompareAndSwap(addr, eps[0])
}

// backoff returns a full-jitter delay: uniform in [0, min(MaxBackoff,
// BaseBackoff*2^n)].
func (c *Client) backoff(n int) time.Duration {
	ceiling := c.cfg.MaxBackoff
	if n < 30 {
		ceiling = min(ceiling, c.cfg.BaseBackoff<<n)
	}
	return time.Duration(rand.Int64N(int64(ceiling) + 1))
}

// sleep waits d, or until ctx ends or the client closes.
func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.root.Done():
		return ErrClosed
	}
}
