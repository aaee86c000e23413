package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	coordv1 "coord/api/coord/v1"
	"coord/client"
	"coord/eventlog"
)

// eventJSONHelp documents the JSON line printed per event.
const eventJSONHelp = `JSON (-o json): one object per event per line, with exactly these fields:
  {"stream": "orders", "version": 0, "position": 17, "id": "...",
   "type": "OrderPlaced", "time": "2026-01-02T15:04:05.123456789Z",
   "data": "...", "data_encoding": "utf8", "metadata": {"k": "v"}}
  version and position are numbers; time is the server time of the append
  (RFC 3339, UTC); data is the payload as text when data_encoding is
  "utf8", or base64 when it is "base64" (payloads that are not UTF-8);
  metadata is always an object, {} when empty.`

func (a *app) logCmd() *cobra.Command {
	cmd := groupCmd("log", "Append to, read and follow event streams", `The event log holds named, append-only streams of events. Every event gets
a version (its number in its stream, from 0, without gaps) and a global
position (its number across all streams, from 0, without gaps).

  append     append events (arguments, or lines of a file or stdin)
  read       read a stream by version
  read-all   read every stream by global position, optionally filtered
  tail       follow a stream or every stream until interrupted
  streams    list streams
  info       describe a stream
  delete     delete a stream (its name is never reused)
  retention  set a stream's retention
  cursor     get or set a durable consumer cursor

Stream and cursor names are 1-200 bytes of letters, digits and -_.:/@,
starting with a letter or digit. Event ids and types are 1-128 bytes of
printable ASCII without spaces; data is at most 512 KiB per event.`)
	cmd.AddCommand(a.logAppendCmd(), a.logReadCmd(), a.logReadAllCmd(), a.logTailCmd(),
		a.logStreamsCmd(), a.logInfoCmd(), a.logDeleteCmd(), a.logRetentionCmd(), a.logCursorCmd())
	return cmd
}

// eventLine is the stable JSON form of an event (see eventJSONHelp).
type eventLine struct {
	Stream       string            `json:"stream"`
	Version      uint64            `json:"version"`
	Position     uint64            `json:"position"`
	ID           string            `json:"id"`
	Type         string            `json:"type"`
	Time         string            `json:"time"`
	Data         string            `json:"data"`
	DataEncoding string            `json:"data_encoding"`
	Metadata     map[string]string `json:"metadata"`
}

// printEvent prints one event as a JSON line or a line of text:
// "pos=P STREAM@VERSION type=T id=ID DATA" (DATA quoted unless it is
// printable UTF-8).
func (a *app) printEvent(ev *coordv1.RecordedEvent) error {
	if a.out().json {
		line := eventLine{
			Stream: ev.Stream, Version: ev.Version, Position: ev.Position, ID: ev.Id, Type: ev.Type,
			Time: ev.Time.AsTime().UTC().Format(time.RFC3339Nano), Data: string(ev.Data), DataEncoding: "utf8",
			Metadata: ev.Metadata,
		}
		if line.Metadata == nil {
			line.Metadata = map[string]string{}
		}
		if !utf8.Valid(ev.Data) {
			line.Data, line.DataEncoding = base64.StdEncoding.EncodeToString(ev.Data), "base64"
		}
		raw, err := json.Marshal(line)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.stdout, "%s\n", raw)
		return err
	}
	return a.out().line("pos=%d %s@%d type=%s id=%s %s", ev.Position, ev.Stream, ev.Version, ev.Type, ev.Id, dataText(ev.Data))
}

