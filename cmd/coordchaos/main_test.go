package main

import (
	"io"
	"testing"
	"time"

	"coord/chaos"
)

func TestParseFlags(t *testing.T) {
	f, err := parseFlags([]string{"--seed", "9", "--nodes", "3,5", "--duration", "90s", "--faults", "kill-leader,partition", "--workloads", "kv,lock"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if f.seed != 9 || len(f.nodes) != 2 || f.nodes[1] != 5 || f.duration != 90*time.Second ||
		len(f.faults) != 2 || f.faults[1] != chaos.Partition || len(f.workloads) != 2 {
		t.Fatalf("parsed %+v", f)
	}
	if f, err := parseFlags(nil, io.Discard); err != nil || f.seed == 0 || len(f.faults) != len(chaos.AllFaults) {
		t.Fatalf("defaults: %+v, %v", f, err)
	}
	for _, bad := range [][]string{{"--nodes", "4"}, {"--faults", "meteor"}, {"--duration", "0s"}, {"extra"}} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
