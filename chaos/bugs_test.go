package chaos

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// SeededBug is a deliberate bug compiled into coordd with a build tag, and
// the run that must catch it. Each tag selects the bug variant of one small
// function (a *_chaosbug.go file); the default build has the correct one.
type SeededBug struct {
	Tag       string
	What      string
	Faults    []FaultKind
	Workloads []string
	Duration  time.Duration
}

// SeededBugs are the suite's negative controls.
var SeededBugs = []SeededBug{
	{"chaosbug_staleread", "linearizable reads trust the node's own view of its leadership (node.ReadBarrier skips the quorum confirmation)",
		[]FaultKind{DeposedLeader}, []string{"kv"}, 40 * time.Second},
	{"chaosbug_verifyleader", "leadership is confirmed with raft.VerifyLeader, which also counts replies to heartbeats sent before the read arrived",
		[]FaultKind{DeposedLeader, PauseLeader}, []string{"kv"}, 60 * time.Second},
	{"chaosbug_earlyack", "a write whose commit is unknown (leadership lost after it entered the log) is acknowledged as applied",
		[]FaultKind{IsolateLeader, Partition}, []string{"kv", "lock", "log"}, 40 * time.Second},
	{"chaosbug_nofence", "fences are not checked: a holder whose lease expired still writes",
		[]FaultKind{KillLeader, Latency}, []string{"lock"}, 40 * time.Second},
	{"chaosbug_memfence", "the fencing-token counter lives in process memory, not in the replicated state",
		[]FaultKind{KillLeader, KillNode, KillAll}, []string{"kv", "lock"}, 40 * time.Second},
	{"chaosbug_nodedup", "the state machine forgets request ids: a retried write is applied again",
		[]FaultKind{KillLeader, PauseLeader, IsolateLeader}, []string{"kv", "lock", "log"}, 45 * time.Second},
}

// detectionAttempts bounds the runs spent trying to catch one bug.
const detectionAttempts = 3

// TestSeededBugsAreCaught builds coordd once per seeded bug and runs the
// suite against it; every bug must be caught (a run must report an
// anomaly) within detectionAttempts runs. A control row runs the correct
// build with every fault the bug rows use and must find nothing. It writes
// the detection matrix to matrix.md and matrix.json in COORD_CHAOS_OUT (or a
// temporary directory). It runs only with COORD_CHAOS_BUGS=1 (make
// chaos-bugs): about 5 minutes per bug on 2 cores at worst.
func TestSeededBugsAreCaught(t *testing.T) {
	if testing.Short() || os.Getenv("COORD_CHAOS_BUGS") != "1" {
		t.Skip("set COORD_CHAOS_BUGS=1 to run the negative controls (make chaos-bugs)")
	}
	out := outDir(t, "bugs")
	seed := envSeed(t)
	var rows []MatrixRow
	control := SeededBug{Tag: "", What: "control: the correct build", Workloads: []string{"kv", "lock", "log"}, Duration: 60 * time.Second}
	seen := map[FaultKind]bool{}
	for _, b := range SeededBugs {
		for _, f := range b.Faults {
			if !seen[f] {
				seen[f] = true
				control.Faults = append(control.Faults, f)
			}
		}
	}
	for _, b := range append(append([]SeededBug(nil), SeededBugs...), control) {
		name := b.Tag
		if name == "" {
			name = "control"
		}
		t.Run(name, func(t *testing.T) {
			bin, err := buildTagged(t.Context(), b.Tag)
			if err != nil {
				t.Fatal(err)
			}
			row := MatrixRow{Tag: name, What: b.What}
			attempts := detectionAttempts
			if b.Tag == "" {
				attempts = 1
			}
			for i := range attempts {
				o := Options{Seed: seed + uint64(i), Nodes: 3, Duration: b.Duration, Faults: b.Faults, Workloads: b.Workloads,
					OutDir: filepath.Join(out, fmt.Sprintf("%s-%d", name, i)), Coordd: bin, CoorddTags: b.Tag, Logf: t.Logf}
				rep, err := Run(t.Context(), o)
				if err != nil {
					t.Fatal(err)
				}
				row.Runs++
				row.Replay = rep.Replay
				row.Ops = rep.Ops
				if len(rep.Anomalies) > 0 {
					row.Caught, row.Kinds, row.Anomalies = true, rep.AnomalyKinds(), len(rep.Anomalies)
					row.FirstAnomaly = rep.Anomalies[0].Kind + ": " + rep.Anomalies[0].Detail
					break
				}
			}
			rows = append(rows, row)
			switch {
			case b.Tag != "" && !row.Caught:
				t.Errorf("%s was not caught in %d runs (replay: %s)", b.Tag, row.Runs, row.Replay)
			case b.Tag == "" && row.Caught:
				t.Errorf("the correct build reported anomalies: %s (replay: %s)", row.FirstAnomaly, row.Replay)
			}
		})
	}
	if err := WriteMatrix(out, rows); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(out, "matrix.md"))
	t.Logf("detection matrix (%s):\n%s", out, strings.TrimSpace(string(md)))
}
