package chaos

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// Soak adds up the reports of many runs.
type Soak struct {
	Started         time.Time          `json:"started"`
	ElapsedMs       int64              `json:"elapsed_ms"`
	Runs            []SoakRun          `json:"runs"`
	Passed          int                `json:"passed"`
	Failed          int                `json:"failed"`
	Invalid         int                `json:"invalid"`
	Inconclusive    int                `json:"inconclusive"`
	Ops             map[string]opStats `json:"ops"`
	FaultsInjected  map[FaultKind]int  `json:"faults_injected"`
	FaultsEffective map[FaultKind]int  `json:"faults_effective"`
	LeaderChanges   int                `json:"leader_changes"`
	Anomalies       int                `json:"anomalies"`
	MaxRecoveryMs   int64              `json:"max_recovery_ms"`
	CheckerMs       int64              `json:"checker_ms"`
	Errors          []string           `json:"errors,omitempty"`
}

// SoakRun is one run of a soak.
type SoakRun struct {
	Seed      uint64   `json:"seed"`
	Nodes     int      `json:"nodes"`
	Verdict   string   `json:"verdict"`
	Anomalies []string `json:"anomalies,omitempty"`
	Replay    string   `json:"replay"`
	OutDir    string   `json:"out_dir"`
}

// NewSoak starts a soak.
func NewSoak() *Soak {
	return &Soak{Started: time.Now(), Ops: map[string]opStats{}, FaultsInjected: map[FaultKind]int{}, FaultsEffective: map[FaultKind]int{}}
}

// Add counts a run's report.
func (s *Soak) Add(r *Report) {
	s.ElapsedMs = time.Since(s.Started).Milliseconds()
	run := SoakRun{Seed: r.Seed, Nodes: r.Nodes, Verdict: r.Verdict(), Replay: r.Replay, OutDir: r.OutDir}
	for _, a := range r.Anomalies {
		run.Anomalies = append(run.Anomalies, a.Kind+": "+a.Detail)
	}
	s.Runs = append(s.Runs, run)
	switch run.Verdict {
	case "PASS":
		s.Passed++
	case "FAIL":
		s.Failed++
	case "INVALID":
		s.Invalid++
	default:
		s.Inconclusive++
	}
	for w, st := range r.Ops {
		t := s.Ops[w]
		t.OK, t.Failed, t.Unknown = t.OK+st.OK, t.Failed+st.Failed, t.Unknown+st.Unknown
		s.Ops[w] = t
	}
	for k, n := range r.FaultsInjected {
		s.FaultsInjected[k] += n
	}
	for k, n := range r.FaultsEffective {
		s.FaultsEffective[k] += n
	}
	s.LeaderChanges += r.LeaderChanges
	s.Anomalies += len(r.Anomalies)
	s.MaxRecoveryMs = max(s.MaxRecoveryMs, r.MaxRecoveryMs)
	s.CheckerMs += r.CheckerMs
}

// Write writes soak.json and soak.txt into dir.
func (s *Soak) Write(dir string) error {
	s.ElapsedMs = time.Since(s.Started).Milliseconds()
	if err := writeJSON(filepath.Join(dir, "soak.json"), s); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "soak.txt"), s.Summary())
}

// Summary is a short account of the soak.
func (s *Soak) Summary() string {
	var b strings.Builder
	sizes := map[int]int{}
	for _, r := range s.Runs {
		sizes[r.Nodes]++
	}
	fmt.Fprintf(&b, "soak: %d runs in %v (%d of 3 nodes, %d of 5): %d passed, %d failed, %d invalid, %d inconclusive; %d anomalies\n",
		len(s.Runs), (time.Duration(s.ElapsedMs) * time.Millisecond).Round(time.Second), sizes[3], sizes[5],
		s.Passed, s.Failed, s.Invalid, s.Inconclusive, s.Anomalies)
	for _, w := range []string{"kv", "lock", "log"} {
		if st, ok := s.Ops[w]; ok {
			fmt.Fprintf(&b, "  ops %-4s %d ok, %d failed, %d unknown\n", w, st.OK, st.Failed, st.Unknown)
		}
	}
	var fs []string
	for _, k := range AllFaults {
		if n := s.FaultsInjected[k]; n > 0 {
			fs = append(fs, fmt.Sprintf("%s %d/%d", k, s.FaultsEffective[k], n))
		}
	}
	fmt.Fprintf(&b, "  faults %s (effective/injected); leader changes %d\n", strings.Join(fs, ", "), s.LeaderChanges)
	fmt.Fprintf(&b, "  max recovery %v; checker time %v\n", time.Duration(s.MaxRecoveryMs)*time.Millisecond, time.Duration(s.CheckerMs)*time.Millisecond)
	for _, r := range s.Runs {
		if r.Verdict != "PASS" {
			fmt.Fprintf(&b, "  %s seed %d (%d nodes): %s\n", r.Verdict, r.Seed, r.Nodes, r.Replay)
			for _, a := range r.Anomalies {
				fmt.Fprintf(&b, "      %s\n", a)
			}
		}
	}
	for _, e := range s.Errors {
		fmt.Fprintf(&b, "  error %s\n", e)
	}
	return b.String()
}
