package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	coordv1 "coord/api/coord/v1"
	"coord/client"
)

// statusName turns STREAM_STATUS_ACTIVE into "active".
func statusName(s coordv1.StreamStatus) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "STREAM_STATUS_"))
}

// streamRow renders a stream for the streams table.
func streamRow(s *coordv1.StreamInfo) []string {
	return []string{s.Name, statusName(s.Status), fmt.Sprint(s.NextVersion - s.FirstVersion),
		fmt.Sprint(s.FirstVersion), fmt.Sprint(s.NextVersion), timeText(s.UpdateTime)}
}

var streamHeader = []string{"NAME", "STATUS", "EVENTS", "FIRST", "NEXT", "UPDATED"}

func (a *app) logStreamsCmd() *cobra.Command {
	var stale bool
	cmd := &cobra.Command{
		Use:   "streams [PREFIX] [--stale]",
		Short: "List streams",
		Long: `List the streams whose name starts with PREFIX (default: all), deleted
ones included, in name order.

Table output: NAME, STATUS (active or deleted), EVENTS (readable events),
FIRST (first readable version), NEXT (version the next event gets) and
UPDATED (time of the last append).
JSON: the coord.v1.ListStreamsResponse message: {"streams": [StreamInfo],
"next_page_token": ""}.`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			prefix := ""
			if len(args) == 1 {
				prefix = args[0]
			}
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				streams, err := c.ListStreams(ctx, prefix, readOpts(stale)...)
				if err != nil {
					return fmt.Errorf("list streams: %w", err)
				}
				if a.out().json {
					return a.out().message(&coordv1.ListStreamsResponse{Streams: streams})
				}
				rows := [][]string{}
				for _, s := range streams {
					rows = append(rows, streamRow(s))
				}
				return a.out().table(streamHeader, rows)
			})
		},
	}
	cmd.Flags().BoolVar(&stale, "stale", false, "read the nearest node's local state")
	return cmd
}

