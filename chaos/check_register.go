package chaos

import (
	"fmt"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// never is the return time given to a write whose outcome is unknown but
// which happened: it may take effect at any point after its call.
const never int64 = 1 << 62

// regInput is a register operation: a put of a unique value, or a get.
type regInput struct {
	Put   bool
	Value string
}

// regOutput is what a get returned ("" for an absent key).
type regOutput struct {
	Value string
}

// registerModel is a single register whose values are unique strings ("" is
// absent).
var registerModel = porcupine.Model{
	Init: func() interface{} { return "" },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		in := input.(regInput)
		if in.Put {
			return true, in.Value
		}
		return output.(regOutput).Value == state.(string), state
	},
	DescribeOperation: func(input, output interface{}) string {
		in := input.(regInput)
		if in.Put {
			return fmt.Sprintf("put %q", in.Value)
		}
		out := output.(regOutput).Value
		if out == "" {
			return "get -> absent"
		}
		return fmt.Sprintf("get -> %q", out)
	},
	DescribeState: func(state interface{}) string {
		if state.(string) == "" {
			return "absent"
		}
		return fmt.Sprintf("%q", state.(string))
	},
}

// checkRegisters checks the put and get operations of a workload: one
// register per key, linearizable with porcupine after resolving unknown
// outcomes, plus value-level invariants.
//
// Resolution: a put whose outcome is unknown happened if some read returned
// its (unique) value; it then enters the history with an open return time.
// One never observed is left out: no read depends on it, so leaving it out
// neither hides nor invents a violation. A put reported as not applied must
// never be observed.
func checkRegisters(wl string, ops []*Op, cc checkConfig) workloadResult {
	start := time.Now()
	var res workloadResult
	byKey := map[string][]*Op{}
	written := map[string]*Op{} // value -> put
	observed := map[string]bool{}
	for _, op := range ops {
		if op.Workload != wl || (op.Kind != "put" && op.Kind != "get") {
			continue
		}
		res.Stats.add(op.Status)
		byKey[op.Key] = append(byKey[op.Key], op)
		if op.Kind == "put" {
			written[op.Value] = op
		} else if op.Status == StatusOK && op.Found {
			observed[op.Value] = true
		}
	}
	reported := map[*Op]bool{} // one anomaly per put is enough
	for _, op := range ops {
		if op.Workload != wl || op.Kind != "get" || op.Status != StatusOK || !op.Found {
			continue
		}
		w := written[op.Value]
		if w != nil && reported[w] {
			continue
		}
		switch {
		case w == nil || w.Key != op.Key:
			res.Anomalies = append(res.Anomalies, anomalyf("phantom-read", wl, []int{op.ID}, "get %s returned %q, which no put wrote to that key", op.Key, op.Value))
		case w.Status == StatusFail:
			reported[w] = true
			res.Anomalies = append(res.Anomalies, anomalyf("lost-not-applied", wl, []int{w.ID, op.ID}, "put %s=%q was reported as not applied (%s) but get returned it", w.Key, w.Value, w.Err))
		case w.Status == StatusOK && w.Revision != 0 && op.Revision != 0 && w.Revision != op.Revision:
			reported[w] = true
			res.Anomalies = append(res.Anomalies, anomalyf("revision-mismatch", wl, []int{w.ID, op.ID}, "put %s=%q was acknowledged at revision %d but get saw it at revision %d", w.Key, w.Value, w.Revision, op.Revision))
		}
	}
	for _, op := range ops {
		if op.Workload == wl && op.Kind == "put" && op.Status == StatusOK && !op.OK {
			res.Anomalies = append(res.Anomalies, anomalyf("put-not-succeeded", wl, []int{op.ID}, "unconditional put %s=%q returned succeeded=false", op.Key, op.Value))
		}
	}
	for _, k := range sortedKeys(byKey) {
		res.Anomalies = append(res.Anomalies, staleReads(wl, byKey[k])...)
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	histories := make([][]porcupine.Operation, len(keys))
	for i, k := range keys {
		histories[i] = registerHistory(byKey[k], observed)
	}
	results := checkParallel(registerModel, histories, cc.timeout)
	for i, k := range keys {
		switch results[i] {
		case porcupine.Illegal:
			a := anomalyf("not-linearizable", wl, nil, "the history of register %s is not linearizable (%d operations)", k, len(histories[i]))
			a.File = visualize(registerModel, histories[i], cc, wl+"-"+k, cc.timeout)
			res.Anomalies = append(res.Anomalies, a)
		case porcupine.Unknown:
			res.Inconclusive = append(res.Inconclusive, fmt.Sprintf("%s register %s: porcupine timed out after %v", wl, k, cc.timeout))
		}
	}
	res.CheckTime = time.Since(start)
	return res
}

// registerHistory turns one key's operations into porcupine operations.
func registerHistory(ops []*Op, observed map[string]bool) []porcupine.Operation {
	var out []porcupine.Operation
	for _, op := range ops {
		p := porcupine.Operation{ClientId: op.Client, Call: op.Call, Return: op.Return, Metadata: op.ID}
		switch {
		case op.Kind == "get" && op.Status == StatusOK:
			v := ""
			if op.Found {
				v = op.Value
			}
			p.Input, p.Output = regInput{}, regOutput{Value: v}
		case op.Kind == "put" && op.Status == StatusOK && op.OK:
			p.Input, p.Output = regInput{Put: true, Value: op.Value}, regOutput{}
		case op.Kind == "put" && op.Status == StatusUnknown && observed[op.Value]:
			p.Input, p.Output, p.Return = regInput{Put: true, Value: op.Value}, regOutput{}, never
		default:
			continue
		}
		out = append(out, p)
	}
	return out
}

// checkParallel checks independent histories of one model, at most
// GOMAXPROCS at a time.
func checkParallel(model porcupine.Model, histories [][]porcupine.Operation, timeout time.Duration) []porcupine.CheckResult {
	out := make([]porcupine.CheckResult, len(histories))
	sem := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	var wg sync.WaitGroup
	for i, h := range histories {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i] = porcupine.CheckOperationsTimeout(model, h, timeout)
		}()
	}
	wg.Wait()
	return out
}

