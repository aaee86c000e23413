package chaos

import (
	"fmt"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// lockInput is one lock operation as the model sees it.
type lockInput struct {
	Kind  string // grant, release, fput (accepted), fenced (fput refused)
	Token uint64
	OK    bool // release: released
}

// lockState is the model's state: the current holder's token (0: none)
// and the last token granted.
type lockState struct {
	Holder, Last uint64
}

// lockModel is a lock with leases and fencing tokens, limit 1. A lease may
// expire at any moment without an operation, so the model lets the holder
// vanish whenever an operation shows it has (a release that finds nothing,
// a fenced write refused); what it forbids is what no expiry can explain:
//   - a grant whose token is not above every token granted before it;
//   - a release that succeeds, or a fenced write that is accepted, for a
//     token that is not the current holder's (a newer grant superseded it).
var lockModel = porcupine.Model{
	Init: func() interface{} { return lockState{} },
	Step: func(state, input, _ interface{}) (bool, interface{}) {
		s, in := state.(lockState), input.(lockInput)
		switch in.Kind {
		case "grant":
			return in.Token > s.Last, lockState{Holder: in.Token, Last: in.Token}
		case "release":
			if in.OK {
				return s.Holder == in.Token, lockState{Last: s.Last}
			}
			if s.Holder == in.Token {
				s.Holder = 0
			}
			return true, s
		case "fput":
			return s.Holder == in.Token, s
		case "fenced":
			if s.Holder == in.Token {
				s.Holder = 0
			}
			return true, s
		}
		return false, s
	},
	DescribeOperation: func(input, _ interface{}) string {
		in := input.(lockInput)
		switch in.Kind {
		case "release":
			return fmt.Sprintf("release %d -> %v", in.Token, in.OK)
		case "fput":
			return fmt.Sprintf("fenced put with %d accepted", in.Token)
		case "fenced":
			return fmt.Sprintf("fenced put with %d refused", in.Token)
		}
		return fmt.Sprintf("%s %d", in.Kind, in.Token)
	},
	DescribeState: func(state interface{}) string {
		s := state.(lockState)
		return fmt.Sprintf("holder %d, last %d", s.Holder, s.Last)
	},
}

// checkLocks checks the lock workload's operations.
func checkLocks(ops []*Op, cc checkConfig) workloadResult {
	start := time.Now()
	var res workloadResult
	var grants []*Op
	perLock := map[string][]porcupine.Operation{}
	var regOps []*Op
	for _, op := range ops {
		if op.Workload != "lock" {
			continue
		}
		res.Stats.add(op.Status)
		if p, ok := lockOperation(op); ok {
			perLock[op.Key] = append(perLock[op.Key], p)
		}
		if op.Kind == "acquire" && op.Status == StatusOK && op.OK {
			grants = append(grants, op)
		}
		if r := fencedRegisterOp(op); r != nil {
			regOps = append(regOps, r)
		}
		if op.Kind == "fput" && op.Status == StatusOK && !op.Fenced && !op.OK {
			res.Anomalies = append(res.Anomalies, anomalyf("put-not-succeeded", "lock", []int{op.ID}, "fenced put with token %d returned succeeded=false", op.Token))
		}
	}
	res.Anomalies = append(res.Anomalies, checkTokens(grants)...)
	res.Anomalies = append(res.Anomalies, checkStaleFences(ops, grants)...)

	names := make([]string, 0, len(perLock))
	for n := range perLock {
		names = append(names, n)
	}
	sort.Strings(names)
	histories := make([][]porcupine.Operation, len(names))
	for i, n := range names {
		histories[i] = perLock[n]
	}
	for i, r := range checkParallel(lockModel, histories, cc.timeout) {
		switch r {
		case porcupine.Illegal:
			a := anomalyf("lock-not-linearizable", "lock", nil, "the history of lock %s (grants, releases, fenced writes) is not linearizable: two holders, or tokens out of order", names[i])
			a.File = visualize(lockModel, histories[i], cc, "lock-"+names[i], cc.timeout)
			res.Anomalies = append(res.Anomalies, a)
		case porcupine.Unknown:
			res.Inconclusive = append(res.Inconclusive, fmt.Sprintf("lock %s: porcupine timed out after %v", names[i], cc.timeout))
		}
	}
	reg := checkRegisters("fenced", regOps, cc)
	res.Anomalies = append(res.Anomalies, reg.Anomalies...)
	res.Inconclusive = append(res.Inconclusive, reg.Inconclusive...)
	res.CheckTime = time.Since(start)
	return res
}

// lockOperation converts an operation for the lock model. Operations whose
// outcome is unknown, and acquires that were not granted, are left out: the
// model lets any holder vanish, so a grant or release that may have
// happened unseen cannot make a valid history look invalid when omitted.
func lockOperation(op *Op) (porcupine.Operation, bool) {
	p := porcupine.Operation{ClientId: op.Client, Call: op.Call, Return: op.Return, Metadata: op.ID, Output: nil}
	if op.Status != StatusOK {
		return p, false
	}
	switch {
	case op.Kind == "acquire" && op.OK:
		p.Input = lockInput{Kind: "grant", Token: op.Token}
	case op.Kind == "release":
		p.Input = lockInput{Kind: "release", Token: op.Token, OK: op.OK}
	case op.Kind == "fput" && op.Fenced:
		p.Input = lockInput{Kind: "fenced", Token: op.Token}
	case op.Kind == "fput" && op.OK:
		p.Input = lockInput{Kind: "fput", Token: op.Token}
	default:
		return p, false
	}
	return p, true
}

// fencedRegisterOp maps fenced puts and the final reads of the fenced keys
// onto register operations, so that the fenced keys are checked like any
// register (no acknowledged fenced write lost, none refused yet applied).
func fencedRegisterOp(op *Op) *Op {
	r := *op
	r.Workload = "fenced"
	switch op.Kind {
	case "fput":
		r.Kind = "put"
		if op.Fenced {
			r.Status = StatusFail
		}
	case "fget":
		r.Kind = "get"
	default:
		return nil
	}
	return &r
}

// checkTokens checks that every grant has its own token and that tokens
// strictly increase in real time across all locks: a grant that returned
// before another was requested has the smaller token.
func checkTokens(grants []*Op) []Anomaly {
	var out []Anomaly
	seen := map[uint64]*Op{}
	for _, g := range grants {
		if o := seen[g.Token]; o != nil {
			out = append(out, anomalyf("duplicate-token", "lock", []int{o.ID, g.ID}, "token %d was granted twice (%s, then %s)", g.Token, o.Key, g.Key))
		}
		seen[g.Token] = g
	}
	byReturn := append([]*Op(nil), grants...)
	sort.Slice(byReturn, func(i, j int) bool { return byReturn[i].Return < byReturn[j].Return })
	byCall := append([]*Op(nil), grants...)
	sort.Slice(byCall, func(i, j int) bool { return byCall[i].Call < byCall[j].Call })
	var maxTok *Op
	k := 0
	for _, g := range byCall {
		for k < len(byReturn) && byReturn[k].Return < g.Call {
			if maxTok == nil || byReturn[k].Token > maxTok.Token {
				maxTok = byReturn[k]
			}
			k++
		}
		if maxTok != nil && g.Token <= maxTok.Token {
			out = append(out, anomalyf("token-order", "lock", []int{maxTok.ID, g.ID},
				"token %d (%s) was granted after token %d (%s) had been returned: fencing tokens must strictly increase", g.Token, g.Key, maxTok.Token, maxTok.Key))
		}
	}
	return out
}

// checkStaleFences finds fenced puts that coord accepted although the
// token had been superseded: a grant of the same lock with a larger token
// entered the log before the put did (tokens and revisions are log
// indices).
func checkStaleFences(ops []*Op, grants []*Op) []Anomaly {
	tokens := map[string][]*Op{}
	for _, g := range grants {
		tokens[g.Key] = append(tokens[g.Key], g)
	}
	for _, ts := range tokens {
		sort.Slice(ts, func(i, j int) bool { return ts[i].Token < ts[j].Token })
	}
	var out []Anomaly
	for _, op := range ops {
		if op.Workload != "lock" || op.Kind != "fput" || op.Status != StatusOK || op.Fenced || !op.OK {
			continue
		}
		ts := tokens[op.Key]
		i := sort.Search(len(ts), func(i int) bool { return ts[i].Token > op.Token })
		if i < len(ts) && ts[i].Token < op.Revision {
			out = append(out, anomalyf("stale-fence-accepted", "lock", []int{ts[i].ID, op.ID},
				"put fenced by %s token %d was accepted at index %d, after token %d was granted at index %d", op.Key, op.Token, op.Revision, ts[i].Token, ts[i].Token))
		}
	}
	return out
}
