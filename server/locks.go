package server

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	coordv1 "coord/api/coord/v1"
	"coord/internal/cmdpb"
	"coord/internal/sm"
	"coord/locks"
	"coord/node"
)

type lockService struct {
	coordv1.UnimplementedLockServiceServer
	s *Server
}

func ts(ns int64) *timestamppb.Timestamp {
	if ns == 0 {
		return nil
	}
	return timestamppb.New(time.Unix(0, ns))
}

func durOrNil(ns int64) *durationpb.Duration {
	if ns == 0 {
		return nil
	}
	return durationpb.New(time.Duration(ns))
}

func leaseOf(l *cmdpb.LockLease) *coordv1.Lease {
	if l == nil {
		return nil
	}
	return &coordv1.Lease{Id: l.Id, Owner: l.Owner, Ttl: durationpb.New(time.Duration(l.Ttl)), ExpireTime: ts(l.ExpiresAt)}
}

func (l *lockService) GrantLease(ctx context.Context, req *coordv1.GrantLeaseRequest) (*coordv1.GrantLeaseResponse, error) {
	if req.Ttl == nil {
		return nil, invalid("ttl: must be set")
	}
	ttl, err := duration("ttl", req.Ttl, locks.MinTTL, locks.MaxTTL)
	if err != nil {
		return nil, err
	}
	if err := locks.ValidateOwner(req.Owner); err != nil {
		return nil, invalid("owner: %v", err)
	}
	var out cmdpb.LockLease
	if _, err := l.s.applyDecode(ctx, sm.MachineLocks, locks.OpGrantLease, &cmdpb.LockGrantLease{Owner: req.Owner, Ttl: int64(ttl)}, &out); err != nil {
		return nil, err
	}
	return &coordv1.GrantLeaseResponse{Lease: leaseOf(&out)}, nil
}

func (l *lockService) KeepAlive(ctx context.Context, req *coordv1.KeepAliveRequest) (*coordv1.KeepAliveResponse, error) {
	if len(req.LeaseIds) == 0 || len(req.LeaseIds) > locks.MaxKeepAlive {
		return nil, invalid("lease_ids: give 1 to %d leases, not %d", locks.MaxKeepAlive, len(req.LeaseIds))
	}
	for i, id := range req.LeaseIds {
		if id == 0 {
			return nil, invalid("lease_ids[%d]: must be non-zero", i)
		}
	}
	var out cmdpb.LockKeepAliveResult
	res, err := l.s.applyDecode(ctx, sm.MachineLocks, locks.OpKeepAlive, &cmdpb.LockKeepAlive{LeaseIds: req.LeaseIds}, &out)
	if err != nil {
		return nil, err
	}
	resp := &coordv1.KeepAliveResponse{Missing: out.Missing, ServerTime: timestamppb.New(res.Now)}
	for _, le := range out.Leases {
		resp.Leases = append(resp.Leases, leaseOf(le))
	}
	return resp, nil
}

func (l *lockService) RevokeLease(ctx context.Context, req *coordv1.RevokeLeaseRequest) (*coordv1.RevokeLeaseResponse, error) {
	if req.LeaseId == 0 {
		return nil, invalid("lease_id: must be non-zero")
	}
	var out cmdpb.LockRevokeLeaseResult
	if _, err := l.s.applyDecode(ctx, sm.MachineLocks, locks.OpRevokeLease, &cmdpb.LockRevokeLease{LeaseId: req.LeaseId}, &out); err != nil {
		return nil, err
	}
	return &coordv1.RevokeLeaseResponse{Found: out.Found}, nil
}

