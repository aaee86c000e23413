package chaos

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// Report is the outcome of one run.
type Report struct {
	Seed       uint64      `json:"seed"`
	Nodes      int         `json:"nodes"`
	Duration   string      `json:"duration"`
	ElapsedMs  int64       `json:"elapsed_ms"`
	Faults     []FaultKind `json:"faults"`
	Workloads  []string    `json:"workloads"`
	CoorddTags string      `json:"coordd_tags,omitempty"`
	Started    time.Time   `json:"started"`

	Ops             map[string]opStats  `json:"ops"`
	FaultsInjected  map[FaultKind]int   `json:"faults_injected"`
	FaultsEffective map[FaultKind]int   `json:"faults_effective"`
	FaultLog        []FaultRecord       `json:"fault_log"`
	LeaderChanges   int                 `json:"leader_changes"`
	LeaderTimeline  []LeaderObservation `json:"leader_timeline"`
	StatusSamples   int64               `json:"status_samples"`

	Anomalies      []Anomaly `json:"anomalies"`
	Inconclusive   []string  `json:"inconclusive,omitempty"`
	Notes          []string  `json:"notes,omitempty"`
	Valid          bool      `json:"valid"`
	InvalidReasons []string  `json:"invalid_reasons,omitempty"`

	Converged       bool   `json:"converged"`
	ConvergedIndex  uint64 `json:"converged_index"`
	StateHash       string `json:"state_hash,omitempty"`
	ConvergeMs      int64  `json:"converge_ms"`
	MaxRecoveryMs   int64  `json:"max_recovery_ms"`
	RecoveryBoundMs int64  `json:"recovery_bound_ms"`
	CheckerMs       int64  `json:"checker_ms"`

	Replay string `json:"replay"`
	OutDir string `json:"out_dir"`
	Passed bool   `json:"passed"`
}

// finish derives the verdict fields.
func (r *Report) finish() {
	r.Valid = len(r.InvalidReasons) == 0
	r.Passed = r.Valid && len(r.Anomalies) == 0 && len(r.Inconclusive) == 0 && r.Converged
}

// Verdict is PASS, FAIL (anomalies or no convergence), INVALID (a fault
// did not take effect) or INCONCLUSIVE (the checker timed out).
func (r *Report) Verdict() string {
	switch {
	case len(r.Anomalies) > 0 || !r.Converged:
		return "FAIL"
	case !r.Valid:
		return "INVALID"
	case len(r.Inconclusive) > 0:
		return "INCONCLUSIVE"
	}
	return "PASS"
}

// Summary is a short human-readable account of the run.
func (r *Report) Summary() string {
	var b strings.Builder
	tags := r.CoorddTags
	if tags == "" {
		tags = "-"
	}
	fmt.Fprintf(&b, "coordchaos %s: seed=%d nodes=%d duration=%s (ran %v) coordd-tags=%s\n",
		r.Verdict(), r.Seed, r.Nodes, r.Duration, (time.Duration(r.ElapsedMs) * time.Millisecond).Round(time.Second), tags)
	var ops []string
	for _, w := range r.Workloads {
		s := r.Ops[w]
		ops = append(ops, fmt.Sprintf("%s %d ok/%d failed/%d unknown", w, s.OK, s.Failed, s.Unknown))
	}
	fmt.Fprintf(&b, "  ops       %s\n", strings.Join(ops, "; "))
	var fs []string
	for _, k := range AllFaults {
		if n := r.FaultsInjected[k]; n > 0 {
			fs = append(fs, fmt.Sprintf("%s %d/%d", k, r.FaultsEffective[k], n))
		}
	}
	if len(fs) == 0 {
		fs = append(fs, "none")
	}
	fmt.Fprintf(&b, "  faults    %s (effective/injected); leader changes %d\n", strings.Join(fs, ", "), r.LeaderChanges)
	fmt.Fprintf(&b, "  recovery  max %v (bound %v); converged=%v at index %d in %v\n",
		time.Duration(r.MaxRecoveryMs)*time.Millisecond, time.Duration(r.RecoveryBoundMs)*time.Millisecond,
		r.Converged, r.ConvergedIndex, time.Duration(r.ConvergeMs)*time.Millisecond)
	fmt.Fprintf(&b, "  checker   %v; anomalies %d\n", time.Duration(r.CheckerMs)*time.Millisecond, len(r.Anomalies))
	for i, a := range r.Anomalies {
		if i == 10 {
			fmt.Fprintf(&b, "    ... %d more in report.json\n", len(r.Anomalies)-10)
			break
		}
		fmt.Fprintf(&b, "    [%s] %s", a.Kind, a.Detail)
		if a.File != "" {
			fmt.Fprintf(&b, " (%s)", a.File)
		}
		b.WriteString("\n")
	}
	for _, s := range r.InvalidReasons {
		fmt.Fprintf(&b, "  invalid   %s\n", s)
	}
	for _, s := range r.Inconclusive {
		fmt.Fprintf(&b, "  inconclusive %s\n", s)
	}
	for _, s := range r.Notes {
		fmt.Fprintf(&b, "  note      %s\n", s)
	}
	fmt.Fprintf(&b, "  replay    %s\n", r.Replay)
	if r.OutDir != "" {
		fmt.Fprintf(&b, "  out       %s\n", r.OutDir)
	}
	return b.String()
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// AnomalyKinds lists the distinct anomaly kinds of a report, sorted.
func (r *Report) AnomalyKinds() []string {
	set := map[string]bool{}
	for _, a := range r.Anomalies {
		set[a.Kind] = true
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o644) }
