package chaos

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// Port layout. A cluster takes one block of BlockSize loopback ports in
// [PortRangeLow, PortRangeHigh]: below Linux's ephemeral range (32768 and
// up), so outgoing connections never take them, and apart from the system
// tests' range (20000-29999). Within a block starting at B, node I (1-5)
// listens on B+I (gRPC), B+10+I (Raft) and B+20+I (HTTP), and the proxy of
// the directed link i->j listens on B+30+k for k in 0..19.
const (
	PortRangeLow  = 10000
	PortRangeHigh = 19999
	BlockSize     = 50
)

// portBlock is a claimed block of ports. The claim is an exclusive flock on
// a file in the temporary directory, so concurrent runs (even of different
// processes) never share a block, and a crashed run's claim ends with it.
type portBlock struct {
	base int
	lock *os.File
}

// claimPorts finds a block whose ports are all free and claims it. start
// picks the first block tried, so different runs spread over the range.
func claimPorts(start int) (*portBlock, error) {
	dir := filepath.Join(os.TempDir(), "coordchaos-ports")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	blocks := (PortRangeHigh - PortRangeLow + 1) / BlockSize
	for k := range blocks {
		b := (start + k) % blocks
		base := PortRangeLow + b*BlockSize
		f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(base)+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return nil, err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		if blockFree(base) {
			return &portBlock{base: base, lock: f}, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("no free block of %d ports in %d-%d", BlockSize, PortRangeLow, PortRangeHigh)
}

// blockFree reports whether every port of the block can be bound.
func blockFree(base int) bool {
	for p := base; p < base+BlockSize; p++ {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			return false
		}
		ln.Close()
	}
	return true
}

func (b *portBlock) release() {
	if b != nil && b.lock != nil {
		b.lock.Close()
	}
}

func (b *portBlock) grpc(i int) string  { return fmt.Sprintf("127.0.0.1:%d", b.base+i) }
func (b *portBlock) raft(i int) string  { return fmt.Sprintf("127.0.0.1:%d", b.base+10+i) }
func (b *portBlock) http(i int) string  { return fmt.Sprintf("127.0.0.1:%d", b.base+20+i) }
func (b *portBlock) proxy(k int) string { return fmt.Sprintf("127.0.0.1:%d", b.base+30+k) }
