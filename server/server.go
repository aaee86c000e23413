package server

import (
	"context"
	"log/slog"
	"strconv"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	coordv1 "coord/api/coord/v1"
	"coord/internal/cmdpb"
	"coord/internal/sm"
	"coord/node"
)

// Node is what the server needs from a node; *node.Node satisfies it.
type Node interface {
	ID() string
	IsLeader() bool
	Leader() (id, grpcAddr string)
	ClusterID() string
	Apply(ctx context.Context, p node.Proposal) (*node.Applied, error)
	Read(ctx context.Context, linearizable bool, machine uint32, fn func(env sm.Env, tx sm.Tx) error) error
	Members() ([]node.Member, error)
	Status() node.Status
	AddVoter(ctx context.Context, id, raftAddr string) error
	RemoveMember(ctx context.Context, id string) error
	SetMember(ctx context.Context, id, grpcAddr, httpAddr string) error
	TransferLeadership(ctx context.Context, id string) (string, error)
	Snapshot() (node.SnapshotInfo, error)
	StateHash() (uint64, [32]byte, error)
	Ready() (bool, string)
	SelfRegistered() bool
	Watch(machine uint32, topic string) <-chan struct{}
}

// Server holds the gRPC services of one node.
type Server struct {
	node    Node
	log     *slog.Logger
	version string
	conns   *connPool
}

// New returns the services for n.
func New(n Node, log *slog.Logger, version string) *Server {
	if log == nil {
		log = slog.Default()
	}
	return &Server{node: n, log: log, version: version, conns: newConnPool()}
}

// Register registers every service on g.
func (s *Server) Register(g grpc.ServiceRegistrar) {
	coordv1.RegisterClusterServiceServer(g, &clusterService{s: s})
	coordv1.RegisterKVServiceServer(g, &kvService{s: s})
	coordv1.RegisterLockServiceServer(g, &lockService{s: s})
	coordv1.RegisterEventLogServiceServer(g, &eventLogService{s: s})
}

// Close closes the connections used for forwarding.
func (s *Server) Close() error { return s.conns.close() }

// apply proposes a command carrying the request id from ctx's metadata and
// the given fences. A rejection by the state machine is returned as an error.
func (s *Server) apply(ctx context.Context, machine, op uint32, body proto.Message, fences ...*coordv1.Fence) (*node.Applied, error) {
	rid, err := requestID(ctx)
	if err != nil {
		return nil, err
	}
	fs, err := convertFences(fences)
	if err != nil {
		return nil, err
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(body)
	if err != nil {
		return nil, err
	}
	res, err := s.node.Apply(ctx, node.Proposal{
		ClientID: rid.client, Seq: rid.seq, AckedBelow: rid.acked,
		Machine: machine, Op: op, Body: b, Fences: fs,
	})
	if err != nil {
		return nil, err
	}
	if err := rejection(res.Result); err != nil {
		return nil, err
	}
	return res, nil
}

// MaxFences bounds the fences one request may carry.
const MaxFences = 8

func convertFences(fences []*coordv1.Fence) ([]*cmdpb.Fence, error) {
	if len(fences) > MaxFences {
		return nil, invalid("fences: %d given; the limit is %d", len(fences), MaxFences)
	}
	var out []*cmdpb.Fence
	for i, f := range fences {
		if f.GetLock() == "" || len(f.GetLock()) > 512 {
			return nil, invalid("fences[%d].lock: must be 1 to 512 bytes", i)
		}
		if f.GetToken() == 0 {
			return nil, invalid("fences[%d].token: must be a granted fencing token (non-zero)", i)
		}
		out = append(out, &cmdpb.Fence{Lock: f.Lock, Token: f.Token})
	}
	return out, nil
}

type reqID struct{ client, seq, acked uint64 }

// requestID parses the request-id metadata (see common.proto).
func requestID(ctx context.Context) (reqID, error) {
	get := func(key string) (uint64, bool, error) {
		v := metadata.ValueFromIncomingContext(ctx, key) // unlike FromIncomingContext, copies no map
		if len(v) == 0 {
			return 0, false, nil
		}
		n, err := strconv.ParseUint(v[0], 10, 64)
		if err != nil {
			return 0, true, invalid("metadata %s: %q is not an unsigned integer", key, v[0])
		}
		return n, true, nil
	}
	var r reqID
	var hasClient, hasSeq bool
	var err error
	if r.client, hasClient, err = get(coordv1.HeaderClientID); err != nil {
		return r, err
	}
	if r.seq, hasSeq, err = get(coordv1.HeaderSeq); err != nil {
		return r, err
	}
	if r.acked, _, err = get(coordv1.HeaderAcked); err != nil {
		return r, err
	}
	if hasClient != hasSeq || (hasClient && r.client == 0) {
		return r, invalid("metadata %s (non-zero) and %s must be sent together", coordv1.HeaderClientID, coordv1.HeaderSeq)
	}
	return r, nil
}

// connPool keeps one client connection per peer address.
type connPool struct {
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

func newConnPool() *connPool { return &connPool{conns: map[string]*grpc.ClientConn{}} }

func (p *connPool) get(addr string) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.conns[addr]; c != nil {
		return c, nil
	}
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	p.conns[addr] = c
	return c, nil
}

func (p *connPool) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, c := range p.conns {
		_ = c.Close()
		delete(p.conns, addr)
	}
	return nil
}