func (a *app) logInfoCmd() *cobra.Command {
	var stale bool
	cmd := &cobra.Command{
		Use:   "info STREAM [--stale]",
		Short: "Describe a stream",
		Long: `Describe STREAM: status, versions, last position, retention and times.

Table output: one "field: value" line each.
JSON: the coord.v1.GetStreamResponse message: {"stream": StreamInfo,
"head_position": "N"}.
Exit status 1 when the stream does not exist.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				resp, err := c.StreamInfo(ctx, args[0], readOpts(stale)...)
				if err != nil {
					return fmt.Errorf("info %q: %w", args[0], err)
				}
				if a.out().json {
					if err := a.out().message(resp); err != nil {
						return err
					}
				}
				if resp.Stream.Status == coordv1.StreamStatus_STREAM_STATUS_NOT_FOUND {
					return fmt.Errorf("stream %q not found", args[0])
				}
				if a.out().json {
					return nil
				}
				return a.printStreamInfo(resp.Stream)
			})
		},
	}
	cmd.Flags().BoolVar(&stale, "stale", false, "read the nearest node's local state")
	return cmd
}

func (a *app) printStreamInfo(s *coordv1.StreamInfo) error {
	r := s.Retention
	age := "-"
	if r.GetMaxAge() != nil {
		age = r.GetMaxAge().AsDuration().String()
	}
	last := "-"
	if s.NextVersion > 0 {
		last = fmt.Sprint(s.LastPosition)
	}
	lines := [][2]string{
		{"name", s.Name}, {"status", statusName(s.Status)},
		{"first version", fmt.Sprint(s.FirstVersion)}, {"next version", fmt.Sprint(s.NextVersion)},
		{"last position", last}, {"max count", countText(r.GetMaxCount())}, {"max age", age},
		{"truncate before", fmt.Sprint(r.GetTruncateBefore())},
		{"created", timeText(s.CreateTime)}, {"updated", timeText(s.UpdateTime)}, {"deleted", timeText(s.DeleteTime)},
	}
	for _, l := range lines {
		if err := a.out().line("%s: %s", l[0], l[1]); err != nil {
			return err
		}
	}
	return nil
}

func countText(n uint64) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

func (a *app) logDeleteCmd() *cobra.Command {
	var expect string
	cmd := &cobra.Command{
		Use:   "delete STREAM [--expect-version N|no-stream|exists|any]",
		Short: "Delete a stream; its name is never reused",
		Long: `Delete STREAM: its events disappear from reads at once (and from storage
soon after), and appending to it fails from then on. Deleting an absent
stream changes nothing.

Table output: "deleted STREAM", "stream STREAM not found; nothing deleted"
or "stream STREAM was deleted before".
JSON: the coord.v1.DeleteStreamResponse message.
Exit status 1 when --expect-version does not hold (nothing is deleted).`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			exp, err := parseExpectation(expect)
			if err != nil {
				return err
			}
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				resp, err := c.DeleteStream(ctx, args[0], exp)
				if err != nil {
					return fmt.Errorf("delete %q: %w", args[0], err)
				}
				return a.reportDelete(args[0], resp)
			})
		},
	}
	expectFlag(cmd, &expect)
	return cmd
}

func (a *app) reportDelete(stream string, resp *coordv1.DeleteStreamResponse) error {
	if a.out().json {
		if err := a.out().message(resp); err != nil {
			return err
		}
	}
	if resp.Result == coordv1.DeleteStreamResult_DELETE_STREAM_RESULT_WRONG_EXPECTED_VERSION {
		cur := "the stream has no events"
		if resp.StreamExists {
			cur = fmt.Sprintf("the stream's last version is %d", resp.CurrentVersion)
		}
		return fmt.Errorf("delete %q: expected version did not match: %s", stream, cur)
	}
	switch {
	case a.out().json:
		return nil
	case resp.Result == coordv1.DeleteStreamResult_DELETE_STREAM_RESULT_NOT_FOUND:
		return a.out().line("stream %q not found; nothing deleted", stream)
	case resp.Result == coordv1.DeleteStreamResult_DELETE_STREAM_RESULT_ALREADY_DELETED:
		return a.out().line("stream %q was deleted before", stream)
	}
	return a.out().line("deleted %q", stream)
}

func (a *app) logRetentionCmd() *cobra.Command {
	var r client.Retention
	cmd := &cobra.Command{
		Use:   "retention STREAM [--max-count N] [--max-age D] [--truncate-before V]",
		Short: "Set a stream's retention",
		Long: `Replace STREAM's retention: keep only the newest --max-count events (0: no
limit), remove events older than --max-age (server time; 0: no limit, else
at least 1s), remove events below version --truncate-before (it only ever
rises). Removed events disappear from reads at once; versions and
positions are never renumbered. The stream need not have events yet.

Table output: the stream as "log info" prints it.
JSON: the coord.v1.SetRetentionResponse message.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if r.MaxAge < 0 {
				return usagef("invalid --max-age %v: must not be negative", r.MaxAge)
			}
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				resp, err := c.SetRetention(ctx, args[0], r)
				if err != nil {
					return fmt.Errorf("retention %q: %w", args[0], err)
				}
				if a.out().json {
					return a.out().message(resp)
				}
				return a.printStreamInfo(resp.Stream)
			})
		},
	}
	cmd.Flags().Uint64Var(&r.MaxCount, "max-count", 0, "keep only the newest N events (0: no limit)")
	cmd.Flags().DurationVar(&r.MaxAge, "max-age", 0, "remove events older than this (0: no limit)")
	cmd.Flags().Uint64Var(&r.TruncateBefore, "truncate-before", 0, "remove events below this version")
	return cmd
}

func (a *app) logCursorCmd() *cobra.Command {
	cmd := groupCmd("cursor", "Get or set a durable consumer cursor", `A cursor is a named position committed through the replicated log, for a
consumer to record how far it has processed and to resume from there after
a crash. coord gives the position no meaning of its own.

  get NAME            print the position (exit status 1 if never set)
  set NAME POSITION   commit a position`)
	get := &cobra.Command{
		Use:   "get NAME",
		Short: "Print a cursor's position",
		Long: `Print cursor NAME's position. Exit status 1 when it was never committed.
JSON: the coord.v1.Cursor message: {"name", "position": "N", "update_time"}.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				cur, found, err := c.Cursor(ctx, args[0])
				if err != nil {
					return fmt.Errorf("cursor %q: %w", args[0], err)
				}
				if !found {
					return fmt.Errorf("cursor %q not found", args[0])
				}
				if a.out().json {
					return a.out().message(cur)
				}
				return a.out().line("%d", cur.Position)
			})
		},
	}
	set := &cobra.Command{
		Use:   "set NAME POSITION",
		Short: "Commit a cursor's position",
		Long: `Commit POSITION as cursor NAME's position. Prints "OK NAME=POSITION".
JSON: the coord.v1.Cursor message.`,
		Args: usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			pos, err := strconv.ParseUint(args[1], 10, 64)
			if err != nil {
				return usagef("invalid POSITION %q: want a non-negative integer", args[1])
			}
			return a.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				cur, err := c.CommitCursor(ctx, args[0], pos)
				if err != nil {
					return fmt.Errorf("cursor %q: %w", args[0], err)
				}
				if a.out().json {
					return a.out().message(cur)
				}
				return a.out().line("OK %s=%d", cur.Name, cur.Position)
			})
		},
	}
	cmd.AddCommand(get, set)
	return cmd
}
