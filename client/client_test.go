package client

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"coord/client/clienttest"
)

// testConfig is a Config with short timeouts for tests.
func testConfig(endpoints ...string) Config {
	cfg := Config{
		Endpoints:      endpoints,
		DialTimeout:    2 * time.Second,
		AttemptTimeout: time.Second,
		BaseBackoff:    2 * time.Millisecond,
		MaxBackoff:     20 * time.Millisecond,
	}
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return cfg
}

// newTestClient connects to endpoints and closes the client when the test
// ends. Options may adjust the config.
func newTestClient(t *testing.T, endpoints []string, adjust ...func(*Config)) *Client {
	t.Helper()
	cfg := testConfig(endpoints...)
	for _, f := range adjust {
		f(&cfg)
	}
	c, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// deadAddr returns a local address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(timeout)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

func TestNewLearnsLeaderAndMembers(t *testing.T) {
	fc := clienttest.Start(t, 3)
	c := newTestClient(t, []string{fc.Nodes[2].Addr})
	id, addr := c.Leader()
	if id != "n1" || addr != fc.Nodes[0].Addr {
		t.Fatalf("Leader() = %s %s, want n1 %s", id, addr, fc.Nodes[0].Addr)
	}
	eps := c.Endpoints()
	for _, a := range fc.Addrs() {
		if !slices.Contains(eps, a) {
			t.Errorf("Endpoints() = %v, missing member %s", eps, a)
		}
	}
	if eps[0] != fc.Nodes[2].Addr {
		t.Errorf("configured endpoint not first: %v", eps)
	}
	if c.ClientID() == 0 {
		t.Error("ClientID() = 0")
	}
}

func TestNewToleratesDeadEndpoints(t *testing.T) {
	fc := clienttest.Start(t, 3)
	fc.Nodes[1].Stop()
	c := newTestClient(t, []string{deadAddr(t), fc.Nodes[1].Addr, fc.Nodes[2].Addr})
	if id, _ := c.Leader(); id != "n1" {
		t.Fatalf("Leader() id = %q, want n1", id)
	}
	if _, err := c.Put(t.Context(), "k", []byte("v")); err != nil {
		t.Fatalf("Put: %v", err)
	}
}

func TestNewFailsWhenNoEndpointAnswers(t *testing.T) {
	cfg := testConfig(deadAddr(t), deadAddr(t))
	cfg.DialTimeout = 300 * time.Millisecond
	start := time.Now()
	c, err := New(t.Context(), cfg)
	if err == nil {
		c.Close()
		t.Fatal("New succeeded without a live endpoint")
	}
	if elapsed := time.Since(start); elapsed > cfg.DialTimeout+time.Second {
		t.Errorf("New took %v with DialTimeout %v", elapsed, cfg.DialTimeout)
	}
	if !errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrDeadline) {
		t.Errorf("New error %v: want ErrUnavailable or ErrDeadline", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no endpoints":     {},
		"empty endpoint":   {Endpoints: []string{"127.0.0.1:1", " "}},
		"negative timeout": {Endpoints: []string{"127.0.0.1:1"}, AttemptTimeout: -time.Second},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := New(t.Context(), cfg)
			if err == nil {
				c.Close()
				t.Fatal("New accepted the config")
			}
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("New error %v: want ErrInvalidArgument", err)
			}
		})
	}
}

func TestCloseFailsNewCalls(t *testing.T) {
	fc := clienttest.Start(t, 1)
	c := newTestClient(t, fc.Addrs())
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := c.Put(t.Context(), "k", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close: %v, want ErrClosed", err)
	}
	if _, err := c.Get(t.Context(), "k"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v, want ErrClosed", err)
	}
}

func TestCloseAbortsCallInFlight(t *testing.T) {
	fc := clienttest.Start(t, 1)
	fc.Nodes[0].SetHook(func(ctx context.Context, call clienttest.Call) (any, error) {
		if call.Method == "Put" {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return nil, nil
	})
	c := newTestClient(t, fc.Addrs())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Put(context.Background(), "k", []byte("v"))
		errc <- err
	}()
	waitFor(t, 5*time.Second, "the put to arrive", func() bool { return len(fc.Calls("Put")) == 1 })
	c.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) || !errors.Is(err, ErrOutcomeUnknown) {
			t.Fatalf("Put during Close: %v, want ErrClosed and ErrOutcomeUnknown", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Put did not return after Close")
	}
}
