package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	coordv1 "coord/api/coord/v1"
	"coord/client"
)

func (a *app) lockCmd() *cobra.Command {
	cmd := groupCmd("lock", "Take, release and inspect fencing-token locks", `Locks are named (path-like: letters, digits and /-_.:@) and held under a
lease with a TTL. Every grant carries a fencing token that strictly
increases across all locks, leader changes and restarts: pass it to the
resources the lock protects. Waiters queue in FIFO order.

  acquire  take a lock that stays held until its TTL lapses or it is released
  release  give a grant back (needs its token)
  hold     take a lock, run a command while keeping it alive, release on exit
  get      show holders, tokens, expiries and waiters
  list     list locks by name prefix
  check    tell whether a token is still the current grant
  watch    follow a lock's changes until interrupted`)
	cmd.AddCommand(a.lockAcquireCmd(), a.lockReleaseCmd(), a.lockHoldCmd(), a.lockGetCmd(),
		a.lockListCmd(), a.lockCheckCmd(), a.lockWatchCmd())
	return cmd
}

// withStreamingClient connects within --timeout and then runs fn with the
// command's context only (no deadline), for commands that follow changes or
// wait for as long as the user asks.
func (a *app) withStreamingClient(cmd *cobra.Command, fn func(ctx context.Context, c *client.Client) error) error {
	eps, err := a.endpointList()
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(cmd.Context(), a.timeout)
	c, err := client.New(dctx, client.Config{Endpoints: eps, DialTimeout: a.timeout})
	cancel()
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(cmd.Context(), c)
}

type lockFlags struct {
	ttl, wait, lockDelay, maxHold time.Duration
	owner                         string
	limit                         uint32
}

func (f *lockFlags) register(cmd *cobra.Command, ttl, wait time.Duration) {
	cmd.Flags().DurationVar(&f.ttl, "ttl", ttl, "lease TTL: how long the lock outlives its holder's silence (1s-24h)")
	cmd.Flags().DurationVar(&f.wait, "wait", wait, "how long to queue for the lock (0: fail at once if held)")
	cmd.Flags().StringVar(&f.owner, "owner", "", "owner name shown to others (default host:pid)")
	cmd.Flags().Uint32Var(&f.limit, "limit", 1, "semaphore: how many holders the lock admits")
	cmd.Flags().DurationVar(&f.lockDelay, "lock-delay", 0, "after a holder's lease expires, grant nobody for this long (max 1m)")
	cmd.Flags().DurationVar(&f.maxHold, "max-hold", 0, "end a grant this long after it was made, however it is renewed (0: never)")
}

func (f *lockFlags) check() error {
	switch {
	case f.ttl < time.Second || f.ttl > 24*time.Hour:
		return usagef("invalid --ttl %v: must be between 1s and 24h", f.ttl)
	case f.wait < 0:
		return usagef("invalid --wait %v: must not be negative", f.wait)
	case f.limit < 1:
		return usagef("invalid --limit %d: must be at least 1", f.limit)
	case f.lockDelay < 0 || f.lockDelay > time.Minute:
		return usagef("invalid --lock-delay %v: must be between 0 and 1m", f.lockDelay)
	case f.maxHold < 0:
		return usagef("invalid --max-hold %v: must not be negative", f.maxHold)
	}
	if f.owner == "" {
		f.owner = defaultOwner()
	}
	return nil
}

func durOrNil(d time.Duration) *durationpb.Duration {
	if d == 0 {
		return nil
	}
	return durationpb.New(d)
}

func (a *app) lockAcquireCmd() *cobra.Command {
	var f lockFlags
	cmd := &cobra.Command{
		Use:   "acquire NAME [--ttl 30s] [--wait 10s] [--owner ID]",
		Short: "Take a lock that stays held until its TTL lapses or it is released",
		Long: `Take lock NAME under a new lease with --ttl. Nothing keeps the lease
alive afterwards: the lock is held until the TTL lapses or until
'coordctl lock release NAME --token T'. With --wait the request queues
(FIFO) for up to that long; without it, a held lock fails at once.

Table output: "owner=O token=T lease=L expires=TIME".
JSON: the coord.v1.AcquireResponse message:
  {"acquired": true, "holder": {"owner", "token", "lease_id", "grant_time",
   "lease_expire_time", "hold_deadline"}, "lease": {...}, "lock": null,
   "server_time": TIME}
Exit status 1 when the lock was not acquired (the message names the holder).`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.check(); err != nil {
				return err
			}
			run := a.withClient
			if f.wait > 0 {
				run = a.withStreamingClient
			}
			return run(cmd, func(ctx context.Context, c *client.Client) error {
				return a.acquire(ctx, c, args[0], f)
			})
		},
	}
	f.register(cmd, 30*time.Second, 0)
	return cmd
}

