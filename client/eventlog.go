package client

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	coordv1 "coord/api/coord/v1"
)

// End is a version past every stored one: ReadBackwards from End starts at
// a stream's last event.
const End uint64 = math.MaxUint64

// Event is an event to append.
type Event struct {
	// ID identifies the event within its stream: appending an id the stream
	// already stores is a no-op. Empty: Append generates a random id (a UUID)
	// once, before the first attempt.
	ID string
	// Type names the kind of event, e.g. "OrderPlaced" (required).
	Type string
	// Data is the payload.
	Data []byte
	// Metadata is free key-value pairs.
	Metadata map[string]string
}

// AppendOption configures Append: an Expectation or a FenceOption.
type AppendOption interface{ applyAppend(*writeOptions) }

// DeleteStreamOption configures DeleteStream: an Expectation or a
// FenceOption.
type DeleteStreamOption interface{ applyDeleteStream(*writeOptions) }

type writeOptions struct {
	kind    coordv1.ExpectedVersionKind
	version uint64
	fences  []*coordv1.Fence
}

// Expectation is the stream state an Append or DeleteStream requires. When
// it does not hold, nothing is written and the response's result says so
// (APPEND_RESULT_WRONG_EXPECTED_VERSION) with the stream's actual version:
// it is not an error.
type Expectation struct {
	kind    coordv1.ExpectedVersionKind
	version uint64
}

func (e Expectation) applyAppend(o *writeOptions)       { o.kind, o.version = e.kind, e.version }
func (e Expectation) applyDeleteStream(o *writeOptions) { o.kind, o.version = e.kind, e.version }

// ExpectVersion requires the stream's last event to have version n.
func ExpectVersion(n uint64) Expectation {
	return Expectation{kind: coordv1.ExpectedVersionKind_EXPECTED_VERSION_KIND_EXACT, version: n}
}

// ExpectNoStream requires that no event was ever appended to the stream.
func ExpectNoStream() Expectation {
	return Expectation{kind: coordv1.ExpectedVersionKind_EXPECTED_VERSION_KIND_NO_STREAM}
}

// ExpectExists requires that at least one event was appended to the stream.
func ExpectExists() Expectation {
	return Expectation{kind: coordv1.ExpectedVersionKind_EXPECTED_VERSION_KIND_EXISTS}
}

// ExpectAny requires nothing (the default).
func ExpectAny() Expectation {
	return Expectation{kind: coordv1.ExpectedVersionKind_EXPECTED_VERSION_KIND_ANY}
}

func (f FenceOption) applyAppend(o *writeOptions)       { o.fences = append(o.fences, f...) }
func (f FenceOption) applyDeleteStream(o *writeOptions) { o.fences = append(o.fences, f...) }

func logClient(cc grpc.ClientConnInterface) coordv1.EventLogServiceClient {
	return coordv1.NewEventLogServiceClient(cc)
}

// NewEventID returns a new UUID (version 7: a millisecond timestamp, then
// random bits), the id Append gives events that have none. Ids made one
// after another sort close together, which keeps the server's id index
// cheap to extend.
func NewEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[6:]) // crypto/rand.Read never fails
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixMilli())<<16|uint64(binary.BigEndian.Uint16(b[6:8])))
	b[6] = b[6]&0x0f | 0x70
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// Append appends events to stream atomically: all of them or none. The
// response's Versions and Positions give each event's version and global
// position. Append is exactly-once: retries after failures reuse the
// request id and the event ids, and an append whose event ids are all
// stored already returns the stored events' versions and positions
// (APPEND_RESULT_DUPLICATE). Appending to a deleted stream fails with an
// error matching ErrFailedPrecondition.
func (c *Client) Append(ctx context.Context, stream string, events []Event, opts ...AppendOption) (*coordv1.AppendResponse, error) {
	o := writeOptions{kind: coordv1.ExpectedVersionKind_EXPECTED_VERSION_KIND_ANY}
	for _, opt := range opts {
		opt.applyAppend(&o)
	}
	if stream == "" {
		return nil, invalidArgument("append: empty stream name")
	}
	if len(events) == 0 {
		return nil, invalidArgument("append: no events")
	}
	req := &coordv1.AppendRequest{Stream: stream, ExpectedKind: o.kind, ExpectedVersion: o.version, Fences: o.fences}
	for _, ev := range events {
		id := ev.ID
		if id == "" {
			id = NewEventID()
		}
		req.Events = append(req.Events, &coordv1.NewEvent{Id: id, Type: ev.Type, Data: ev.Data, Metadata: ev.Metadata})
	}
	var resp *coordv1.AppendResponse
	err := c.write(ctx, func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
		resp, err = logClient(cc).Append(ctx, req)
		return err
	})
	return resp, err
}

