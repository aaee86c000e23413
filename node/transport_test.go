package node

import (
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

func TestParseDialMap(t *testing.T) {
	m, err := ParseDialMap(" 127.0.0.1:7101=127.0.0.1:9101, 127.0.0.1:7102=127.0.0.1:9102")
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || m["127.0.0.1:7101"] != "127.0.0.1:9101" || m["127.0.0.1:7102"] != "127.0.0.1:9102" {
		t.Fatalf("parsed %v", m)
	}
	if got := FormatDialMap(m); got != "127.0.0.1:7101=127.0.0.1:9101,127.0.0.1:7102=127.0.0.1:9102" {
		t.Fatalf("FormatDialMap = %q", got)
	}
	if m, err := ParseDialMap(""); err != nil || m != nil {
		t.Fatalf("empty: %v, %v", m, err)
	}
	for _, bad := range []string{"127.0.0.1:1", "a=b", "127.0.0.1:1=127.0.0.1:2,127.0.0.1:1=127.0.0.1:3", "127.0.0.1:1=nohost"} {
		if _, err := ParseDialMap(bad); err == nil {
			t.Errorf("ParseDialMap(%q) accepted", bad)
		}
	}
}

// TestDialMapTransportDialsMappedAddress checks that the transport connects
// to the mapped address, not to the peer address Raft names.
func TestDialMapTransportDialsMappedAddress(t *testing.T) {
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		c, err := target.Accept()
		if err == nil {
			accepted <- struct{}{}
			c.Close()
		}
	}()
	adv, _ := net.ResolveTCPAddr("tcp", "127.0.0.1:1")
	peer := "127.0.0.1:2" // nothing listens here
	tr, err := newTCPTransport("127.0.0.1:0", adv, map[string]string{peer: target.Addr().String()}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if tr.LocalAddr() != raft.ServerAddress("127.0.0.1:1") {
		t.Fatalf("LocalAddr = %s, want the advertised address", tr.LocalAddr())
	}
	go func() {
		var resp raft.RequestVoteResponse
		_ = tr.RequestVote("p", raft.ServerAddress(peer), &raft.RequestVoteRequest{}, &resp)
	}()
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("the transport did not dial the mapped address")
	}
}