func (a *app) acquire(ctx context.Context, c *client.Client, name string, f lockFlags) error {
	req := &coordv1.AcquireRequest{Name: name, Owner: f.owner, Ttl: durationpb.New(f.ttl), Wait: durOrNil(f.wait),
		Limit: f.limit, LockDelay: durOrNil(f.lockDelay), MaxHold: durOrNil(f.maxHold)}
	if f.wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.wait+a.timeout)
		defer cancel()
	}
	resp, err := c.AcquireLock(ctx, req)
	if err != nil {
		return fmt.Errorf("acquire %q: %w", name, err)
	}
	if a.out().json {
		if err := a.out().message(resp); err != nil {
			return err
		}
	}
	if !resp.Acquired {
		if resp.Lease != nil { // the request created a lease; do not leave it behind
			rctx, cancel := context.WithTimeout(context.Background(), a.timeout)
			_ = c.RevokeLease(rctx, resp.Lease.Id)
			cancel()
		}
		return fmt.Errorf("lock %q is held%s", name, holdersText(resp.Lock))
	}
	if a.out().json {
		return nil
	}
	h := resp.Holder
	return a.out().line("owner=%s token=%d lease=%d expires=%s", h.Owner, h.Token, h.LeaseId, timeText(h.LeaseExpireTime))
}

func holdersText(l *coordv1.Lock) string {
	if l == nil || len(l.Holders) == 0 {
		return ""
	}
	var parts []string
	for _, h := range l.Holders {
		parts = append(parts, fmt.Sprintf("%s (token %d)", h.Owner, h.Token))
	}
	return " by " + strings.Join(parts, ", ")
}

func timeText(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().Local().Format(time.RFC3339Nano)
}

func (a *app) lockReleaseCmd() *cobra.Command {
	var token, lease uint64
	var owner string
	cmd := &cobra.Command{
		Use:   "release NAME --token T [--owner ID] [--lease L]",
		Short: "Give a grant back",
		Long: `Release the grant of lock NAME with fencing token T. A token that is not
the current grant (the lock moved on, or was never held with it) changes
nothing: coordctl says so and exits 1. --owner and --lease, when given,
must match the grant's.

Table output: "released". JSON: the coord.v1.ReleaseResponse message
  {"released": true, "reason": ""}`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if token == 0 {
				return usagef("--token is required (the fencing token printed by acquire)")
			}
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				return a.release(ctx, c, args[0], token, lease, owner)
			})
		},
	}
	cmd.Flags().Uint64Var(&token, "token", 0, "fencing token of the grant to release")
	cmd.Flags().Uint64Var(&lease, "lease", 0, "lease the grant must be held under")
	cmd.Flags().StringVar(&owner, "owner", "", "owner the grant must belong to")
	return cmd
}

func (a *app) release(ctx context.Context, c *client.Client, name string, token, lease uint64, owner string) error {
	if owner != "" {
		g, err := c.GetLock(ctx, name)
		if err != nil {
			return fmt.Errorf("release %q: %w", name, err)
		}
		for _, h := range g.GetLock().GetHolders() {
			if h.Token == token && h.Owner != owner {
				return fmt.Errorf("release %q: token %d belongs to %q, not %q", name, token, h.Owner, owner)
			}
		}
	}
	resp, err := c.ReleaseLock(ctx, name, token, lease)
	if err != nil {
		return fmt.Errorf("release %q: %w", name, err)
	}
	if a.out().json {
		if err := a.out().message(resp); err != nil {
			return err
		}
	}
	if !resp.Released {
		return fmt.Errorf("release %q: %s", name, resp.Reason)
	}
	if a.out().json {
		return nil
	}
	return a.out().line("released")
}

