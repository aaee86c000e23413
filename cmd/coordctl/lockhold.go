package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"coord/client"
)

// exitCodeError makes coordctl exit with a given status (after printing
// msg, when set).
type exitCodeError struct {
	code int
	msg  string
}

func (e exitCodeError) Error() string { return e.msg }

func defaultOwner() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s:%d", host, os.Getpid())
}

func compactJSON(raw []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return raw
	}
	return buf.Bytes()
}

func (a *app) lockHoldCmd() *cobra.Command {
	var f lockFlags
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "hold NAME [--ttl 15s] [--wait 1m] [--owner ID] -- CMD [ARGS...]",
		Short: "Take a lock, run a command while keeping it alive, release on exit",
		Long: `Acquire lock NAME (queueing up to --wait), then run CMD with
COORD_LOCK_NAME, COORD_LOCK_TOKEN, COORD_LOCK_OWNER and COORD_LOCK_LEASE in
its environment, keeping the lease alive while it runs. When CMD exits, the
lock is released and coordctl exits with CMD's status.

CMD runs in its own process group. If the lock is lost (the lease could not
be renewed before its validity deadline, or was revoked), the whole group
gets SIGTERM and, --kill-grace later, SIGKILL. Loss is declared before the
lease can have expired on the server, and the lock's lock-delay (by default
equal to --kill-grace) keeps anyone else from being granted the lock until
the group has been killed: two holders' commands never overlap. Processes
CMD leaves behind in its group are killed when it exits. SIGINT and SIGTERM
sent to coordctl are passed on to the group.

Exit status: CMD's status; 1 (or CMD's non-zero status) when the lock was
lost; 1 when the lock could not be acquired.`,
		Args: usageArgs(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 {
				return usagef("lock hold: give the lock name, then -- and the command")
			}
			if err := f.check(); err != nil {
				return err
			}
			if grace == 0 {
				grace = min(f.ttl/3, 10*time.Second)
			}
			if grace < 0 || grace > time.Minute {
				return usagef("invalid --kill-grace %v: must be between 0 and 1m", grace)
			}
			if !cmd.Flags().Changed("lock-delay") {
				f.lockDelay = grace
			}
			return a.withStreamingClient(cmd, func(ctx context.Context, c *client.Client) error {
				return a.hold(ctx, c, args[0], args[1:], f, grace)
			})
		},
	}
	f.register(cmd, 15*time.Second, time.Minute)
	cmd.Flags().DurationVar(&grace, "kill-grace", 0, "time between SIGTERM and SIGKILL when the lock is lost (default min(ttl/3, 10s))")
	return cmd
}

func (a *app) hold(ctx context.Context, c *client.Client, name string, argv []string, f lockFlags, grace time.Duration) error {
	opts := []client.LockOption{client.TTL(f.ttl), client.Owner(f.owner), client.Limit(f.limit),
		client.LockDelay(f.lockDelay), client.MaxHold(f.maxHold)}
	var l *client.Lock
	var err error
	if f.wait > 0 {
		actx, cancel := context.WithTimeout(ctx, f.wait)
		l, err = c.Lock(actx, name, opts...)
		cancel()
	} else {
		actx, cancel := context.WithTimeout(ctx, a.timeout)
		l, err = c.TryLock(actx, name, opts...)
		cancel()
	}
	if err != nil {
		return fmt.Errorf("acquire %q: %w", name, err)
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.Background(), a.timeout)
		_ = l.Unlock(uctx)
		cancel()
	}()
	child := exec.Command(argv[0], argv[1:]...)
	child.Stdin, child.Stdout, child.Stderr = os.Stdin, a.stdout, a.stderr
	child.Env = append(os.Environ(),
		"COORD_LOCK_NAME="+name,
		"COORD_LOCK_TOKEN="+strconv.FormatUint(l.Token(), 10),
		"COORD_LOCK_OWNER="+l.Owner(),
		"COORD_LOCK_LEASE="+strconv.FormatUint(l.LeaseID(), 10))
	child.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := child.Start(); err != nil {
		return fmt.Errorf("run %s: %w", argv[0], err)
	}
	return supervise(ctx, child, l, grace)
}

// supervise waits for the child, terminating its process group when the
// lock is lost or coordctl is interrupted, and returns its exit status.
func supervise(ctx context.Context, child *exec.Cmd, l *client.Lock, grace time.Duration) error {
	pgid := child.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	var lost error
	var killAt <-chan time.Time
	lockDone, ctxDone := l.Done(), ctx.Done()
	for {
		select {
		case err := <-exited:
			_ = syscall.Kill(-pgid, syscall.SIGKILL) // whatever the command left behind
			return exitStatus(err, lost, l.Name())
		case <-lockDone:
			lost = l.Err()
			lockDone = nil
			_ = syscall.Kill(-pgid, syscall.SIGTERM)
			killAt = time.After(grace)
		case <-ctxDone:
			ctxDone = nil
			_ = syscall.Kill(-pgid, syscall.SIGTERM)
			if killAt == nil {
				killAt = time.After(grace)
			}
		case <-killAt:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			killAt = nil
		}
	}
}

func exitStatus(waitErr, lost error, name string) error {
	code := 0
	var ee *exec.ExitError
	if errors.As(waitErr, &ee) {
		code = ee.ExitCode()
		if code < 0 { // killed by a signal
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				code = 128 + int(ws.Signal())
			} else {
				code = 1
			}
		}
	} else if waitErr != nil {
		return waitErr
	}
	if lost != nil {
		return exitCodeError{code: max(code, 1), msg: fmt.Sprintf("lock %q lost while the command ran: %v", name, lost)}
	}
	if code != 0 {
		return exitCodeError{code: code}
	}
	return nil
}