// visualize writes porcupine's HTML view of an illegal history and returns
// its path (empty when it could not be written).
func visualize(model porcupine.Model, h []porcupine.Operation, cc checkConfig, name string, timeout time.Duration) string {
	if cc.outDir == "" {
		return ""
	}
	_, info := porcupine.CheckOperationsVerbose(model, h, timeout)
	name = strings.NewReplacer("/", "_", " ", "_").Replace(name)
	path := filepath.Join(cc.outDir, "porcupine-"+name+".html")
	if err := porcupine.VisualizePath(model, info, path); err != nil {
		return ""
	}
	return path
}

// staleReads finds reads that returned a value older than one whose write
// had been acknowledged before the read began. Revisions are log indices,
// so they order the writes of a key; a read that returned the value of
// revision r (or nothing) is stale if a put acknowledged at a revision above
// r returned before the read was called.
func staleReads(wl string, ops []*Op) []Anomaly {
	var puts, gets []*Op
	for _, op := range ops {
		switch {
		case op.Kind == "put" && op.Status == StatusOK && op.OK && op.Revision != 0:
			puts = append(puts, op)
		case op.Kind == "get" && op.Status == StatusOK:
			gets = append(gets, op)
		}
	}
	sort.Slice(puts, func(i, j int) bool { return puts[i].Return < puts[j].Return })
	sort.Slice(gets, func(i, j int) bool { return gets[i].Call < gets[j].Call })
	var out []Anomaly
	var newest *Op
	k := 0
	for _, g := range gets {
		for k < len(puts) && puts[k].Return < g.Call {
			if newest == nil || puts[k].Revision > newest.Revision {
				newest = puts[k]
			}
			k++
		}
		seen := uint64(0)
		if g.Found {
			seen = g.Revision
		}
		if newest != nil && newest.Revision > seen {
			where := ""
			if g.Node != "" {
				where = " from " + g.Node
			}
			out = append(out, anomalyf("stale-read", wl, []int{newest.ID, g.ID},
				"get %s%s returned %s (revision %d), but put %q had been acknowledged at revision %d %v before the get began",
				g.Key, where, describeValue(g), seen, newest.Value, newest.Revision, time.Duration(g.Call-newest.Return)))
		}
	}
	return capAnomalies(out, 10)
}

func describeValue(g *Op) string {
	if !g.Found {
		return "nothing"
	}
	return fmt.Sprintf("%q", g.Value)
}

// capAnomalies keeps the first n anomalies and, when there are more, notes
// how many were left out.
func capAnomalies(as []Anomaly, n int) []Anomaly {
	if len(as) <= n {
		return as
	}
	rest := as[n]
	rest.Detail = fmt.Sprintf("and %d more %s anomalies like these", len(as)-n, rest.Kind)
	rest.Ops = nil
	return append(as[:n:n], rest)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
