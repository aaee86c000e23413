package client

import (
	"context"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	coordv1 "coord/api/coord/v1"
)

// DefaultLockTTL is the lease TTL of Lock and TryLock when none is given.
const DefaultLockTTL = 15 * time.Second

// maxLockWait is the longest a queued acquire waits server-side (the
// server's limit); Lock without a context deadline waits this long per call.
const maxLockWait = 24 * time.Hour

// LockOption configures Lock and TryLock.
type LockOption func(*lockOptions)

type lockOptions struct {
	ttl, lockDelay, maxHold time.Duration
	owner                   string
	limit                   uint32
	lease                   uint64
}

// TTL sets the lease TTL: how long the lock outlives its holder's silence.
func TTL(d time.Duration) LockOption { return func(o *lockOptions) { o.ttl = d } }

// Owner names the holder, for people reading lock state (default host:pid).
func Owner(s string) LockOption { return func(o *lockOptions) { o.owner = s } }

// Limit makes the lock a semaphore admitting n holders.
func Limit(n uint32) LockOption { return func(o *lockOptions) { o.limit = n } }

// LockDelay sets the lock's lock-delay: after a holder's lease expires
// (not after a release), nobody is granted for d.
func LockDelay(d time.Duration) LockOption { return func(o *lockOptions) { o.lockDelay = d } }

// MaxHold bounds how long one grant may be kept, however often it is renewed.
func MaxHold(d time.Duration) LockOption { return func(o *lockOptions) { o.maxHold = d } }

// WithLease holds the lock under an existing lease that the caller keeps
// alive (see GrantLease and KeepAlive); the Lock then neither renews nor
// revokes it.
func WithLease(id uint64) LockOption { return func(o *lockOptions) { o.lease = id } }

func defaultOwner() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s:%d", host, os.Getpid())
}

func (o *lockOptions) check() error {
	if o.ttl == 0 {
		o.ttl = DefaultLockTTL
	}
	if o.owner == "" {
		o.owner = defaultOwner()
	}
	if o.limit == 0 {
		o.limit = 1
	}
	if o.ttl < time.Second {
		return invalidArgument("lock: TTL %v is below 1s", o.ttl)
	}
	if o.lockDelay < 0 || o.maxHold < 0 {
		return invalidArgument("lock: negative lock-delay or max-hold")
	}
	return nil
}

func lockClient(cc grpc.ClientConnInterface) coordv1.LockServiceClient {
	return coordv1.NewLockServiceClient(cc)
}

// GrantLease creates a lease with the given TTL.
func (c *Client) GrantLease(ctx context.Context, ttl time.Duration, owner string) (*coordv1.Lease, error) {
	req := &coordv1.GrantLeaseRequest{Ttl: durationpb.New(ttl), Owner: owner}
	var resp *coordv1.GrantLeaseResponse
	err := c.write(ctx, func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
		resp, err = lockClient(cc).GrantLease(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp.Lease, nil
}

// KeepAlive renews leases. Leases that no longer exist are listed in the
// response's Missing field: whatever was held under them is lost.
func (c *Client) KeepAlive(ctx context.Context, leaseIDs ...uint64) (*coordv1.KeepAliveResponse, error) {
	req := &coordv1.KeepAliveRequest{LeaseIds: leaseIDs}
	var resp *coordv1.KeepAliveResponse
	err := c.write(ctx, func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
		resp, err = lockClient(cc).KeepAlive(ctx, req)
		return err
	})
	return resp, err
}

// RevokeLease ends a lease, releasing everything held under it.
func (c *Client) RevokeLease(ctx context.Context, leaseID uint64) error {
	req := &coordv1.RevokeLeaseRequest{LeaseId: leaseID}
	return c.write(ctx, func(ctx context.Context, cc grpc.ClientConnInterface) error {
		_, err := lockClient(cc).RevokeLease(ctx, req)
		return err
	})
}

// AcquireLock sends one Acquire request as it is. A request that waits
// blocks until granted or until its wait ends. Most programs want Lock,
// which also keeps the lease alive.
func (c *Client) AcquireLock(ctx context.Context, req *coordv1.AcquireRequest) (*coordv1.AcquireResponse, error) {
	wait := req.GetWait().AsDuration()
	var resp *coordv1.AcquireResponse
	err := c.writeLong(ctx, wait, func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
		resp, err = lockClient(cc).Acquire(ctx, req)
		return err
	})
	return resp, err
}

