package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	coordv1 "coord/api/coord/v1"
	"coord/client"
)

func (a *app) kvCmd() *cobra.Command {
	cmd := groupCmd("kv", "Read and write keys",
		`Read and write keys of the replicated key-value register.

Keys are 1 to 512 bytes of printable ASCII without spaces; values are at
most 64 KiB. Writes are applied exactly once even when retried.`)
	cmd.AddCommand(a.kvPutCmd(), a.kvGetCmd(), a.kvDelCmd())
	return cmd
}

// revisionFlag registers --expect-revision.
func revisionFlag(cmd *cobra.Command, rev *uint64) {
	cmd.Flags().Uint64Var(rev, "expect-revision", 0, "apply only if the key's mod_revision equals N (put: 0 = only if absent)")
}

// expectedRevision returns --expect-revision, or nil when it was not given.
func expectedRevision(cmd *cobra.Command, rev uint64) *uint64 {
	if !cmd.Flags().Changed("expect-revision") {
		return nil
	}
	return &rev
}

// mismatch is the error for a conditional write whose revision did not match.
func mismatch(op, key string, expected uint64, kv *coordv1.KeyValue) error {
	cur := "the key does not exist"
	if kv != nil {
		cur = fmt.Sprintf("current revision is %d", kv.GetModRevision())
	}
	return fmt.Errorf("%s %q: revision did not match: expected %d, %s", op, key, expected, cur)
}

func (a *app) kvPutCmd() *cobra.Command {
	var ttl time.Duration
	var rev uint64
	var fences []string
	cmd := &cobra.Command{
		Use:   "put KEY VALUE [--ttl 30s] [--expect-revision N] [--fence LOCK:TOKEN]",
		Short: "Write a key",
		Long: `Write VALUE under KEY.

--ttl makes the key expire that long after the write (server time; 1s to
30 days; 0 = never). --expect-revision N writes only if the key's
mod_revision is N; 0 means only if the key does not exist. When the
revision does not match, nothing is written and coordctl exits 1 with a
message naming the current revision. --fence LOCK:TOKEN (repeatable) writes
only if TOKEN is a current grant of LOCK (e.g. --fence
"$COORD_LOCK_NAME:$COORD_LOCK_TOKEN" inside 'coordctl lock hold'); otherwise
nothing is written and coordctl exits 1 saying the write was fenced.

Table output: "OK revision=N" (N is the key's new mod_revision).
JSON: the coord.v1.PutResponse message (printed also when the revision did
not match):
  {"succeeded": true, "kv": KeyValue, "revision": "N"}`,
		Args: usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ttl < 0 {
				return usagef("invalid --ttl %v: must not be negative", ttl)
			}
			expected := expectedRevision(cmd, rev)
			fs, err := parseFences(fences)
			if err != nil {
				return err
			}
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				return a.put(ctx, c, args[0], args[1], ttl, expected, fs...)
			})
		},
	}
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "expire the key this long after the write (0 = never)")
	cmd.Flags().StringArrayVar(&fences, "fence", nil, "write only while TOKEN is a current grant of LOCK (LOCK:TOKEN; repeatable)")
	revisionFlag(cmd, &rev)
	return cmd
}

func (a *app) put(ctx context.Context, c *client.Client, key, value string, ttl time.Duration, expected *uint64, fences ...*coordv1.Fence) error {
	opts := []client.PutOption{client.WithTTL(ttl)}
	if len(fences) > 0 {
		opts = append(opts, client.WithFence(fences...))
	}
	if expected != nil {
		opts = append(opts, client.WithExpectedRevision(*expected))
	}
	resp, err := c.Put(ctx, key, []byte(value), opts...)
	if err != nil {
		return fmt.Errorf("put %q: %w", key, err)
	}
	if a.out().json {
		if err := a.out().message(resp); err != nil {
			return err
		}
	}
	if !resp.GetSucceeded() {
		return mismatch("put", key, *expected, resp.GetKv())
	}
	if a.out().json {
		return nil
	}
	return a.out().line("OK revision=%d", resp.GetKv().GetModRevision())
}

func (a *app) kvGetCmd() *cobra.Command {
	var stale bool
	cmd := &cobra.Command{
		Use:   "get KEY [--stale]",
		Short: "Read a key",
		Long: `Read KEY. Reads are linearizable (served by the leader) unless --stale,
which reads the nearest node's local state and may lag behind.

Table output: the value followed by a newline. An absent key exits 1 with
"key "KEY" not found".
JSON: the coord.v1.GetResponse message (printed also when absent), value
base64-encoded:
  {"found": true, "kv": {"key": "...", "value": "base64", "create_revision": "N",
   "mod_revision": "N", "version": "N", "expire_time": null}, "applied_index": "N"}`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			var opts []client.ReadOption
			if stale {
				opts = append(opts, client.Stale())
			}
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				return a.get(ctx, c, args[0], opts)
			})
		},
	}
	cmd.Flags().BoolVar(&stale, "stale", false, "read the nearest node's local state instead of a linearizable read")
	return cmd
}

func (a *app) get(ctx context.Context, c *client.Client, key string, opts []client.ReadOption) error {
	resp, err := c.Get(ctx, key, opts...)
	if err != nil {
		return fmt.Errorf("get %q: %w", key, err)
	}
	if a.out().json {
		if err := a.out().message(resp); err != nil {
			return err
		}
	}
	if !resp.GetFound() {
		return fmt.Errorf("key %q not found", key)
	}
	if a.out().json {
		return nil
	}
	_, err = fmt.Fprintf(a.stdout, "%s\n", resp.GetKv().GetValue())
	return err
}

func (a *app) kvDelCmd() *cobra.Command {
	var rev uint64
	cmd := &cobra.Command{
		Use:     "del KEY [--expect-revision N]",
		Aliases: []string{"delete"},
		Short:   "Delete a key",
		Long: `Delete KEY. Deleting an absent key succeeds. --expect-revision N deletes
only if the key's mod_revision is N; otherwise nothing is deleted and
coordctl exits 1 with a message naming the current revision.

Table output: "deleted "KEY"" or "key "KEY" not found; nothing deleted".
JSON: the coord.v1.DeleteResponse message (printed also when the revision
did not match):
  {"deleted": true, "succeeded": true, "revision": "N"}`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			expected := expectedRevision(cmd, rev)
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				return a.del(ctx, c, args[0], expected)
			})
		},
	}
	revisionFlag(cmd, &rev)
	return cmd
}

func (a *app) del(ctx context.Context, c *client.Client, key string, expected *uint64) error {
	var opts []client.DeleteOption
	if expected != nil {
		opts = append(opts, client.WithExpectedRevision(*expected))
	}
	resp, err := c.Delete(ctx, key, opts...)
	if err != nil {
		return fmt.Errorf("delete %q: %w", key, err)
	}
	if a.out().json {
		if err := a.out().message(resp); err != nil {
			return err
		}
	}
	if !resp.GetSucceeded() {
		// The delete response does not carry the key; read it to report
		// the revision it has now.
		got, err := c.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("delete %q: revision did not match: expected %d (reading the current revision failed: %w)", key, *expected, err)
		}
		return mismatch("delete", key, *expected, got.GetKv())
	}
	switch {
	case a.out().json:
		return nil
	case resp.GetDeleted():
		return a.out().line("deleted %q", key)
	}
	return a.out().line("key %q not found; nothing deleted", key)
}
