package client

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	coordv1 "coord/api/coord/v1"
)

// PutOption configures Put.
type PutOption interface{ applyPut(*putOptions) }

// DeleteOption configures Delete.
type DeleteOption interface{ applyDelete(*deleteOptions) }

// ReadOption configures a read such as Get.
type ReadOption interface{ applyRead(*readOptions) }

type putOptions struct {
	fences   []*coordv1.Fence
	ttl      time.Duration
	expected *uint64
}

type deleteOptions struct{ expected *uint64 }

type readOptions struct{ consistency coordv1.ReadConsistency }

type ttlOption time.Duration

func (o ttlOption) applyPut(p *putOptions) { p.ttl = time.Duration(o) }

// WithTTL makes a put key expire d after the write, in server time. Zero
// means no expiry; a negative d is rejected with ErrInvalidArgument. The
// server accepts TTLs from 1s to 30 days.
func WithTTL(d time.Duration) PutOption { return ttlOption(d) }

// RevisionOption makes a Put or Delete conditional on the key's revision.
type RevisionOption struct{ rev uint64 }

func (o RevisionOption) applyPut(p *putOptions)       { p.expected = &o.rev }
func (o RevisionOption) applyDelete(d *deleteOptions) { d.expected = &o.rev }

// WithExpectedRevision makes a Put or Delete succeed only if the key's
// mod_revision equals rev; for Put, 0 means "only if the key is absent".
// A mismatch is not an error: the response's Succeeded field is false.
func WithExpectedRevision(rev uint64) RevisionOption { return RevisionOption{rev: rev} }

type staleOption struct{}

func (staleOption) applyRead(r *readOptions) {
	r.consistency = coordv1.ReadConsistency_READ_CONSISTENCY_STALE
}

// Stale makes a read be served from the nearest node's local state, which
// may lag behind the leader, instead of a linearizable read on the leader.
func Stale() ReadOption { return staleOption{} }

func kvClient(cc grpc.ClientConnInterface) coordv1.KVServiceClient {
	return coordv1.NewKVServiceClient(cc)
}

// Put writes value under key. A conditional put that does not match returns
// a response with Succeeded false and the current key, not an error.
func (c *Client) Put(ctx context.Context, key string, value []byte, opts ...PutOption) (*coordv1.PutResponse, error) {
	var o putOptions
	for _, opt := range opts {
		opt.applyPut(&o)
	}
	if key == "" {
		return nil, invalidArgument("put: empty key")
	}
	if o.ttl < 0 {
		return nil, invalidArgument("put: negative TTL %v", o.ttl)
	}
	req := &coordv1.PutRequest{Key: key, Value: value, ExpectedRevision: o.expected, Fences: o.fences}
	if o.ttl > 0 {
		req.Ttl = durationpb.New(o.ttl)
	}
	var resp *coordv1.PutResponse
	err := c.write(ctx, func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
		resp, err = kvClient(cc).Put(ctx, req)
		return err
	})
	return resp, err
}

// Get reads key. An absent key is not an error: the response's Found field
// is false. Reads are linearizable unless Stale is given.
func (c *Client) Get(ctx context.Context, key string, opts ...ReadOption) (*coordv1.GetResponse, error) {
	var o readOptions
	for _, opt := range opts {
		opt.applyRead(&o)
	}
	if key == "" {
		return nil, invalidArgument("get: empty key")
	}
	req := &coordv1.GetRequest{Key: key, Consistency: o.consistency}
	var resp *coordv1.GetResponse
	err := c.read(ctx, o.consistency, func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
		resp, err = kvClient(cc).Get(ctx, req)
		return err
	})
	return resp, err
}

// Delete removes key. Deleting an absent key succeeds with Deleted false; a
// conditional delete that does not match returns Succeeded false.
func (c *Client) Delete(ctx context.Context, key string, opts ...DeleteOption) (*coordv1.DeleteResponse, error) {
	var o deleteOptions
	for _, opt := range opts {
		opt.applyDelete(&o)
	}
	if key == "" {
		return nil, invalidArgument("delete: empty key")
	}
	req := &coordv1.DeleteRequest{Key: key, ExpectedRevision: o.expected}
	var resp *coordv1.DeleteResponse
	err := c.write(ctx, func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
		resp, err = kvClient(cc).Delete(ctx, req)
		return err
	})
	return resp, err
}
