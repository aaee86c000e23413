package chaos

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	coordv1 "coord/api/coord/v1"
)

// sampleInterval is how often the monitor asks every node for its status.
const sampleInterval = 50 * time.Millisecond

// nodeSample is one node's answer to GetNodeStatus.
type nodeSample struct {
	At                time.Time
	Role              coordv1.Role
	Term              uint64
	LeaderID          string
	Applied, LastLog  uint64
	LastSnapshotIndex uint64
}

// LeaderObservation is a node seen as leader in a term, the first time.
type LeaderObservation struct {
	AtMs int64  `json:"at_ms"`
	Node string `json:"node"`
	Term uint64 `json:"term"`
}

// monitor samples GetNodeStatus on every node and records who claimed
// leadership in which term.
type monitor struct {
	cl    *Cluster
	start time.Time
	conns []*grpc.ClientConn

	mu       sync.Mutex
	latest   []nodeSample               // per node (0-based)
	byTerm   map[uint64]map[string]bool // term -> nodes that said they lead it
	timeline []LeaderObservation        // first sighting of each (term, leader)
	seen     map[uint64]map[string]bool // (term, node) already in the timeline
	samples  int64
}

func newMonitor(cl *Cluster, start time.Time) (*monitor, error) {
	m := &monitor{cl: cl, start: start, latest: make([]nodeSample, cl.Size()),
		byTerm: map[uint64]map[string]bool{}, seen: map[uint64]map[string]bool{}}
	for _, ep := range cl.Endpoints() {
		cc, err := grpc.NewClient(ep, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			m.close()
			return nil, err
		}
		m.conns = append(m.conns, cc)
	}
	return m, nil
}

func (m *monitor) close() {
	for _, cc := range m.conns {
		cc.Close()
	}
}

// run samples every node until ctx ends.
func (m *monitor) run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range m.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(sampleInterval)
			defer t.Stop()
			for {
				m.sample(ctx, i)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	wg.Wait()
}

func (m *monitor) sample(ctx context.Context, i int) {
	sctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
	defer cancel()
	resp, err := coordv1.NewClusterServiceClient(m.conns[i]).GetNodeStatus(sctx, &coordv1.GetNodeStatusRequest{})
	if err != nil {
		return
	}
	st := resp.GetStatus()
	s := nodeSample{At: time.Now(), Role: st.GetRole(), Term: st.GetTerm(), LeaderID: st.GetLeaderId(),
		Applied: st.GetAppliedIndex(), LastLog: st.GetLastLogIndex(), LastSnapshotIndex: st.GetLastSnapshotIndex()}
	id := fmt.Sprintf("n%d", i+1)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.samples++
	m.latest[i] = s
	if s.Role != coordv1.Role_ROLE_LEADER {
		return
	}
	if m.byTerm[s.Term] == nil {
		m.byTerm[s.Term] = map[string]bool{}
		m.seen[s.Term] = map[string]bool{}
	}
	m.byTerm[s.Term][id] = true
	if !m.seen[s.Term][id] {
		m.seen[s.Term][id] = true
		m.timeline = append(m.timeline, LeaderObservation{AtMs: s.At.Sub(m.start).Milliseconds(), Node: id, Term: s.Term})
	}
}

// leader returns the node (1-based) that most recently claimed leadership
// in the highest term among fresh samples, or 0.
func (m *monitor) leader() (node int, term uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, s := range m.latest {
		if s.Role == coordv1.Role_ROLE_LEADER && time.Since(s.At) < 500*time.Millisecond && s.Term >= term {
			node, term = i+1, s.Term
		}
	}
	return node, term
}

// waitLeader polls until a fresh leader is known.
func (m *monitor) waitLeader(ctx context.Context) (int, uint64, error) {
	for {
		if n, t := m.leader(); n != 0 {
			return n, t, nil
		}
		select {
		case <-ctx.Done():
			return 0, 0, fmt.Errorf("no leader: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// newLeaderSince reports a leader observed in a term above term, other
// than exclude (0: any node).
func (m *monitor) newLeaderSince(term uint64, exclude int) (LeaderObservation, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ex := fmt.Sprintf("n%d", exclude)
	for _, o := range m.timeline {
		if o.Term > term && o.Node != ex {
			return o, true
		}
	}
	return LeaderObservation{}, false
}

// waitNewLeader polls until newLeaderSince succeeds.
func (m *monitor) waitNewLeader(ctx context.Context, term uint64, exclude int) (LeaderObservation, error) {
	for {
		if o, ok := m.newLeaderSince(term, exclude); ok {
			return o, nil
		}
		select {
		case <-ctx.Done():
			return LeaderObservation{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// latestSample returns node i's (1-based) latest sample.
func (m *monitor) latestSample(i int) nodeSample {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.latest[i-1]
}

// waitSample polls until node i's sample satisfies ok.
func (m *monitor) waitSample(ctx context.Context, i int, ok func(nodeSample) bool) (nodeSample, error) {
	for {
		s := m.latestSample(i)
		if time.Since(s.At) < 500*time.Millisecond && ok(s) {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// monitorResult is what the monitor found over a run.
type monitorResult struct {
	Samples       int64
	Timeline      []LeaderObservation
	SplitTerms    map[uint64][]string // terms with more than one leader
	LeaderChanges int
}

func (m *monitor) result() monitorResult {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := monitorResult{Samples: m.samples, Timeline: append([]LeaderObservation(nil), m.timeline...), SplitTerms: map[uint64][]string{}}
	for term, nodes := range m.byTerm {
		if len(nodes) > 1 {
			var ids []string
			for id := range nodes {
				ids = append(ids, id)
			}
			sort.Strings(ids)
			r.SplitTerms[term] = ids
		}
	}
	if len(r.Timeline) > 0 {
		r.LeaderChanges = len(r.Timeline) - 1
	}
	return r
}
