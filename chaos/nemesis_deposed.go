package chaos

import (
	"context"
	"fmt"
	"strings"
	"time"

	coordv1 "coord/api/coord/v1"
)

// The old leader's replies from its peers are delayed by deposeLag while
// leadership is handed over (short enough for its lease to hold). In the
// "hold" variant they are then delayed by deposeReplyDelay (longer than its
// lease) once the new leader is elected, so the replies that carry the new
// term, still queued, reach it only after it has stepped down on its own.
// In the "lag" variant they keep arriving deposeLagLong late, so for that
// long the old leader still receives replies its peers sent before they
// followed the new leader.
const (
	deposeAttempts   = 3
	deposeLag        = 60 * time.Millisecond
	deposeLagLong    = 150 * time.Millisecond
	deposeReplyDelay = 5 * time.Second
)

// deposedLeader transfers leadership from the leader L to a follower A
// while L is deaf to its peers:
//  1. the peers' own connections to L are cut, so the new leader's
//     requests (votes, appends, heartbeats) never reach L, and the replies
//     on L's connections to its peers are delayed by deposeLag;
//  2. L is asked to transfer leadership to A; L brings A up to date and
//     sends it TimeoutNow, and A is elected at once;
//  3. as soon as A is seen leading (well within deposeLag), the replies
//     still queued for L, which carry the new term, are held back beyond
//     L's lease.
//
// L then believes it leads until its lease check fails, while A leads and
// commits. The proof is that overlap, seen in the node status of both.
//
// The "lag" variant (chosen by the plan) skips step 3 and delays L's
// replies by deposeLagLong throughout: L then keeps receiving, for that
// long after A's election, successful replies its peers sent before they
// followed A, and learns of the new term only when the first newer reply
// arrives. A leader that counts such replies as a confirmation of its
// leadership serves stale reads in that window.
//
// The handover fails now and then for reasons that are not the fault's
// point (the target's first vote request goes out on a pooled connection
// that an earlier cut closed, and it loses the election); the episode then
// heals and tries again, up to deposeAttempts times.
func (n *nemesis) deposedLeader(ctx context.Context, p faultPlan) (string, string, string) {
	var target, proof, invalid string
	var failures []string
	for attempt := 1; attempt <= deposeAttempts; attempt++ {
		target, proof, invalid = n.deposeOnce(ctx, p)
		if invalid == "" {
			if len(failures) > 0 {
				proof += fmt.Sprintf(" (attempt %d; before: %s)", attempt, strings.Join(failures, "; "))
			}
			return target, proof, ""
		}
		failures = append(failures, invalid)
		n.cl.healNetwork()
		if err := n.waitReady(ctx); err != nil || !sleepCtx(ctx, time.Second) {
			break
		}
	}
	return target, "", strings.Join(failures, "; ")
}

func (n *nemesis) deposeOnce(ctx context.Context, p faultPlan) (string, string, string) {
	lag := p.Pick>>63 == 1
	l, term, err := n.leader(ctx)
	if err != nil {
		return "", "", "no leader before the fault: " + err.Error()
	}
	var others []int
	for i := 1; i <= n.cl.Size(); i++ {
		if i != l {
			others = append(others, i)
		}
	}
	a := others[p.Pick%uint64(len(others))]
	target := fmt.Sprintf("%s->%s", nodeName(l), nodeName(a))
	defer n.cl.healNetwork()
	n.cl.cut(func(from, to int) bool { return to == l })
	replyLag := deposeLag
	if lag {
		replyLag = deposeLagLong
	}
	for _, x := range others {
		n.cl.proxies[[2]int{l, x}].SetDelays(0, replyLag)
	}

	tctx, cancel := context.WithTimeout(ctx, 2500*time.Millisecond)
	defer cancel()
	transferErr := make(chan error, 1)
	go func() {
		_, err := coordv1.NewClusterServiceClient(n.mon.conns[l-1]).TransferLeadership(tctx, &coordv1.TransferLeadershipRequest{Id: nodeName(a)})
		transferErr <- err
	}()
	newTerm, err := n.pollStatus(tctx, a, func(st *coordv1.NodeStatus) bool {
		return st.GetRole() == coordv1.Role_ROLE_LEADER && st.GetTerm() > term
	})
	if err != nil {
		cancel()
		return target, "", fmt.Sprintf("%s was not elected: %v (transfer: %v)", nodeName(a), err, <-transferErr)
	}
	if !lag {
		for _, x := range others {
			n.cl.proxies[[2]int{l, x}].SetDelays(0, deposeReplyDelay)
		}
	}
	elected := time.Now()
	st, err := n.status(ctx, l)
	if err != nil || st.GetRole() != coordv1.Role_ROLE_LEADER || st.GetTerm() != term {
		return target, "", fmt.Sprintf("%s learnt of term %d at once (role %v, term %d)", nodeName(l), newTerm, st.GetRole(), st.GetTerm())
	}
	wctx, wcancel := context.WithTimeout(ctx, deposeReplyDelay)
	defer wcancel()
	_, err = n.pollStatus(wctx, l, func(st *coordv1.NodeStatus) bool { return st.GetRole() != coordv1.Role_ROLE_LEADER })
	overlap := time.Since(elected)
	if err != nil {
		return target, "", fmt.Sprintf("%s did not step down within %v", nodeName(l), deposeReplyDelay)
	}
	how := "its replies held"
	if lag {
		how = fmt.Sprintf("its replies %v late", replyLag)
	}
	return target, fmt.Sprintf("%s led term %d while %s (%s) still claimed term %d for %v", nodeName(a), newTerm, nodeName(l), how, term, overlap.Round(time.Millisecond)), ""
}

// status asks node i for its status.
func (n *nemesis) status(ctx context.Context, i int) (*coordv1.NodeStatus, error) {
	sctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	resp, err := coordv1.NewClusterServiceClient(n.mon.conns[i-1]).GetNodeStatus(sctx, &coordv1.GetNodeStatusRequest{})
	return resp.GetStatus(), err
}

// pollStatus asks node i for its status every millisecond or so until ok
// holds, and returns the term of the status that satisfied it.
func (n *nemesis) pollStatus(ctx context.Context, i int, ok func(*coordv1.NodeStatus) bool) (uint64, error) {
	for {
		st, err := n.status(ctx, i)
		if err == nil && ok(st) {
			return st.GetTerm(), nil
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		time.Sleep(time.Millisecond)
	}
}
