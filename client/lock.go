package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	coordv1 "coord/api/coord/v1"
)

// ErrLockHeld is returned by TryLock when others hold the lock; the error is
// a *LockHeldError naming them.
var ErrLockHeld = errors.New("coord: lock is held")

// ErrLockLost is the cause of a Lock's Done channel closing because the lock
// is, or may be, lost: its lease expired or was revoked, or keep-alives
// failed until the lease's validity deadline passed.
var ErrLockLost = errors.New("coord: lock lost")

// LockHeldError reports the current holders of a lock TryLock did not get.
type LockHeldError struct {
	Name    string
	Holders []*coordv1.LockHolder
}

func (e *LockHeldError) Error() string {
	if len(e.Holders) == 0 {
		return fmt.Sprintf("lock %q is not available", e.Name)
	}
	h := e.Holders[0]
	return fmt.Sprintf("lock %q is held by %s (token %d)", e.Name, h.Owner, h.Token)
}

// Is makes errors.Is(err, ErrLockHeld) true.
func (e *LockHeldError) Is(target error) bool { return target == ErrLockHeld }

// Lock is a held lock. Its lease is kept alive in the background until
// Unlock or until the lock is lost; Done and Ctx tell when that happens.
//
// A Lock treats itself as lost at its validity deadline: the send time of
// the last successful keep-alive plus the TTL, minus a safety margin for
// clock rate. The server's lease cannot have ended before then, so work
// guarded by Ctx stops before anyone else can be granted the lock. Always
// pass Token (or Fence) to the resources you touch as well: fencing is what
// makes a holder that stalled past its deadline harmless.
type Lock struct {
	c     *Client
	name  string
	token uint64
	lease uint64
	owner string
	ttl   time.Duration
	own   bool // the Lock created the lease and renews and revokes it

	ctx    context.Context
	cancel context.CancelCauseFunc

	mu         sync.Mutex
	validUntil time.Time
	holdCap    time.Time     // local deadline of the grant's max-hold (zero: none)
	stopped    chan struct{} // closed by Unlock to stop the keep-alive
	wg         sync.WaitGroup
	once       sync.Once
}

// Name is the lock's name.
func (l *Lock) Name() string { return l.name }

// Token is the grant's fencing token.
func (l *Lock) Token() uint64 { return l.token }

// LeaseID is the lease the lock is held under.
func (l *Lock) LeaseID() uint64 { return l.lease }

// Owner is the lease's owner string.
func (l *Lock) Owner() string { return l.owner }

// Fence returns a fence carrying this grant's token, to make coord commands
// (an append, a put) conditional on still holding the lock.
func (l *Lock) Fence() *coordv1.Fence { return &coordv1.Fence{Lock: l.name, Token: l.token} }

// Done is closed when the lock is, or may be, lost, or after Unlock.
func (l *Lock) Done() <-chan struct{} { return l.ctx.Done() }

// Ctx is a context cancelled when Done closes; pass it to the protected work.
func (l *Lock) Ctx() context.Context { return l.ctx }

// Err says why Done closed (ErrLockLost or context.Canceled after Unlock),
// or nil while the lock is held.
func (l *Lock) Err() error {
	if l.ctx.Err() == nil {
		return nil
	}
	return context.Cause(l.ctx)
}

// ValidUntil is the local time before which the lock is certainly held.
func (l *Lock) ValidUntil() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.validUntil
}

// margin is subtracted from a lease's TTL to allow for clock-rate drift
// between client and server.
func margin(ttl time.Duration) time.Duration { return ttl/50 + 50*time.Millisecond }

// Lock acquires lock name, waiting in the lock's FIFO queue until it is
// granted or ctx ends, and keeps its lease alive until Unlock.
func (c *Client) Lock(ctx context.Context, name string, opts ...LockOption) (*Lock, error) {
	return c.lock(ctx, name, true, opts)
}

// TryLock acquires lock name if it is free; otherwise it returns an error
// matching ErrLockHeld (a *LockHeldError naming the holders).
func (c *Client) TryLock(ctx context.Context, name string, opts ...LockOption) (*Lock, error) {
	return c.lock(ctx, name, false, opts)
}

func (c *Client) lock(ctx context.Context, name string, wait bool, opts []LockOption) (*Lock, error) {
	o := lockOptions{}
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	l := &Lock{c: c, name: name, owner: o.owner, ttl: o.ttl, lease: o.lease, own: o.lease == 0, stopped: make(chan struct{})}
	l.ctx, l.cancel = context.WithCancelCause(context.Background())
	if l.own {
		sent := time.Now()
		lease, err := c.GrantLease(ctx, o.ttl, o.owner)
		if err != nil {
			return nil, err
		}
		l.lease = lease.Id
		l.setValid(sent)
		l.wg.Add(1)
		go l.keepAlive()
	}
	sent := time.Now()
	resp, err := c.acquireHeld(ctx, l, o, wait)
	if err != nil {
		l.giveUp()
		return nil, err
	}
	l.granted(sent, resp)
	if !l.own {
		l.wg.Add(1)
		go l.watchDeadline()
	}
	return l, nil
}