func (a *app) lockGetCmd() *cobra.Command {
	var stale bool
	cmd := &cobra.Command{
		Use:   "get NAME [--stale]",
		Short: "Show a lock's holders, tokens, expiries and waiters",
		Long: `Show lock NAME. Table output lists holders (owner, token, lease, lease
expiry) and then waiters in queue order. JSON: the coord.v1.GetLockResponse
message {"found", "lock": {"name", "limit", "holders", "waiters",
"lock_delay", "max_hold", "delay_until", "revision"}, "server_time"}.
Exit status 1 when the lock has no record.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				var opts []client.ReadOption
				if stale {
					opts = append(opts, client.Stale())
				}
				resp, err := c.GetLock(ctx, args[0], opts...)
				if err != nil {
					return fmt.Errorf("get lock %q: %w", args[0], err)
				}
				if a.out().json {
					if err := a.out().message(resp); err != nil {
						return err
					}
				} else if resp.Found {
					if err := a.printLock(resp.Lock); err != nil {
						return err
					}
				}
				if !resp.Found {
					return fmt.Errorf("lock %q not found", args[0])
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&stale, "stale", false, "read the nearest node's local state")
	return cmd
}

func (a *app) printLock(l *coordv1.Lock) error {
	rows := [][]string{}
	for _, h := range l.Holders {
		rows = append(rows, []string{"holder", h.Owner, strconv.FormatUint(h.Token, 10), strconv.FormatUint(h.LeaseId, 10), timeText(h.LeaseExpireTime)})
	}
	for i, w := range l.Waiters {
		rows = append(rows, []string{fmt.Sprintf("waiter %d", i+1), w.Owner, "-", strconv.FormatUint(w.LeaseId, 10), timeText(w.Deadline)})
	}
	if err := a.out().line("lock %s limit=%d revision=%d", l.Name, l.Limit, l.Revision); err != nil {
		return err
	}
	return a.out().table([]string{"ROLE", "OWNER", "TOKEN", "LEASE", "EXPIRES/DEADLINE"}, rows)
}

func (a *app) lockListCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list [PREFIX]",
		Short: "List locks by name prefix",
		Long: `List the locks whose names start with PREFIX (all when omitted).
JSON: {"locks": [Lock, ...]} with coord.v1.Lock messages.`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			prefix := ""
			if len(args) == 1 {
				prefix = args[0]
			}
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				locks, err := c.ListLocks(ctx, prefix)
				if err != nil {
					return fmt.Errorf("list locks: %w", err)
				}
				if a.out().json {
					return a.out().message(&coordv1.ListLocksResponse{Locks: locks})
				}
				rows := [][]string{}
				for _, l := range locks {
					tokens := []string{}
					for _, h := range l.Holders {
						tokens = append(tokens, strconv.FormatUint(h.Token, 10))
					}
					rows = append(rows, []string{l.Name, fmt.Sprintf("%d/%d", len(l.Holders), l.Limit), dash(strings.Join(tokens, ",")), strconv.Itoa(len(l.Waiters))})
				}
				return a.out().table([]string{"NAME", "HELD", "TOKENS", "WAITERS"}, rows)
			})
		},
	}
	return cmd
}

func (a *app) lockCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check NAME TOKEN",
		Short: "Tell whether a token is the current grant of a lock",
		Long: `Check whether TOKEN is a current grant of lock NAME (a resource's view:
is this writer still the holder?). Prints "valid" or "stale (current: ...)".
JSON: the coord.v1.CheckTokenResponse message. Exit status 1 when stale.`,
		Args: usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			token, err := strconv.ParseUint(args[1], 10, 64)
			if err != nil || token == 0 {
				return usagef("invalid TOKEN %q: want a positive integer", args[1])
			}
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				resp, err := c.CheckToken(ctx, args[0], token)
				if err != nil {
					return fmt.Errorf("check %q: %w", args[0], err)
				}
				if a.out().json {
					if err := a.out().message(resp); err != nil {
						return err
					}
				} else if resp.Valid {
					return a.out().line("valid")
				}
				if !resp.Valid {
					return fmt.Errorf("token %d of lock %q is stale (current: %v)", token, args[0], resp.CurrentTokens)
				}
				return nil
			})
		},
	}
}

func (a *app) lockWatchCmd() *cobra.Command {
	var after uint64
	cmd := &cobra.Command{
		Use:   "watch NAME [--after REVISION]",
		Short: "Follow a lock's changes until interrupted",
		Long: `Print lock NAME's changes as they happen, until interrupted: first a
snapshot of its state, then GRANTED, RELEASED, EXPIRED, QUEUED and
WAIT_ENDED events. The watch survives leader changes and reconnects by
itself; --after resumes after a revision printed earlier.

Table output: one line per event: "REVISION TYPE owner=O token=T lease=L".
JSON: one coord.v1.WatchLockResponse object per line.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withStreamingClient(cmd, func(ctx context.Context, c *client.Client) error {
				events, err := c.WatchLock(ctx, args[0], after)
				if err != nil {
					return err
				}
				for ev := range events {
					if err := a.printLockEvent(ev); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().Uint64Var(&after, "after", 0, "resume after this revision")
	return cmd
}

func (a *app) printLockEvent(ev *coordv1.WatchLockResponse) error {
	if a.out().json {
		raw, err := jsonOptions.Marshal(ev)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.stdout, "%s\n", compactJSON(raw))
		return err
	}
	typ := strings.TrimPrefix(ev.Type.String(), "LOCK_EVENT_TYPE_")
	if ev.Type == coordv1.LockEventType_LOCK_EVENT_TYPE_SNAPSHOT {
		held := "free"
		if ev.Lock != nil && len(ev.Lock.Holders) > 0 {
			held = "held" + holdersText(ev.Lock)
		}
		return a.out().line("%d %s %s", ev.Revision, typ, held)
	}
	return a.out().line("%d %s owner=%s token=%d lease=%d", ev.Revision, typ, ev.Owner, ev.Token, ev.LeaseId)
}

// parseFences parses --fence values of the form LOCK:TOKEN.
func parseFences(values []string) ([]*coordv1.Fence, error) {
	var out []*coordv1.Fence
	for _, v := range values {
		i := strings.LastIndexByte(v, ':')
		if i <= 0 {
			return nil, usagef("invalid --fence %q: want LOCK:TOKEN", v)
		}
		token, err := strconv.ParseUint(v[i+1:], 10, 64)
		if err != nil || token == 0 {
			return nil, usagef("invalid --fence %q: TOKEN must be a positive integer", v)
		}
		out = append(out, &coordv1.Fence{Lock: v[:i], Token: token})
	}
	return out, nil
}