// ReleaseLock releases the grant with token (lease, when non-zero, must be
// the grant's lease). With token 0 it withdraws lease's queue entry or grant.
// A token that is not held is reported in the response, not as an error.
func (c *Client) ReleaseLock(ctx context.Context, name string, token, lease uint64) (*coordv1.ReleaseResponse, error) {
	req := &coordv1.ReleaseRequest{Name: name, Token: token, LeaseId: lease}
	var resp *coordv1.ReleaseResponse
	err := c.write(ctx, func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
		resp, err = lockClient(cc).Release(ctx, req)
		return err
	})
	return resp, err
}

// GetLock reads a lock: holders with tokens and expiries, waiters in order.
func (c *Client) GetLock(ctx context.Context, name string, opts ...ReadOption) (*coordv1.GetLockResponse, error) {
	var o readOptions
	for _, opt := range opts {
		opt.applyRead(&o)
	}
	req := &coordv1.GetLockRequest{Name: name, Consistency: o.consistency}
	var resp *coordv1.GetLockResponse
	err := c.read(ctx, o.consistency, func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
		resp, err = lockClient(cc).GetLock(ctx, req)
		return err
	})
	return resp, err
}

// ListLocks lists every lock whose name starts with prefix.
func (c *Client) ListLocks(ctx context.Context, prefix string, opts ...ReadOption) ([]*coordv1.Lock, error) {
	var o readOptions
	for _, opt := range opts {
		opt.applyRead(&o)
	}
	var out []*coordv1.Lock
	req := &coordv1.ListLocksRequest{Prefix: prefix, PageSize: 1000, Consistency: o.consistency}
	for {
		var resp *coordv1.ListLocksResponse
		err := c.read(ctx, o.consistency, func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
			resp, err = lockClient(cc).ListLocks(ctx, req)
			return err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, resp.Locks...)
		if resp.NextPageToken == "" {
			return out, nil
		}
		req.PageToken = resp.NextPageToken
	}
}

// CheckToken reports whether token is a current grant of lock name (Chubby's
// CheckSequencer), with the lock's current tokens.
func (c *Client) CheckToken(ctx context.Context, name string, token uint64, opts ...ReadOption) (*coordv1.CheckTokenResponse, error) {
	var o readOptions
	for _, opt := range opts {
		opt.applyRead(&o)
	}
	req := &coordv1.CheckTokenRequest{Name: name, Token: token, Consistency: o.consistency}
	var resp *coordv1.CheckTokenResponse
	err := c.read(ctx, o.consistency, func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
		resp, err = lockClient(cc).CheckToken(ctx, req)
		return err
	})
	return resp, err
}

// WatchLock streams the changes of lock name until ctx ends, starting with a
// SNAPSHOT of its current state (or, with afterRevision > 0, with the changes
// after that revision). The stream reconnects by itself, to any node, and
// resumes after the last revision delivered; when the resume point is older
// than the history the server keeps, a fresh SNAPSHOT is delivered instead.
// The channel closes when ctx ends.
func (c *Client) WatchLock(ctx context.Context, name string, afterRevision uint64) (<-chan *coordv1.WatchLockResponse, error) {
	if name == "" {
		return nil, invalidArgument("watch: empty lock name")
	}
	out := make(chan *coordv1.WatchLockResponse)
	go func() {
		defer close(out)
		after := afterRevision
		for quick := 0; ctx.Err() == nil; {
			var stream grpc.ServerStreamingClient[coordv1.WatchLockResponse]
			err := c.openStream(ctx, coordv1.ReadConsistency_READ_CONSISTENCY_STALE, func(sctx context.Context, cc grpc.ClientConnInterface) (err error) {
				if stream, err = lockClient(cc).WatchLock(sctx, &coordv1.WatchLockRequest{Name: name, AfterRevision: after}); err != nil {
					return err
				}
				_, err = stream.Header() // the server sends headers at once
				return err
			})
			if err != nil {
				return // ctx ended or the client closed
			}
			opened := time.Now()
			for {
				m, err := stream.Recv()
				if err != nil {
					break // reconnect and resume after the last revision
				}
				select {
				case out <- m:
				case <-ctx.Done():
					return
				}
				after = m.Revision
			}
			if quick = quick + 1; time.Since(opened) > time.Second {
				quick = 0
			}
			if c.sleep(ctx, c.backoff(quick)) != nil {
				return
			}
		}
	}()
	return out, nil
}
