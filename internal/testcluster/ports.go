package testcluster

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// In-process clusters give their gRPC servers loopback ports in
// [portLow, portHigh]: below Linux's ephemeral range (32768 and up), so an
// outgoing connection cannot take the port of a member that is down for a
// restart, and apart from the ranges of the system tests (20000-29999) and
// the chaos suite (10000-19999).
const (
	portLow  = 30000
	portHigh = 32767
)

// claimPort returns a free loopback address in the test range and holds an
// exclusive claim on it (a flock on a file in the temporary directory) for
// the rest of the test, so concurrent test processes never share a port.
func claimPort(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "coord-testcluster-ports")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	n := portHigh - portLow + 1
	first := rand.IntN(n)
	for k := range n {
		port := portLow + (first+k)%n
		f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			f.Close()
			continue
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if l, err := net.Listen("tcp", addr); err == nil {
			l.Close()
			t.Cleanup(func() { f.Close() })
			return addr
		}
		f.Close()
	}
	t.Fatalf("no free port in %d-%d", portLow, portHigh)
	return ""
}