// Filter selects events of the log of all streams, for ReadAll and
// SubscribeAll. The zero Filter keeps every event; when both fields are set
// an event must match both.
type Filter struct {
	// StreamPrefix keeps events of streams whose name starts with it.
	StreamPrefix string
	// EventType keeps events of exactly this type.
	EventType string
}

func (f Filter) proto() *coordv1.EventFilter {
	if f == (Filter{}) {
		return nil
	}
	return &coordv1.EventFilter{StreamPrefix: f.StreamPrefix, EventType: f.EventType}
}

func readLimit(limit int) (uint32, error) {
	if limit < 0 || limit > math.MaxUint32 {
		return 0, invalidArgument("read: invalid limit %d", limit)
	}
	return uint32(limit), nil
}

// Read reads up to limit events of stream, in increasing versions from
// version from (limit 0: the server's default of 100; at most 1000). The
// response's NextVersion continues the read and EndOfStream says whether it
// reached the end. An absent or deleted stream is not an error: the
// response's Status says so. Reads are linearizable unless Stale is given.
func (c *Client) Read(ctx context.Context, stream string, from uint64, limit int, opts ...ReadOption) (*coordv1.ReadStreamResponse, error) {
	return c.readStream(ctx, stream, from, limit, coordv1.ReadDirection_READ_DIRECTION_FORWARDS, opts)
}

// ReadBackwards is Read in decreasing versions, from version from (End: from
// the last event).
func (c *Client) ReadBackwards(ctx context.Context, stream string, from uint64, limit int, opts ...ReadOption) (*coordv1.ReadStreamResponse, error) {
	return c.readStream(ctx, stream, from, limit, coordv1.ReadDirection_READ_DIRECTION_BACKWARDS, opts)
}

func (c *Client) readStream(ctx context.Context, stream string, from uint64, limit int, dir coordv1.ReadDirection, opts []ReadOption) (*coordv1.ReadStreamResponse, error) {
	var o readOptions
	for _, opt := range opts {
		opt.applyRead(&o)
	}
	if stream == "" {
		return nil, invalidArgument("read: empty stream name")
	}
	n, err := readLimit(limit)
	if err != nil {
		return nil, err
	}
	req := &coordv1.ReadStreamRequest{Stream: stream, FromVersion: from, Direction: dir, Limit: n, Consistency: o.consistency}
	var resp *coordv1.ReadStreamResponse
	err = c.read(ctx, o.consistency, func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
		resp, err = logClient(cc).ReadStream(ctx, req)
		return err
	})
	return resp, err
}

// ReadAll reads up to limit events of every stream that filter keeps, from
// global position from. The response's NextPosition continues the read; it
// moves past filtered-out events even when a page holds none.
func (c *Client) ReadAll(ctx context.Context, from uint64, limit int, filter Filter, opts ...ReadOption) (*coordv1.ReadAllResponse, error) {
	var o readOptions
	for _, opt := range opts {
		opt.applyRead(&o)
	}
	n, err := readLimit(limit)
	if err != nil {
		return nil, err
	}
	req := &coordv1.ReadAllRequest{FromPosition: from, Limit: n, Filter: filter.proto(), Consistency: o.consistency}
	var resp *coordv1.ReadAllResponse
	err = c.read(ctx, o.consistency, func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
		resp, err = logClient(cc).ReadAll(ctx, req)
		return err
	})
	return resp, err
}

// StreamInfo describes stream; an absent stream has status
// STREAM_STATUS_NOT_FOUND.
func (c *Client) StreamInfo(ctx context.Context, stream string, opts ...ReadOption) (*coordv1.GetStreamResponse, error) {
	var o readOptions
	for _, opt := range opts {
		opt.applyRead(&o)
	}
	req := &coordv1.GetStreamRequest{Stream: stream, Consistency: o.consistency}
	var resp *coordv1.GetStreamResponse
	err := c.read(ctx, o.consistency, func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
		resp, err = logClient(cc).GetStream(ctx, req)
		return err
	})
	return resp, err
}

