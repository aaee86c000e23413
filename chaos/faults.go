package chaos

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// FaultKind names a fault the nemesis can inject.
type FaultKind string

// Fault kinds.
const (
	// KillLeader: SIGKILL the leader, restart it after a hold.
	KillLeader FaultKind = "kill-leader"
	// KillNode: SIGKILL a random node, restart it after a hold.
	KillNode FaultKind = "kill-node"
	// KillAll: SIGKILL every node, restart them all after a hold.
	KillAll FaultKind = "kill-all"
	// PauseLeader: SIGSTOP the leader until another node has been elected
	// (longer than the election timeout), then a little longer, then SIGCONT.
	PauseLeader FaultKind = "pause-leader"
	// IsolateLeader: cut every Raft link to and from the leader until
	// another node has been elected, then a little longer.
	IsolateLeader FaultKind = "isolate-leader"
	// Partition: split the nodes into a minority and a majority, the
	// leader on either side.
	Partition FaultKind = "partition"
	// Latency: delay every Raft link.
	Latency FaultKind = "latency"
	// SnapshotInstall: cut a follower off until the leader has compacted
	// its log past the follower's last entry, so that healing makes the
	// leader send it a snapshot.
	SnapshotInstall FaultKind = "snapshot-install"
	// DeposedLeader: hand leadership to a follower while the leader hears
	// nothing back from its peers (their requests to it cut, their replies
	// to it delayed), so that the old leader goes on believing it leads,
	// until its lease runs out, after the new leader has been elected: the
	// window in which an old leader that does not confirm its leadership
	// before a read serves stale data. (A pause makes the same window, but
	// the old leader's lease check wins the race on resume.)
	DeposedLeader FaultKind = "deposed-leader"
)

// AllFaults lists every fault kind.
var AllFaults = []FaultKind{KillLeader, KillNode, KillAll, PauseLeader, IsolateLeader, DeposedLeader, Partition, Latency, SnapshotInstall}

// ParseFaults parses a comma-separated list of fault kinds ("all" for
// every kind, "none" for no fault).
func ParseFaults(s string) ([]FaultKind, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "", "all":
		return append([]FaultKind(nil), AllFaults...), nil
	case "none":
		return nil, nil
	}
	var out []FaultKind
	for _, part := range strings.Split(s, ",") {
		k := FaultKind(strings.TrimSpace(part))
		known := false
		for _, a := range AllFaults {
			known = known || a == k
		}
		if !known {
			return nil, fmt.Errorf("unknown fault %q (want %s, all or none)", k, joinFaults(AllFaults))
		}
		out = append(out, k)
	}
	return out, nil
}

func joinFaults(ks []FaultKind) string {
	parts := make([]string, len(ks))
	for i, k := range ks {
		parts[i] = string(k)
	}
	return strings.Join(parts, ",")
}

// faultPlan is one episode of the schedule. Everything in it is drawn from
// the run's seed before the episode starts, so the same seed gives the
// same sequence of faults, targets (as choices among the nodes in the role
// the fault names) and durations.
type faultPlan struct {
	Kind     FaultKind
	Gap      time.Duration // quiet time before the fault
	Hold     time.Duration // how long the fault lasts (after its effect is seen, where it waits for one)
	Pick     uint64        // chooses the target among the candidates
	Delay    time.Duration // Latency
	Minority bool          // Partition: the leader is on the minority side
}

// scheduler draws the episodes: it walks a seeded shuffle of the kinds,
// reshuffling after each pass, so that every kind comes once per pass.
type scheduler struct {
	rng   *rand.Rand
	kinds []FaultKind
	order []FaultKind
}

func newScheduler(seed uint64, kinds []FaultKind) *scheduler {
	return &scheduler{rng: rand.New(rand.NewPCG(seed, 0xfa17)), kinds: kinds}
}

func (s *scheduler) next() (faultPlan, bool) {
	if len(s.kinds) == 0 {
		return faultPlan{}, false
	}
	if len(s.order) == 0 {
		s.order = append([]FaultKind(nil), s.kinds...)
		s.rng.Shuffle(len(s.order), func(i, j int) { s.order[i], s.order[j] = s.order[j], s.order[i] })
	}
	p := faultPlan{Kind: s.order[0]}
	s.order = s.order[1:]
	p.Gap = time.Duration(1000+s.rng.IntN(2000)) * time.Millisecond
	p.Pick = s.rng.Uint64()
	p.Minority = s.rng.IntN(2) == 0
	p.Delay = time.Duration(20+s.rng.IntN(130)) * time.Millisecond
	switch p.Kind {
	case KillLeader, KillNode, KillAll:
		p.Hold = time.Duration(500+s.rng.IntN(2500)) * time.Millisecond
	case PauseLeader, IsolateLeader:
		p.Hold = time.Duration(300+s.rng.IntN(1700)) * time.Millisecond
	case Partition, Latency:
		p.Hold = time.Duration(2000+s.rng.IntN(3000)) * time.Millisecond
	case SnapshotInstall, DeposedLeader:
		p.Hold = 0
	}
	return p, true
}

// FaultRecord is one injected fault as it happened.
type FaultRecord struct {
	Kind       FaultKind `json:"kind"`
	Target     string    `json:"target,omitempty"`
	StartMs    int64     `json:"start_ms"`
	HealMs     int64     `json:"heal_ms"`
	Effective  bool      `json:"effective"`
	Proof      string    `json:"proof,omitempty"`
	Invalid    string    `json:"invalid,omitempty"`
	RecoveryMs int64     `json:"recovery_ms"`
}