// acquireCommand validates an acquire request and builds its command.
func acquireCommand(req *coordv1.AcquireRequest) (*cmdpb.LockAcquire, error) {
	cmd := &cmdpb.LockAcquire{Name: req.Name, LeaseId: req.LeaseId, Owner: req.Owner, Limit: max(req.Limit, 1)}
	var err error
	var d time.Duration
	if req.LeaseId == 0 {
		if req.Ttl == nil {
			return nil, invalid("ttl: must be set when lease_id is 0")
		}
		if d, err = duration("ttl", req.Ttl, locks.MinTTL, locks.MaxTTL); err != nil {
			return nil, err
		}
		cmd.Ttl = int64(d)
	}
	if d, err = duration("wait", req.Wait, 0, locks.MaxWait); err != nil {
		return nil, err
	}
	cmd.Wait = int64(d)
	if d, err = duration("lock_delay", req.LockDelay, 0, locks.MaxLockDelay); err != nil {
		return nil, err
	}
	cmd.LockDelay = int64(d)
	if req.MaxHold != nil {
		if d, err = duration("max_hold", req.MaxHold, locks.MinMaxHold, locks.MaxMaxHold); err != nil {
			return nil, err
		}
		cmd.MaxHold = int64(d)
	}
	if err := locks.ValidateAcquire(cmd); err != nil {
		return nil, invalid("%v", err)
	}
	return cmd, nil
}

// Acquire applies the acquire and, when the request queued, waits for the
// grant: it watches the lock's change notifications and re-reads the local
// state, so a waiter is told in the entry that grants it, without polling.
func (l *lockService) Acquire(ctx context.Context, req *coordv1.AcquireRequest) (*coordv1.AcquireResponse, error) {
	cmd, err := acquireCommand(req)
	if err != nil {
		return nil, err
	}
	var out cmdpb.LockAcquireResult
	res, err := l.s.applyDecode(ctx, sm.MachineLocks, locks.OpAcquire, cmd, &out)
	if err != nil {
		return nil, err
	}
	resp := &coordv1.AcquireResponse{Lease: leaseOf(out.Lease), ServerTime: timestamppb.New(res.Now)}
	switch out.Outcome {
	case cmdpb.LockAcquireOutcome_LOCK_ACQUIRE_OUTCOME_GRANTED:
		resp.Acquired, resp.Holder = true, holderOf(out.Holder, out.Lease)
		return resp, nil
	case cmdpb.LockAcquireOutcome_LOCK_ACQUIRE_OUTCOME_QUEUED:
		return l.awaitGrant(ctx, req.Name, out.Lease.Id, time.Duration(cmd.Wait), resp)
	default:
		return l.withLock(ctx, req.Name, resp)
	}
}

