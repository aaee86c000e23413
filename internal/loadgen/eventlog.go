package loadgen

import (
	"context"
	"fmt"

	"coord/client"
)

// LogAppend appends PerRequest events of ValueSize bytes per operation, in
// one atomic Append, to the worker's own stream (Streams > 0 spreads the
// workers over that many streams instead). Event ids are left to the
// client, which makes one per event, as most callers do.
type LogAppend struct {
	Pool       Pool
	Prefix     string
	ValueSize  int
	PerRequest int
	Streams    int

	payload []byte
}

// Setup implements Workload.
func (w *LogAppend) Setup(context.Context, int) error {
	if w.PerRequest < 1 {
		return fmt.Errorf("events per request: %d, want at least 1", w.PerRequest)
	}
	w.payload = Value(w.ValueSize)
	return nil
}

// Op implements Workload.
func (w *LogAppend) Op(ctx context.Context, worker int) error {
	stream := worker
	if w.Streams > 0 {
		stream %= w.Streams
	}
	events := make([]client.Event, w.PerRequest)
	for i := range events {
		events[i] = client.Event{Type: "bench", Data: w.payload}
	}
	_, err := w.Pool.For(worker).Append(ctx, w.Prefix+"stream-"+KeyName(stream), events)
	return err
}

// Close implements Workload.
func (w *LogAppend) Close(context.Context) error { return nil }

// Extra implements Workload.
func (w *LogAppend) Extra() map[string]any {
	return map[string]any{"events_per_request": w.PerRequest}
}
