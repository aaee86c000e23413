package client

import (
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc"
)

// Defaults applied by New to zero Config fields.
const (
	// DefaultDialTimeout bounds New's first contact with the cluster.
	DefaultDialTimeout = 5 * time.Second
	// DefaultAttemptTimeout bounds one attempt of a call.
	DefaultAttemptTimeout = 5 * time.Second
	// DefaultBaseBackoff is the first retry's backoff ceiling.
	DefaultBaseBackoff = 25 * time.Millisecond
	// DefaultMaxBackoff caps the backoff between retries.
	DefaultMaxBackoff = time.Second
)

// Config configures a Client. Only Endpoints is required.
type Config struct {
	// Endpoints lists gRPC addresses (host:port) of cluster members, nearest
	// first. The client learns the other members' addresses from the
	// cluster, so a subset is enough. Stale reads prefer the first endpoint
	// that answers.
	Endpoints []string
	// DialTimeout bounds New's wait for a first answer from any endpoint
	// (and each connection attempt). Zero means DefaultDialTimeout.
	DialTimeout time.Duration
	// AttemptTimeout bounds each attempt of a call, so that a hung node
	// costs at most this long before the call moves on. It never extends
	// the caller's context. Zero means DefaultAttemptTimeout.
	AttemptTimeout time.Duration
	// BaseBackoff is the ceiling of the first retry's randomised backoff;
	// the ceiling doubles per retry up to MaxBackoff. Zero means
	// DefaultBaseBackoff.
	BaseBackoff time.Duration
	// MaxBackoff caps the backoff between retries. Zero means
	// DefaultMaxBackoff.
	MaxBackoff time.Duration
	// Logger receives debug records about retries, redirects and leader
	// changes. Nil discards them.
	Logger *slog.Logger
	// DialOptions are appended to the client's own options for every
	// connection (insecure transport credentials and a short reconnect
	// backoff); later options win, so TLS credentials can be set here.
	DialOptions []grpc.DialOption
}

// withDefaults validates c and returns a copy with defaults applied.
func (c Config) withDefaults() (Config, error) {
	if len(c.Endpoints) == 0 {
		return c, invalidArgument("client: no endpoints configured")
	}
	eps := make([]string, 0, len(c.Endpoints))
	for _, ep := range c.Endpoints {
		ep = strings.TrimSpace(ep)
		if ep == "" {
			return c, invalidArgument("client: empty endpoint in %q", c.Endpoints)
		}
		eps = appendUnique(eps, ep)
	}
	c.Endpoints = eps
	durations := []struct {
		name string
		d    *time.Duration
		def  time.Duration
	}{
		{"DialTimeout", &c.DialTimeout, DefaultDialTimeout},
		{"AttemptTimeout", &c.AttemptTimeout, DefaultAttemptTimeout},
		{"BaseBackoff", &c.BaseBackoff, DefaultBaseBackoff},
		{"MaxBackoff", &c.MaxBackoff, DefaultMaxBackoff},
	}
	for _, f := range durations {
		if *f.d < 0 {
			return c, invalidArgument("client: negative %s %v", f.name, *f.d)
		}
		if *f.d == 0 {
			*f.d = f.def
		}
	}
	c.MaxBackoff = max(c.MaxBackoff, c.BaseBackoff)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// appendUnique appends s to list unless it is already there.
func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