// awaitGrant waits until lease holds the lock or leaves its queue. The queue
// entry's deadline is enforced by the state machine; the local timer (wait
// plus a grace period) only bounds the call when the cluster cannot tick.
func (l *lockService) awaitGrant(ctx context.Context, name string, lease uint64, wait time.Duration, resp *coordv1.AcquireResponse) (*coordv1.AcquireResponse, error) {
	timer := time.NewTimer(wait + 2*time.Second)
	defer timer.Stop()
	for {
		changed := l.s.node.Watch(sm.MachineLocks, locks.LeaseTopic(name, lease))
		var holder *cmdpb.LockHolder
		var waiting bool
		var leaseRec *cmdpb.LockLease
		err := l.s.node.Read(ctx, false, sm.MachineLocks, func(env sm.Env, tx sm.Tx) error {
			var err error
			if holder, waiting, err = locks.Holder(env, tx, name, lease); err != nil {
				return err
			}
			resp.ServerTime = ts(env.Now)
			leaseRec, err = locks.Lease(env, tx, lease)
			return err
		})
		if err != nil {
			return nil, err
		}
		if holder != nil {
			resp.Acquired, resp.Holder, resp.Lease = true, holderOf(holder, leaseRec), leaseOf(leaseRec)
			return resp, nil
		}
		if !waiting {
			return l.withLock(ctx, name, resp)
		}
		select {
		case <-changed:
		case <-timer.C:
			return l.withLock(ctx, name, resp)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// withLock fills in the lock's current state for a response that did not
// acquire.
func (l *lockService) withLock(ctx context.Context, name string, resp *coordv1.AcquireResponse) (*coordv1.AcquireResponse, error) {
	err := l.s.node.Read(ctx, false, sm.MachineLocks, func(env sm.Env, tx sm.Tx) error {
		v, err := locks.Get(env, tx, name)
		if err == nil && v != nil {
			resp.Lock = lockOf(v)
		}
		return err
	})
	return resp, err
}

func holderOf(h *cmdpb.LockHolder, l *cmdpb.LockLease) *coordv1.LockHolder {
	out := &coordv1.LockHolder{Owner: h.Owner, Token: h.Token, LeaseId: h.LeaseId, GrantTime: ts(h.GrantedAt), HoldDeadline: ts(h.HoldUntil)}
	if l != nil {
		out.LeaseExpireTime = ts(l.ExpiresAt)
	}
	return out
}

func lockOf(v *locks.View) *coordv1.Lock {
	st := v.State
	out := &coordv1.Lock{Name: st.Name, Limit: st.Limit, LockDelay: durOrNil(st.LockDelay), MaxHold: durOrNil(st.MaxHold), Revision: st.Revision}
	if st.DelayUntil != 0 {
		out.DelayUntil = ts(st.DelayUntil)
	}
	for _, h := range v.Holders {
		out.Holders = append(out.Holders, holderOf(h, v.Leases[h.LeaseId]))
	}
	for _, w := range v.Waiters {
		out.Waiters = append(out.Waiters, &coordv1.LockWaiter{Owner: w.Owner, LeaseId: w.LeaseId, EnqueueTime: ts(w.EnqueuedAt), Deadline: ts(w.Deadline)})
	}
	return out
}

// Release releases a grant; with token 0 and a lease id it withdraws that
// lease's queue entry or grant.
func (l *lockService) Release(ctx context.Context, req *coordv1.ReleaseRequest) (*coordv1.ReleaseResponse, error) {
	if err := locks.ValidateName(req.Name); err != nil {
		return nil, invalid("name: %v", err)
	}
	if req.Token == 0 {
		if req.LeaseId == 0 {
			return nil, invalid("token: must be set (or give lease_id to withdraw that lease's queue entry or grant)")
		}
		var out cmdpb.LockAbandonResult
		if _, err := l.s.applyDecode(ctx, sm.MachineLocks, locks.OpAbandon, &cmdpb.LockAbandon{Name: req.Name, LeaseId: req.LeaseId}, &out); err != nil {
			return nil, err
		}
		resp := &coordv1.ReleaseResponse{Released: out.Released || out.Dequeued}
		if !resp.Released {
			resp.Reason = "lease neither holds nor waits for the lock"
		}
		return resp, nil
	}
	var out cmdpb.LockReleaseResult
	if _, err := l.s.applyDecode(ctx, sm.MachineLocks, locks.OpRelease, &cmdpb.LockRelease{Name: req.Name, Token: req.Token, LeaseId: req.LeaseId}, &out); err != nil {
		return nil, err
	}
	return &coordv1.ReleaseResponse{Released: out.Released, Reason: out.Reason}, nil
}

func (l *lockService) GetLock(ctx context.Context, req *coordv1.GetLockRequest) (*coordv1.GetLockResponse, error) {
	if err := locks.ValidateName(req.Name); err != nil {
		return nil, invalid("name: %v", err)
	}
	resp := &coordv1.GetLockResponse{}
	err := l.s.node.Read(ctx, linearizable(req.Consistency), sm.MachineLocks, func(env sm.Env, tx sm.Tx) error {
		v, err := locks.Get(env, tx, req.Name)
		if err == nil && v != nil {
			resp.Found, resp.Lock = true, lockOf(v)
		}
		resp.ServerTime = ts(env.Now)
		return err
	})
	return resp, err
}

func linearizable(c coordv1.ReadConsistency) bool {
	return c != coordv1.ReadConsistency_READ_CONSISTENCY_STALE
}

func (l *lockService) ListLocks(ctx context.Context, req *coordv1.ListLocksRequest) (*coordv1.ListLocksResponse, error) {
	size := int(req.PageSize)
	if size == 0 {
		size = 100
	}
	if size > 1000 {
		return nil, invalid("page_size: %d is above the limit of 1000", size)
	}
	if len(req.Prefix) > locks.MaxNameLen {
		return nil, invalid("prefix: longer than %d bytes", locks.MaxNameLen)
	}
	resp := &coordv1.ListLocksResponse{}
	err := l.s.node.Read(ctx, linearizable(req.Consistency), sm.MachineLocks, func(env sm.Env, tx sm.Tx) error {
		views, more, err := locks.List(env, tx, req.Prefix, req.PageToken, size)
		if err != nil {
			return err
		}
		for _, v := range views {
			resp.Locks = append(resp.Locks, lockOf(v))
		}
		if more && len(views) > 0 {
			resp.NextPageToken = views[len(views)-1].State.Name
		}
		return nil
	})
	return resp, err
}

func (l *lockService) CheckToken(ctx context.Context, req *coordv1.CheckTokenRequest) (*coordv1.CheckTokenResponse, error) {
	if err := locks.ValidateName(req.Name); err != nil {
		return nil, invalid("name: %v", err)
	}
	resp := &coordv1.CheckTokenResponse{}
	err := l.s.node.Read(ctx, linearizable(req.Consistency), sm.MachineLocks, func(env sm.Env, tx sm.Tx) error {
		v, err := locks.Get(env, tx, req.Name)
		if err != nil || v == nil {
			return err
		}
		for _, h := range v.Holders {
			resp.CurrentTokens = append(resp.CurrentTokens, h.Token)
			resp.Valid = resp.Valid || (req.Token != 0 && h.Token == req.Token)
		}
		return nil
	})
	return resp, err
}

// WatchLock streams a lock's events from this node's state, starting with a
// snapshot unless resuming, and resending a snapshot when the watcher's
// resume point is older than the kept history.
func (l *lockService) WatchLock(req *coordv1.WatchLockRequest, stream grpc.ServerStreamingServer[coordv1.WatchLockResponse]) error {
	if err := locks.ValidateName(req.Name); err != nil {
		return toStatus(invalid("name: %v", err))
	}
	ctx := stream.Context()
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	after := req.AfterRevision
	snapshot := after == 0
	for {
		changed := l.s.node.Watch(sm.MachineLocks, locks.Topic(req.Name))
		var batch []*coordv1.WatchLockResponse
		err := l.s.node.Read(ctx, false, sm.MachineLocks, func(env sm.Env, tx sm.Tx) error {
			evs, gap, err := locks.Events(tx, req.Name, after)
			if err != nil {
				return err
			}
			if snapshot || gap {
				snap, err := lockSnapshot(env, tx, req.Name)
				batch, after, snapshot = append(batch, snap), snap.Revision, false
				return err
			}
			for _, ev := range evs {
				batch = append(batch, &coordv1.WatchLockResponse{Type: coordv1.LockEventType(ev.Type), Revision: ev.Revision, Token: ev.Token, LeaseId: ev.LeaseId, Owner: ev.Owner, Time: ts(ev.Time)})
				after = ev.Revision
			}
			return nil
		})
		if err != nil {
			return toStatus(err)
		}
		for _, m := range batch {
			if err := stream.Send(m); err != nil {
				return err
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		}
	}
}

func lockSnapshot(env sm.Env, tx sm.Tx, name string) (*coordv1.WatchLockResponse, error) {
	v, err := locks.Get(env, tx, name)
	if err != nil {
		return nil, err
	}
	snap := &coordv1.WatchLockResponse{Type: coordv1.LockEventType_LOCK_EVENT_TYPE_SNAPSHOT, Revision: env.Index, Time: ts(env.Now)}
	if v != nil {
		snap.Lock = lockOf(v)
	}
	return snap, nil
}

// applyDecode applies a command and decodes its result body into out.
func (s *Server) applyDecode(ctx context.Context, machine, op uint32, cmd, out proto.Message) (*node.Applied, error) {
	res, err := s.apply(ctx, machine, op, cmd)
	if err != nil {
		return nil, err
	}
	if err := proto.Unmarshal(res.Result.Body, out); err != nil {
		return nil, err
	}
	return res, nil
}
