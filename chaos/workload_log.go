package chaos

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	coordv1 "coord/api/coord/v1"
	"coord/client"
)

// Log workload shape.
const (
	logStreams   = 3
	logClients   = 3
	logOpTimeout = 5 * time.Second
	logTail      = 5 // events a tail read returns
)

// logWorkload appends events with unique ids to a few streams and reads
// their tails; at the end it reads every stream and the log of all streams
// in full. It needs a coordd that serves EventLogService; against one that
// does not, it records why and drives no traffic.
type logWorkload struct {
	env      *runEnv
	streams  []string
	clients  []*client.Client
	disabled string
}

func newLogWorkload(env *runEnv) *logWorkload {
	w := &logWorkload{env: env}
	for i := range logStreams {
		w.streams = append(w.streams, fmt.Sprintf("chaos-log-s%d", i))
	}
	return w
}

func (w *logWorkload) name() string { return "log" }

func (w *logWorkload) setup(ctx context.Context) error {
	for range logClients {
		c, err := w.env.newClient(ctx)
		if err != nil {
			return err
		}
		w.clients = append(w.clients, c)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := logStreamInfo(pctx, w.clients[0], w.streams[0])
	if errors.Is(err, client.ErrUnimplemented) {
		w.disabled = "this coordd does not serve EventLogService; the log workload drove no traffic"
		return nil
	}
	return err
}

func (w *logWorkload) close() {
	for _, c := range w.clients {
		c.Close()
	}
}

func (w *logWorkload) run(ctx context.Context) {
	if w.disabled != "" {
		return
	}
	var wg sync.WaitGroup
	for i, c := range w.clients {
		wg.Add(1)
		go func() { defer wg.Done(); w.clientLoop(ctx, i, c) }()
	}
	wg.Wait()
}

func (w *logWorkload) clientLoop(ctx context.Context, ci int, c *client.Client) {
	rng := w.env.rng(400 + uint64(ci))
	for n := 0; ctx.Err() == nil; n++ {
		stream := w.streams[rng.IntN(len(w.streams))]
		if rng.IntN(10) < 7 {
			var ids []string
			for k := range 1 + rng.IntN(3) {
				ids = append(ids, fmt.Sprintf("c%d-%d-%d", ci, n, k))
			}
			w.append(ctx, ci, c, stream, ids)
		} else {
			w.tail(ctx, ci, c, stream)
		}
	}
}

func (w *logWorkload) append(ctx context.Context, ci int, c *client.Client, stream string, ids []string) {
	op := w.env.hist.begin(&Op{Workload: "log", Client: ci, Kind: "append", Key: stream})
	for _, id := range ids {
		op.Events = append(op.Events, EventRef{ID: id})
	}
	octx, cancel := context.WithTimeout(ctx, logOpTimeout)
	defer cancel()
	resp, err := logAppend(octx, c, stream, ids)
	if err != nil {
		w.env.hist.end(op, writeOutcome(err), err)
		return
	}
	res := resp.GetResult()
	op.OK = res == coordv1.AppendResult_APPEND_RESULT_APPENDED || res == coordv1.AppendResult_APPEND_RESULT_DUPLICATE
	op.Extra = res.String()
	if op.OK && len(resp.GetVersions()) == len(ids) && len(resp.GetPositions()) == len(ids) {
		for i := range op.Events {
			op.Events[i].Version, op.Events[i].Position = resp.GetVersions()[i], resp.GetPositions()[i]
		}
	} else if op.OK {
		op.Extra += fmt.Sprintf(" (%d versions, %d positions for %d events)", len(resp.GetVersions()), len(resp.GetPositions()), len(ids))
	}
	w.env.hist.end(op, StatusOK, nil)
}

// tail reads a stream's last events (one linearizable read).
func (w *logWorkload) tail(ctx context.Context, ci int, c *client.Client, stream string) {
	op := w.env.hist.begin(&Op{Workload: "log", Client: ci, Kind: "tail", Key: stream})
	octx, cancel := context.WithTimeout(ctx, logOpTimeout)
	defer cancel()
	resp, err := logTailRead(octx, c, stream, logTail)
	if err != nil {
		w.env.hist.end(op, StatusFail, err)
		return
	}
	op.Seq = resp.GetStream().GetNextVersion()
	for _, e := range resp.GetEvents() {
		op.Events = append(op.Events, EventRef{ID: e.GetId(), Version: e.GetVersion(), Position: e.GetPosition()})
	}
	w.env.hist.end(op, StatusOK, nil)
}

// final reads every stream and the log of all streams from the start.
func (w *logWorkload) final(ctx context.Context) error {
	if w.disabled != "" {
		return nil
	}
	c := w.clients[0]
	for _, s := range w.streams {
		op := w.env.hist.begin(&Op{Workload: "log", Kind: "final-stream", Key: s})
		for from := uint64(0); ; {
			resp, err := logReadStream(ctx, c, s, from)
			if err != nil {
				w.env.hist.end(op, StatusFail, err)
				return fmt.Errorf("final read of stream %s: %w", s, err)
			}
			for _, e := range resp.GetEvents() {
				op.Events = append(op.Events, EventRef{ID: e.GetId(), Stream: s, Version: e.GetVersion(), Position: e.GetPosition()})
			}
			if resp.GetEndOfStream() || len(resp.GetEvents()) == 0 {
				break
			}
			from = resp.GetNextVersion()
		}
		w.env.hist.end(op, StatusOK, nil)
	}
	op := w.env.hist.begin(&Op{Workload: "log", Kind: "final-all"})
	for from := uint64(0); ; {
		resp, err := logReadAll(ctx, c, from)
		if err != nil {
			w.env.hist.end(op, StatusFail, err)
			return fmt.Errorf("final read of the log: %w", err)
		}
		for _, e := range resp.GetEvents() {
			op.Events = append(op.Events, EventRef{ID: e.GetId(), Stream: e.GetStream(), Version: e.GetVersion(), Position: e.GetPosition()})
		}
		if resp.GetEndOfLog() || resp.GetNextPosition() == from {
			break
		}
		from = resp.GetNextPosition()
	}
	w.env.hist.end(op, StatusOK, nil)
	return nil
}

func (w *logWorkload) check(ops []*Op, cc checkConfig) workloadResult {
	if w.disabled != "" {
		return workloadResult{Notes: []string{w.disabled}}
	}
	return checkLog(ops, w.streams, cc)
}