// acquireHeld sends the acquire and returns the grant, or withdraws the
// queue entry and fails.
func (c *Client) acquireHeld(ctx context.Context, l *Lock, o lockOptions, wait bool) (*coordv1.AcquireResponse, error) {
	req := &coordv1.AcquireRequest{Name: l.name, LeaseId: l.lease, Limit: o.limit}
	if o.lockDelay > 0 {
		req.LockDelay = durationpb.New(o.lockDelay)
	}
	if o.maxHold > 0 {
		req.MaxHold = durationpb.New(o.maxHold)
	}
	if wait {
		w := maxLockWait
		if dl, ok := ctx.Deadline(); ok {
			w = min(w, max(time.Until(dl), 0))
		}
		req.Wait = durationpb.New(w)
	}
	resp, err := c.AcquireLock(ctx, req)
	if err == nil && resp.Acquired {
		return resp, nil
	}
	// Withdraw from the queue (and release a grant that raced the give-up).
	wctx, cancel := context.WithTimeout(context.Background(), c.cfg.AttemptTimeout)
	_, _ = c.ReleaseLock(wctx, l.name, 0, l.lease)
	cancel()
	if err != nil {
		return nil, err
	}
	if !wait {
		var holders []*coordv1.LockHolder
		if resp.Lock != nil {
			holders = resp.Lock.Holders
		}
		return nil, &LockHeldError{Name: l.name, Holders: holders}
	}
	if ctxErr := ctxOver(ctx); ctxErr != nil {
		return nil, fmt.Errorf("lock %q: %w", l.name, ctxErr)
	}
	return nil, fmt.Errorf("lock %q: wait ended without a grant: %w", l.name, ErrLockHeld)
}

// setValid moves the validity deadline to sent + TTL - margin after a
// renewal sent at sent, never past the max-hold deadline.
func (l *Lock) setValid(sent time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if until := sent.Add(l.ttl - margin(l.ttl)); until.After(l.validUntil) {
		l.validUntil = until
	}
	if !l.holdCap.IsZero() {
		l.validUntil = minTime(l.validUntil, l.holdCap)
	}
}

// granted records the grant. For a lease the Lock does not renew, validity
// comes from the lease expiry the server reported; a max-hold deadline caps
// it either way. Server instants are translated to local time through the
// acquire's send time, which is earlier than the server's reading.
func (l *Lock) granted(sent time.Time, resp *coordv1.AcquireResponse) {
	l.token = resp.Holder.Token
	serverNow := resp.ServerTime.AsTime()
	m := margin(l.ttl)
	l.mu.Lock()
	if !l.own && resp.Holder.LeaseExpireTime != nil {
		l.validUntil = sent.Add(resp.Holder.LeaseExpireTime.AsTime().Sub(serverNow) - m)
	}
	if resp.Holder.HoldDeadline != nil {
		l.holdCap = sent.Add(resp.Holder.HoldDeadline.AsTime().Sub(serverNow) - m)
		l.validUntil = minTime(l.validUntil, l.holdCap)
	}
	l.mu.Unlock()
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// keepAlive renews the lease every TTL/3 and declares the lock lost when
// the lease is gone or the validity deadline passes without a renewal.
func (l *Lock) keepAlive() {
	defer l.wg.Done()
	interval := l.ttl / 3
	timer := time.NewTimer(interval)
	defer timer.Stop()
	for {
		deadline := l.ValidUntil()
		select {
		case <-l.stopped:
			return
		case <-time.After(time.Until(deadline)):
			l.lose(fmt.Errorf("%w: no keep-alive succeeded before the lease's validity deadline", ErrLockLost))
			return
		case <-timer.C:
		}
		sent := time.Now()
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		resp, err := l.c.KeepAlive(ctx, l.lease)
		cancel()
		switch {
		case err == nil && len(resp.Missing) > 0:
			l.lose(fmt.Errorf("%w: lease %d expired or was revoked", ErrLockLost, l.lease))
			return
		case err == nil:
			l.setValid(sent)
			timer.Reset(interval)
		default:
			timer.Reset(min(interval, time.Until(deadline)/2+time.Millisecond))
		}
	}
}

// watchDeadline closes Done at the validity deadline of a lock held under a
// lease the caller renews (only max-hold or the reported expiry apply).
func (l *Lock) watchDeadline() {
	defer l.wg.Done()
	l.mu.Lock()
	until := l.holdCap
	l.mu.Unlock()
	if until.IsZero() {
		<-l.stopped
		return
	}
	select {
	case <-l.stopped:
	case <-time.After(time.Until(until)):
		l.lose(fmt.Errorf("%w: the grant's max-hold deadline passed", ErrLockLost))
	}
}

func (l *Lock) lose(cause error) {
	l.cancel(cause)
}

// giveUp stops the keep-alive and revokes the lease the Lock created.
func (l *Lock) giveUp() {
	l.once.Do(func() { close(l.stopped) })
	l.wg.Wait()
	l.cancel(context.Canceled)
	if l.own {
		ctx, cancel := context.WithTimeout(context.Background(), l.c.cfg.AttemptTimeout)
		defer cancel()
		_ = l.c.RevokeLease(ctx, l.lease)
	}
}

// Unlock releases the lock and stops its keep-alive (revoking the lease the
// Lock created). It reports an error if the release could not be confirmed;
// the lock is then released at the latest when its lease expires.
func (l *Lock) Unlock(ctx context.Context) error {
	l.once.Do(func() { close(l.stopped) })
	l.wg.Wait()
	l.cancel(context.Canceled)
	var err error
	if l.own {
		err = l.c.RevokeLease(ctx, l.lease)
	} else {
		var resp *coordv1.ReleaseResponse
		if resp, err = l.c.ReleaseLock(ctx, l.name, l.token, l.lease); err == nil && !resp.Released {
			err = fmt.Errorf("%w: %s", ErrLockLost, resp.Reason)
		}
	}
	return err
}

// FenceOption makes a write conditional on holding locks: the server applies
// it only if each fence's token is a current grant of its lock, and fails it
// with an error matching ErrFenced otherwise.
type FenceOption []*coordv1.Fence

// WithFence returns a FenceOption; pass (*Lock).Fence() values.
func WithFence(fences ...*coordv1.Fence) FenceOption { return FenceOption(fences) }

func (f FenceOption) applyPut(o *putOptions) { o.fences = append(o.fences, f...) }
