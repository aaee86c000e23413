package main

import (
	"io"
	"strings"
	"testing"
)

func TestRaftDialMapFlagAndEnv(t *testing.T) {
	base := []string{"--id", "n1", "--data-dir", t.TempDir(), "--raft-addr", "127.0.0.1:7101"}
	o, err := parseOptions(append(base, "--raft-dial-map", "127.0.0.1:7102=127.0.0.1:9102,127.0.0.1:7103=127.0.0.1:9103"), env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := o.nodeConfig()
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.DialMap) != 2 || cfg.DialMap["127.0.0.1:7103"] != "127.0.0.1:9103" {
		t.Fatalf("DialMap = %v", cfg.DialMap)
	}
	o, err = parseOptions(base, env(map[string]string{"COORD_RAFT_DIAL_MAP": "127.0.0.1:7102=127.0.0.1:9102"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err = o.nodeConfig(); err != nil || cfg.DialMap["127.0.0.1:7102"] != "127.0.0.1:9102" {
		t.Fatalf("from the environment: %v, %v", cfg.DialMap, err)
	}
	o, err = parseOptions(append(base, "--raft-dial-map", "127.0.0.1:7102"), env(nil), io.Discard)
	if err == nil {
		_, err = o.nodeConfig()
	}
	if err == nil || !strings.Contains(err.Error(), "raft-dial-map") {
		t.Fatalf("a malformed map gave %v, want an error naming --raft-dial-map", err)
	}
}
