package fsm_test

import (
	"bytes"
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"coord/internal/cmdpb"
)

// TestBatchedSessionsMatchPerEntry checks that the sessions written once per
// batch leave the same state as entries applied one at a time, also when
// ticks in the middle of a batch expire sessions the batch has touched.
func TestBatchedSessionsMatchPerEntry(t *testing.T) {
	for seed := int64(1); seed <= 4; seed++ {
		rng := rand.New(rand.NewSource(seed))
		now := int64(1_700_000_000_000_000_000)
		var logs []*raft.Log
		seqs := map[uint64]uint64{}
		for i := 1; i <= 800; i++ {
			if rng.Intn(40) == 0 {
				now += int64(7 * time.Hour) // long enough for idle sessions to expire
			}
			now += int64(rng.Intn(int(time.Second)))
			var cmd *cmdpb.Command
			if rng.Intn(8) == 0 {
				cmd = tickCmd(now)
			} else {
				cmd = putCmd(t, fmt.Sprintf("k%d", rng.Intn(10)), fmt.Sprint(i), 0, now)
				client := uint64(1 + rng.Intn(4))
				seqs[client]++
				cmd.ClientId, cmd.Seq = client, seqs[client]
				cmd.AckedBelow = seqs[client] - uint64(rng.Intn(int(min(seqs[client], 4))))
			}
			logs = append(logs, entry(t, uint64(i), cmd))
		}
		one, batched := open(t), open(t)
		for _, l := range logs {
			one.ApplyBatch([]*raft.Log{l})
		}
		applyInBatches(batched, logs, rng)
		if !bytes.Equal(dump(t, one), dump(t, batched)) {
			t.Fatalf("seed %d: batched application left a different state than one entry at a time", seed)
		}
	}
}
