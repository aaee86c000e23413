package node

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Raft transport settings shared by the plain and the dial-map transport.
const (
	transportMaxPool = 4
	transportTimeout = 10 * time.Second
)

// newTCPTransport listens on bind and returns Raft's TCP transport. With a
// non-empty dialMap, the transport dials dialMap[addr] whenever Raft asks it
// to connect to peer address addr (and addr itself for peers not in the
// map); the addresses Raft stores and advertises are unchanged.
func newTCPTransport(bind string, advertise *net.TCPAddr, dialMap map[string]string, logger hclog.Logger) (*raft.NetworkTransport, error) {
	if len(dialMap) == 0 {
		return raft.NewTCPTransportWithLogger(bind, advertise, transportMaxPool, transportTimeout, logger)
	}
	if advertise == nil || advertise.IP == nil || advertise.IP.IsUnspecified() {
		return nil, errors.New("local bind address is not advertisable")
	}
	lis, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	stream := &dialMapStream{Listener: lis, advertise: advertise, dialMap: dialMap}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  stream,
		MaxPool: transportMaxPool,
		Timeout: transportTimeout,
		Logger:  logger,
	}), nil
}

// dialMapStream is a raft.StreamLayer over TCP that rewrites the addresses
// it dials.
type dialMapStream struct {
	net.Listener
	advertise net.Addr
	dialMap   map[string]string
}

// Dial connects to the address mapped from address, or to address itself.
func (s *dialMapStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	target := string(address)
	if to, ok := s.dialMap[target]; ok {
		target = to
	}
	return net.DialTimeout("tcp", target, timeout)
}

// Addr is the advertised address (net.Listener).
func (s *dialMapStream) Addr() net.Addr { return s.advertise }

// ParseDialMap parses "from=to[,from=to...]", each side a host:port, into
// the map used for Config.DialMap. An empty string gives a nil map.
func ParseDialMap(s string) (map[string]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		from, to, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("raft-dial-map: %q is not from=to", part)
		}
		if err := checkHostPort("raft-dial-map", from); err != nil {
			return nil, err
		}
		if err := checkHostPort("raft-dial-map", to); err != nil {
			return nil, err
		}
		if _, dup := out[from]; dup {
			return nil, fmt.Errorf("raft-dial-map: %s is mapped twice", from)
		}
		out[from] = to
	}
	return out, nil
}

// FormatDialMap is the inverse of ParseDialMap, with entries sorted.
func FormatDialMap(m map[string]string) string {
	parts := make([]string, 0, len(m))
	for from, to := range m {
		parts = append(parts, from+"="+to)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
