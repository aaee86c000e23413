package chaos

import (
	"io"
	"net"
	"testing"
	"time"
)

// echoServer echoes every connection until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

// roundTrip writes a byte through addr and waits up to limit for its echo.
func roundTrip(addr string, limit time.Duration) (time.Duration, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	start := time.Now()
	if _, err := c.Write([]byte{7}); err != nil {
		return 0, err
	}
	_ = c.SetReadDeadline(time.Now().Add(limit))
	var b [1]byte
	_, err = io.ReadFull(c, b[:])
	return time.Since(start), err
}

func TestProxyCutDelayHeal(t *testing.T) {
	p, err := newProxy(1, 2, "127.0.0.1:0", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := roundTrip(p.Addr(), time.Second); err != nil {
		t.Fatalf("through a healthy link: %v", err)
	}

	p.SetDelays(0, 200*time.Millisecond)
	d, err := roundTrip(p.Addr(), 2*time.Second)
	if err != nil || d < 200*time.Millisecond {
		t.Fatalf("with a 200ms reply delay: round trip %v, %v", d, err)
	}
	p.SetDelay(0)

	live, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if _, err := live.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	if _, err := io.ReadFull(live, b[:]); err != nil {
		t.Fatal(err)
	}
	p.Cut()
	_ = live.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := live.Read(b[:]); err == nil {
		t.Fatal("a live connection survived the cut")
	}
	if _, err := roundTrip(p.Addr(), 300*time.Millisecond); err == nil {
		t.Fatal("a cut link forwarded data")
	}
	st := p.stats()
	if st.Severed == 0 || st.Blackholed == 0 || st.DelayedBytes == 0 {
		t.Fatalf("counters %+v", st)
	}
	p.Heal()
	if _, err := roundTrip(p.Addr(), time.Second); err != nil {
		t.Fatalf("after healing: %v", err)
	}
}

func TestClaimPorts(t *testing.T) {
	a, err := claimPorts(7)
	if err != nil {
		t.Fatal(err)
	}
	defer a.release()
	b, err := claimPorts(7)
	if err != nil {
		t.Fatal(err)
	}
	defer b.release()
	if a.base == b.base {
		t.Fatalf("two claims got the same block %d", a.base)
	}
	if a.base < PortRangeLow || a.base+BlockSize-1 > PortRangeHigh {
		t.Fatalf("block %d outside the range", a.base)
	}
}