// dataText renders a payload for a line of text.
func dataText(b []byte) string {
	s := string(b)
	if !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

// parseExpectation parses --expect-version.
func parseExpectation(s string) (client.Expectation, error) {
	switch s {
	case "", "any":
		return client.ExpectAny(), nil
	case "no-stream":
		return client.ExpectNoStream(), nil
	case "exists":
		return client.ExpectExists(), nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return client.Expectation{}, usagef("invalid --expect-version %q: want a version, no-stream, exists or any", s)
	}
	return client.ExpectVersion(n), nil
}

// expectFlag registers --expect-version.
func expectFlag(cmd *cobra.Command, s *string) {
	cmd.Flags().StringVar(s, "expect-version", "any", "required stream state: a version N (of the last event), no-stream, exists or any")
}

func (a *app) logReadCmd() *cobra.Command {
	var from uint64
	var limit int
	var backwards, stale bool
	cmd := &cobra.Command{
		Use:   "read STREAM [--from N] [--limit N] [--backwards] [--stale]",
		Short: "Read a stream's events by version",
		Long: `Print STREAM's events from version --from (default 0; with --backwards,
the last event), at most --limit of them (0: all). Reads are linearizable
unless --stale; --timeout bounds each page of up to 1000 events.

Table output: one line per event: "pos=P STREAM@VERSION type=T id=ID DATA".
` + eventJSONHelp + `
Exit status 1 when the stream does not exist or is deleted.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 0 {
				return usagef("invalid --limit %d: must not be negative", limit)
			}
			if backwards && !cmd.Flags().Changed("from") {
				from = client.End
			}
			read := (*client.Client).Read
			if backwards {
				read = (*client.Client).ReadBackwards
			}
			return a.withStreamingClient(cmd, func(ctx context.Context, c *client.Client) error {
				return a.readStream(ctx, args[0], from, limit, func(ctx context.Context, from uint64, n int) (*coordv1.ReadStreamResponse, error) {
					return read(c, ctx, args[0], from, n, readOpts(stale)...)
				})
			})
		},
	}
	cmd.Flags().Uint64Var(&from, "from", 0, "first version to print")
	cmd.Flags().IntVar(&limit, "limit", 0, "print at most N events (0: all)")
	cmd.Flags().BoolVar(&backwards, "backwards", false, "print newest first")
	cmd.Flags().BoolVar(&stale, "stale", false, "read the nearest node's local state")
	return cmd
}

// pageCtx bounds one request of a paged command by --timeout.
func (a *app) pageCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, a.timeout)
}

// readOpts returns the read options for --stale.
func readOpts(stale bool) []client.ReadOption {
	if stale {
		return []client.ReadOption{client.Stale()}
	}
	return nil
}

// readStream prints a stream page by page; read fetches one page.
func (a *app) readStream(ctx context.Context, stream string, from uint64, limit int, read func(ctx context.Context, from uint64, n int) (*coordv1.ReadStreamResponse, error)) error {
	printed := 0
	for {
		n := eventlog.MaxReadLimit
		if limit > 0 {
			n = min(n, limit-printed)
		}
		pctx, cancel := a.pageCtx(ctx)
		page, err := read(pctx, from, n)
		cancel()
		if err != nil {
			return fmt.Errorf("read %q: %w", stream, err)
		}
		switch page.Status {
		case coordv1.StreamStatus_STREAM_STATUS_NOT_FOUND:
			return fmt.Errorf("stream %q not found", stream)
		case coordv1.StreamStatus_STREAM_STATUS_DELETED:
			return fmt.Errorf("stream %q is deleted", stream)
		}
		for _, ev := range page.Events {
			if err := a.printEvent(ev); err != nil {
				return err
			}
		}
		printed += len(page.Events)
		if page.EndOfStream || (limit > 0 && printed >= limit) || len(page.Events) == 0 {
			return nil
		}
		from = page.NextVersion
	}
}

func (a *app) logReadAllCmd() *cobra.Command {
	var from uint64
	var limit int
	var prefix, typ string
	var stale bool
	cmd := &cobra.Command{
		Use:   "read-all [--from P] [--prefix P] [--type T] [--limit N] [--stale]",
		Short: "Read every stream's events by global position",
		Long: `Print the events of every stream from global position --from (default 0)
to the end of the log, at most --limit of them (0: all), keeping only
streams whose name starts with --prefix and events of type --type when
given. Positions of events removed by retention or deletion are skipped.
--timeout bounds each page.

Table output: one line per event: "pos=P STREAM@VERSION type=T id=ID DATA".
` + eventJSONHelp,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 0 {
				return usagef("invalid --limit %d: must not be negative", limit)
			}
			filter := client.Filter{StreamPrefix: prefix, EventType: typ}
			return a.withStreamingClient(cmd, func(ctx context.Context, c *client.Client) error {
				return a.readAll(ctx, c, from, limit, filter, readOpts(stale))
			})
		},
	}
	cmd.Flags().Uint64Var(&from, "from", 0, "first global position to print")
	cmd.Flags().IntVar(&limit, "limit", 0, "print at most N events (0: all)")
	cmd.Flags().StringVar(&prefix, "prefix", "", "only streams whose name starts with this")
	cmd.Flags().StringVar(&typ, "type", "", "only events of this type")
	cmd.Flags().BoolVar(&stale, "stale", false, "read the nearest node's local state")
	return cmd
}

func (a *app) readAll(ctx context.Context, c *client.Client, from uint64, limit int, filter client.Filter, opts []client.ReadOption) error {
	printed := 0
	for {
		n := eventlog.MaxReadLimit
		if limit > 0 {
			n = min(n, limit-printed)
		}
		pctx, cancel := a.pageCtx(ctx)
		page, err := c.ReadAll(pctx, from, n, filter, opts...)
		cancel()
		if err != nil {
			return fmt.Errorf("read all: %w", err)
		}
		for _, ev := range page.Events {
			if err := a.printEvent(ev); err != nil {
				return err
			}
		}
		printed += len(page.Events)
		if page.EndOfLog || (limit > 0 && printed >= limit) {
			return nil
		}
		from = page.NextPosition
	}
}

func (a *app) logTailCmd() *cobra.Command {
	var from uint64
	var all bool
	var prefix, typ string
	cmd := &cobra.Command{
		Use:   "tail STREAM|--all [--from N] [--prefix P] [--type T]",
		Short: "Follow a stream, or every stream, until interrupted",
		Long: `Print events as they are appended, until interrupted: those of STREAM, or
with --all those of every stream (optionally only streams whose name starts
with --prefix and events of type --type). Without --from only new events
are printed; --from N starts at version N of STREAM, or at global position
N with --all, and prints the stored events first.

The tail survives leader changes and node restarts: it reconnects to
another node by itself and resumes after the last event printed, without
skipping or repeating one. It ends with exit status 1 if the stream is
deleted.

Table output: one line per event: "pos=P STREAM@VERSION type=T id=ID DATA".
` + eventJSONHelp,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) == 1) {
				return usagef("log tail: give a STREAM or --all")
			}
			if !all && (prefix != "" || typ != "") {
				return usagef("log tail: --prefix and --type need --all")
			}
			var opts []client.SubscribeOption
			if !cmd.Flags().Changed("from") {
				opts = append(opts, client.FromEnd())
			}
			return a.withStreamingClient(cmd, func(ctx context.Context, c *client.Client) error {
				if all {
					return a.tail(ctx, c.SubscribeAll(ctx, from, client.Filter{StreamPrefix: prefix, EventType: typ}, opts...))
				}
				return a.tail(ctx, c.Subscribe(ctx, args[0], from, opts...))
			})
		},
	}
	cmd.Flags().Uint64Var(&from, "from", 0, "start at this version (STREAM) or global position (--all)")
	cmd.Flags().BoolVar(&all, "all", false, "follow every stream")
	cmd.Flags().StringVar(&prefix, "prefix", "", "with --all: only streams whose name starts with this")
	cmd.Flags().StringVar(&typ, "type", "", "with --all: only events of this type")
	return cmd
}

func (a *app) tail(ctx context.Context, seq func(func(*coordv1.SubscribeResponse, error) bool)) error {
	for m, err := range seq {
		if err != nil {
			return fmt.Errorf("tail: %w", err)
		}
		if ev := m.GetEvent(); ev != nil {
			if err := a.printEvent(ev); err != nil {
				return err
			}
		}
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return nil // interrupted
	}
	return ctx.Err()
}

// openInput opens --file: "-" is standard input.
func openInput(path string) (io.ReadCloser, error) {
	if path == "-" {
		return io.NopCloser(os.Stdin), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, usagef("--file: %v", err)
	}
	return f, nil
}

// lineReader yields the non-empty lines of r, each at most
// eventlog.MaxDataBytes long.
func lineReader(r io.Reader) func() ([]byte, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), eventlog.MaxDataBytes+2)
	line := 0
	return func() ([]byte, error) {
		for sc.Scan() {
			line++
			b := strings.TrimSuffix(sc.Text(), "\r")
			if b != "" {
				return []byte(b), nil
			}
		}
		if errors.Is(sc.Err(), bufio.ErrTooLong) {
			return nil, fmt.Errorf("input line %d is longer than the %d-byte limit of an event", line+1, eventlog.MaxDataBytes)
		}
		if sc.Err() != nil {
			return nil, sc.Err()
		}
		return nil, io.EOF
	}
}
