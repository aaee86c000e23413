package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	coordv1 "coord/api/coord/v1"
	"coord/client"
	"coord/eventlog"
)

// appendFlags are the flags of log append.
type appendFlags struct {
	typ, id, expect, file string
	meta                  map[string]string
}

func (a *app) logAppendCmd() *cobra.Command {
	var f appendFlags
	cmd := &cobra.Command{
		Use:   "append STREAM [DATA ...] [--type T] [--id ID] [--expect-version N|no-stream|exists|any] [--file F|-]",
		Short: "Append events to a stream",
		Long: `Append events to STREAM: one event per DATA argument, or with --file one
event per non-empty line of file F ("-": standard input). All events get
type --type (default "event") and the metadata given with --meta.

Ids: with --id, a single DATA argument gets id ID; several arguments, or
the lines of --file, get ID-0, ID-1, ... (their index in the input). Then
running the same command again appends nothing: events whose ids the
stream stores already are reported as duplicates. Without --id every event
gets a random id.

Input is sent in batches of up to 1000 events and 1 MiB; each batch is
appended atomically and exactly once, and --timeout bounds each batch.
--expect-version applies to the first batch; each later batch expects the
version the previous one ended at (unless the expectation is "any"), so
the batches land back to back. When the expectation does not hold, nothing
more is appended and coordctl exits 1 naming the stream's version.

Table output: one line per batch:
  "appended N event(s) to STREAM: versions A-B, positions P-Q"
  ("duplicate" instead of "appended" when the events were stored already).
JSON (-o json): one object per event per line:
  {"stream": "S", "id": "ID", "version": N, "position": N, "result": "appended"}
  where result is "appended" or "duplicate".`,
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			exp, err := parseExpectation(f.expect)
			if err != nil {
				return err
			}
			if (f.file != "") == (len(args) > 1) {
				return usagef("log append: give DATA arguments or --file, not both or neither")
			}
			if err := eventlog.ValidateEventType(f.typ); err != nil {
				return usagef("invalid --type: %v", err)
			}
			next := argsInput(args[1:])
			if f.file != "" {
				in, err := openInput(f.file)
				if err != nil {
					return err
				}
				defer in.Close()
				next = lineReader(in)
			}
			return a.withStreamingClient(cmd, func(ctx context.Context, c *client.Client) error {
				ap := &appender{a: a, c: c, stream: args[0], flags: f, expect: exp, chain: f.expect != "any",
					numbered: f.file != "" || len(args) > 2}
				return ap.run(ctx, next)
			})
		},
	}
	cmd.Flags().StringVar(&f.typ, "type", "event", "event type")
	cmd.Flags().StringVar(&f.id, "id", "", "event id (several events: ID-0, ID-1, ...); default random")
	cmd.Flags().StringVar(&f.file, "file", "", `read one event per line from this file ("-": standard input)`)
	cmd.Flags().StringToStringVar(&f.meta, "meta", nil, "metadata key=value for every event (repeatable)")
	expectFlag(cmd, &f.expect)
	return cmd
}

// argsInput yields each argument once.
func argsInput(args []string) func() ([]byte, error) {
	return func() ([]byte, error) {
		if len(args) == 0 {
			return nil, io.EOF
		}
		b := []byte(args[0])
		args = args[1:]
		return b, nil
	}
}

// appender batches input into appends.
type appender struct {
	a      *app
	c      *client.Client
	stream string
	flags  appendFlags
	expect client.Expectation
	chain  bool // each batch expects the version the previous ended at
	// numbered gives events ids ID-0, ID-1, ... (several inputs and --id).
	numbered bool
	count    int // events read so far
	batch    []client.Event
	size     int
}

// run reads events with next and appends them in batches.
func (ap *appender) run(ctx context.Context, next func() ([]byte, error)) error {
	for {
		data, err := next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		ev := ap.event(data)
		if err := ap.add(ctx, ev); err != nil {
			return err
		}
	}
	if ap.count == 0 {
		return usagef("log append: no events in the input")
	}
	return ap.flush(ctx)
}

// event builds the event for one input, with its id.
func (ap *appender) event(data []byte) client.Event {
	ev := client.Event{Type: ap.flags.typ, Data: data, Metadata: ap.flags.meta}
	switch {
	case ap.flags.id == "":
		ev.ID = client.NewEventID()
	case ap.numbered:
		ev.ID = fmt.Sprintf("%s-%d", ap.flags.id, ap.count)
	default:
		ev.ID = ap.flags.id
	}
	ap.count++
	return ev
}

// add queues ev, appending the queued batch first when ev would overflow it.
func (ap *appender) add(ctx context.Context, ev client.Event) error {
	size := len(ev.ID) + len(ev.Type) + len(ev.Data)
	for k, v := range ev.Metadata {
		size += len(k) + len(v)
	}
	if len(ap.batch) == eventlog.MaxEventsPerAppend || ap.size+size > eventlog.MaxAppendBytes {
		if err := ap.flush(ctx); err != nil {
			return err
		}
	}
	ap.batch, ap.size = append(ap.batch, ev), ap.size+size
	return nil
}

// flush appends the queued batch.
func (ap *appender) flush(ctx context.Context) error {
	if len(ap.batch) == 0 {
		return nil
	}
	bctx, cancel := ap.a.pageCtx(ctx)
	resp, err := ap.c.Append(bctx, ap.stream, ap.batch, ap.expect)
	cancel()
	if err != nil {
		return fmt.Errorf("append to %q: %w", ap.stream, err)
	}
	if resp.Result == coordv1.AppendResult_APPEND_RESULT_WRONG_EXPECTED_VERSION {
		return fmt.Errorf("append to %q: expected version did not match: %s", ap.stream, actual(resp))
	}
	if err := ap.report(resp); err != nil {
		return err
	}
	if ap.chain {
		ap.expect = client.ExpectVersion(resp.CurrentVersion)
	}
	ap.batch, ap.size = ap.batch[:0], 0
	return nil
}

func actual(resp *coordv1.AppendResponse) string {
	if !resp.StreamExists {
		return "the stream has no events"
	}
	return fmt.Sprintf("the stream's last version is %d", resp.CurrentVersion)
}

// report prints the outcome of one batch.
func (ap *appender) report(resp *coordv1.AppendResponse) error {
	result := "appended"
	if resp.Result == coordv1.AppendResult_APPEND_RESULT_DUPLICATE {
		result = "duplicate"
	}
	if !ap.a.out().json {
		n := len(resp.Versions)
		return ap.a.out().line("%s %d event(s) to %s: versions %s, positions %s", result, n, ap.stream,
			span(resp.Versions), span(resp.Positions))
	}
	for i, ev := range ap.batch {
		raw, err := json.Marshal(struct {
			Stream   string `json:"stream"`
			ID       string `json:"id"`
			Version  uint64 `json:"version"`
			Position uint64 `json:"position"`
			Result   string `json:"result"`
		}{ap.stream, ev.ID, resp.Versions[i], resp.Positions[i], result})
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(ap.a.stdout, "%s\n", raw); err != nil {
			return err
		}
	}
	return nil
}

// span renders a list of numbers as "A-B" when consecutive, else as a list.
func span(ns []uint64) string {
	if len(ns) == 0 {
		return "-"
	}
	for i := 1; i < len(ns); i++ {
		if ns[i] != ns[0]+uint64(i) {
			return fmt.Sprint(ns)
		}
	}
	if len(ns) == 1 {
		return fmt.Sprint(ns[0])
	}
	return fmt.Sprintf("%d-%d", ns[0], ns[len(ns)-1])
}
