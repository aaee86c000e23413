package chaos

import (
	"context"

	coordv1 "coord/api/coord/v1"
	"coord/client"
)

// The log workload reaches the event log only through these functions, so
// that it follows the client library's event-log API in one place.

func logAppend(ctx context.Context, c *client.Client, stream string, ids []string) (*coordv1.AppendResponse, error) {
	events := make([]client.Event, len(ids))
	for i, id := range ids {
		events[i] = client.Event{ID: id, Type: "chaos", Data: []byte(id)}
	}
	return c.Append(ctx, stream, events)
}

func logTailRead(ctx context.Context, c *client.Client, stream string, n int) (*coordv1.ReadStreamResponse, error) {
	return c.ReadBackwards(ctx, stream, client.End, n)
}

func logReadStream(ctx context.Context, c *client.Client, stream string, from uint64) (*coordv1.ReadStreamResponse, error) {
	return c.Read(ctx, stream, from, 1000)
}

func logReadAll(ctx context.Context, c *client.Client, from uint64) (*coordv1.ReadAllResponse, error) {
	return c.ReadAll(ctx, from, 1000, client.Filter{})
}

func logStreamInfo(ctx context.Context, c *client.Client, stream string) (*coordv1.GetStreamResponse, error) {
	return c.StreamInfo(ctx, stream)
}
