package clienttest

import (
	"context"
	"net"
	"path"
	"strconv"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	coordv1 "coord/api/coord/v1"
)

// Call is one request received by a node.
type Call struct {
	// Node is the id of the node that received the request.
	Node string
	// Method is the short method name, e.g. "Put".
	Method string
	// ClientID, Seq and Acked are the request id headers (0 when absent).
	ClientID, Seq, Acked uint64
	// Request is the request message.
	Request proto.Message
}

// Hook intercepts every unary request to a node before its default
// behaviour. Returning (nil, nil) lets the default run; a non-nil response
// or error is returned instead. An error wrapped with AfterApply is returned
// after the default ran.
type Hook func(ctx context.Context, call Call) (any, error)

// Node is one fake coord node.
type Node struct {
	// ID is the node id.
	ID string
	// Addr is the node's gRPC address.
	Addr string
	// RaftAddr is the Raft address the node reports.
	RaftAddr string

	c    *Cluster
	opts []grpc.ServerOption

	mu      sync.Mutex
	srv     *grpc.Server
	hook    Hook
	stopped bool
}

// SetHook installs h (nil removes it).
func (n *Node) SetHook(h Hook) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.hook = h
}

// Stop stops the node at once: its listener and connections close and
// requests in progress fail on the client side.
func (n *Node) Stop() {
	n.mu.Lock()
	srv := n.srv
	n.srv, n.stopped = nil, true
	n.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
}

// Restart starts a stopped node again on its address.
func (n *Node) Restart() error {
	lis, err := net.Listen("tcp", n.Addr)
	if err != nil {
		return err
	}
	n.serve(lis)
	return nil
}

// Stopped reports whether the node is stopped.
func (n *Node) Stopped() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stopped
}

func (n *Node) serve(lis net.Listener) {
	opts := append([]grpc.ServerOption{grpc.UnaryInterceptor(n.intercept)}, n.opts...)
	srv := grpc.NewServer(opts...)
	s := &server{n: n}
	coordv1.RegisterClusterServiceServer(srv, s)
	coordv1.RegisterKVServiceServer(srv, s)
	n.mu.Lock()
	n.srv, n.stopped = srv, false
	n.mu.Unlock()
	go func() { _ = srv.Serve(lis) }()
}

type callKey struct{}

// callFrom returns the Call the interceptor stored in ctx.
func callFrom(ctx context.Context) Call {
	call, _ := ctx.Value(callKey{}).(Call)
	return call
}

// intercept records the call, runs the hook and then the handler.
func (n *Node) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	call := Call{Node: n.ID, Method: path.Base(info.FullMethod)}
	call.Request, _ = req.(proto.Message)
	if err := readRequestID(ctx, &call); err != nil {
		return nil, err
	}
	n.c.record(call)
	ctx = context.WithValue(ctx, callKey{}, call)
	n.mu.Lock()
	hook := n.hook
	n.mu.Unlock()
	if hook == nil {
		return handler(ctx, req)
	}
	resp, err := hook(ctx, call)
	if after, ok := isAfterApply(err); ok {
		if _, err := handler(ctx, req); err != nil {
			return nil, err
		}
		return nil, after
	}
	if resp != nil || err != nil {
		return resp, err
	}
	return handler(ctx, req)
}

// readRequestID parses the request id headers into call.
func readRequestID(ctx context.Context, call *Call) error {
	md, _ := metadata.FromIncomingContext(ctx)
	fields := []struct {
		key string
		dst *uint64
	}{
		{coordv1.HeaderClientID, &call.ClientID},
		{coordv1.HeaderSeq, &call.Seq},
		{coordv1.HeaderAcked, &call.Acked},
	}
	for _, f := range fields {
		vals := md.Get(f.key)
		if len(vals) == 0 {
			continue
		}
		if len(vals) > 1 {
			return status.Errorf(codes.InvalidArgument, "%s sent %d times", f.key, len(vals))
		}
		v, err := strconv.ParseUint(vals[0], 10, 64)
		if err != nil {
			return status.Errorf(codes.InvalidArgument, "bad %s %q", f.key, vals[0])
		}
		*f.dst = v
	}
	return nil
}

// requireLeader returns NOT_LEADER or NO_LEADER unless n leads.
func (n *Node) requireLeader() error {
	c := n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.leader {
	case n.ID:
		return nil
	case "":
		return NoLeaderError()
	}
	addr := ""
	if l := c.Node(c.leader); l != nil {
		addr = l.Addr
	}
	return NotLeaderError(c.leader, addr)
}