// ListStreams lists every stream whose name starts with prefix, in name
// order, deleted ones included.
func (c *Client) ListStreams(ctx context.Context, prefix string, opts ...ReadOption) ([]*coordv1.StreamInfo, error) {
	var o readOptions
	for _, opt := range opts {
		opt.applyRead(&o)
	}
	var out []*coordv1.StreamInfo
	req := &coordv1.ListStreamsRequest{Prefix: prefix, PageSize: 1000, Consistency: o.consistency}
	for {
		var resp *coordv1.ListStreamsResponse
		err := c.read(ctx, o.consistency, func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
			resp, err = logClient(cc).ListStreams(ctx, req)
			return err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, resp.Streams...)
		if resp.NextPageToken == "" {
			return out, nil
		}
		req.PageToken = resp.NextPageToken
	}
}

// DeleteStream deletes stream: its events disappear from reads, and
// appending to it fails from then on (its name is never reused). The
// response's Result says whether it was deleted, absent, deleted before, or
// not in the expected state.
func (c *Client) DeleteStream(ctx context.Context, stream string, opts ...DeleteStreamOption) (*coordv1.DeleteStreamResponse, error) {
	o := writeOptions{kind: coordv1.ExpectedVersionKind_EXPECTED_VERSION_KIND_ANY}
	for _, opt := range opts {
		opt.applyDeleteStream(&o)
	}
	req := &coordv1.DeleteStreamRequest{Stream: stream, ExpectedKind: o.kind, ExpectedVersion: o.version, Fences: o.fences}
	var resp *coordv1.DeleteStreamResponse
	err := c.write(ctx, func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
		resp, err = logClient(cc).DeleteStream(ctx, req)
		return err
	})
	return resp, err
}

// Retention says which of a stream's events are kept; zero fields impose no
// limit.
type Retention struct {
	// MaxCount keeps only the newest MaxCount events.
	MaxCount uint64
	// MaxAge removes events older than this (server time; at least 1s).
	MaxAge time.Duration
	// TruncateBefore removes events with a lower version; it only rises.
	TruncateBefore uint64
}

// SetRetention replaces stream's retention. The stream need not have
// events yet.
func (c *Client) SetRetention(ctx context.Context, stream string, r Retention) (*coordv1.SetRetentionResponse, error) {
	if r.MaxAge < 0 {
		return nil, invalidArgument("retention: negative max age %v", r.MaxAge)
	}
	ret := &coordv1.Retention{MaxCount: r.MaxCount, TruncateBefore: r.TruncateBefore}
	if r.MaxAge > 0 {
		ret.MaxAge = durationpb.New(r.MaxAge)
	}
	req := &coordv1.SetRetentionRequest{Stream: stream, Retention: ret}
	var resp *coordv1.SetRetentionResponse
	err := c.write(ctx, func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
		resp, err = logClient(cc).SetRetention(ctx, req)
		return err
	})
	return resp, err
}

// CommitCursor durably sets the named cursor to position. Pass WithFence to
// make the commit conditional on holding a lock.
func (c *Client) CommitCursor(ctx context.Context, name string, position uint64, fences ...FenceOption) (*coordv1.Cursor, error) {
	req := &coordv1.CommitCursorRequest{Name: name, Position: position}
	for _, f := range fences {
		req.Fences = append(req.Fences, f...)
	}
	var resp *coordv1.CommitCursorResponse
	err := c.write(ctx, func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
		resp, err = logClient(cc).CommitCursor(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp.Cursor, nil
}

// Cursor reads the named cursor; found is false when it was never
// committed.
func (c *Client) Cursor(ctx context.Context, name string, opts ...ReadOption) (cursor *coordv1.Cursor, found bool, err error) {
	var o readOptions
	for _, opt := range opts {
		opt.applyRead(&o)
	}
	req := &coordv1.GetCursorRequest{Name: name, Consistency: o.consistency}
	var resp *coordv1.GetCursorResponse
	err = c.read(ctx, o.consistency, func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
		resp, err = logClient(cc).GetCursor(ctx, req)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return resp.Cursor, resp.Found, nil
}
