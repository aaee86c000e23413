package chaos

import (
	"fmt"
	"time"

	"github.com/anishathalye/porcupine"
)

// streamInput is a stream operation for the model: an append of Count
// events that were given versions from First, or a read that saw the
// stream's next version First.
type streamInput struct {
	Append bool
	First  uint64
	Count  uint64
}

// streamModel is an append-only sequence reduced to its length: the
// contents are checked against the final log separately (every event at
// the version its append was told, every read matching the log), so what
// is left to check is that appends and reads agree with one order.
var streamModel = porcupine.Model{
	Init: func() interface{} { return uint64(0) },
	Step: func(state, input, _ interface{}) (bool, interface{}) {
		n, in := state.(uint64), input.(streamInput)
		if in.Append {
			return in.First == n, n + in.Count
		}
		return in.First == n, n
	},
	DescribeOperation: func(input, _ interface{}) string {
		in := input.(streamInput)
		if in.Append {
			return fmt.Sprintf("append %d at %d", in.Count, in.First)
		}
		return fmt.Sprintf("read: next version %d", in.First)
	},
	DescribeState: func(state interface{}) string { return fmt.Sprintf("length %d", state.(uint64)) },
}

// finalLog is the log as read once traffic stopped: the truth against which
// every operation is resolved.
type finalLog struct {
	streams map[string][]EventRef     // stream -> events by version
	byID    map[string]map[string]int // stream -> id -> index in streams[stream]
	all     []EventRef
	ok      bool
}

func buildFinalLog(ops []*Op) finalLog {
	f := finalLog{streams: map[string][]EventRef{}, byID: map[string]map[string]int{}, ok: true}
	for _, op := range ops {
		if op.Workload != "log" {
			continue
		}
		switch {
		case op.Kind == "final-stream" && op.Status == StatusOK:
			f.streams[op.Key] = op.Events
			f.byID[op.Key] = map[string]int{}
			for i, e := range op.Events {
				if _, dup := f.byID[op.Key][e.ID]; !dup {
					f.byID[op.Key][e.ID] = i
				}
			}
		case op.Kind == "final-all" && op.Status == StatusOK:
			f.all = op.Events
		case op.Kind == "final-stream" || op.Kind == "final-all":
			f.ok = false
		}
	}
	return f
}

// checkLog checks the event-log operations: no acknowledged append lost,
// none duplicated, versions and positions dense, reads consistent with the
// final log, and appends and reads linearizable per stream.
func checkLog(ops []*Op, streams []string, cc checkConfig) workloadResult {
	start := time.Now()
	var res workloadResult
	f := buildFinalLog(ops)
	for _, op := range ops {
		if op.Workload == "log" && (op.Kind == "append" || op.Kind == "tail") {
			res.Stats.add(op.Status)
		}
	}
	if !f.ok {
		res.Inconclusive = append(res.Inconclusive, "log: the final read failed; appends cannot be resolved")
		return res
	}
	res.Anomalies = append(res.Anomalies, checkFinalLog(f, streams)...)
	res.Anomalies = append(res.Anomalies, checkAppends(ops, f)...)
	perStream := map[string][]porcupine.Operation{}
	for _, op := range ops {
		if op.Workload != "log" {
			continue
		}
		if p, ok := streamOperation(op, f); ok {
			perStream[op.Key] = append(perStream[op.Key], p)
		}
	}
	histories := make([][]porcupine.Operation, len(streams))
	for i, s := range streams {
		histories[i] = perStream[s]
	}
	for i, r := range checkParallel(streamModel, histories, cc.timeout) {
		switch r {
		case porcupine.Illegal:
			a := anomalyf("stream-not-linearizable", "log", nil, "appends and reads of stream %s are not linearizable", streams[i])
			a.File = visualize(streamModel, histories[i], cc, "log-"+streams[i], cc.timeout)
			res.Anomalies = append(res.Anomalies, a)
		case porcupine.Unknown:
			res.Inconclusive = append(res.Inconclusive, fmt.Sprintf("log stream %s: porcupine timed out after %v", streams[i], cc.timeout))
		}
	}
	res.CheckTime = time.Since(start)
	return res
}

// checkFinalLog checks the final log on its own: each stream's versions are
// 0..n-1 with unique ids, positions across all streams are dense from the
// first, and the two reads agree.
func checkFinalLog(f finalLog, streams []string) []Anomaly {
	var out []Anomaly
	inAll := map[[2]string]EventRef{}
	for i, e := range f.all {
		if i > 0 && e.Position != f.all[i-1].Position+1 {
			out = append(out, anomalyf("position-gap", "log", nil, "the log of all streams jumps from position %d to %d", f.all[i-1].Position, e.Position))
		}
		inAll[[2]string{e.Stream, e.ID}] = e
	}
	if len(f.all) > 0 && f.all[0].Position != 0 {
		out = append(out, anomalyf("position-gap", "log", nil, "the log of all streams starts at position %d", f.all[0].Position))
	}
	for _, s := range streams {
		seen := map[string]int{}
		for i, e := range f.streams[s] {
			if e.Version != uint64(i) {
				out = append(out, anomalyf("version-gap", "log", nil, "stream %s holds version %d at index %d", s, e.Version, i))
				break
			}
			if j, dup := seen[e.ID]; dup {
				out = append(out, anomalyf("duplicate-append", "log", nil, "stream %s holds event %s twice (versions %d and %d)", s, e.ID, j, i))
			}
			seen[e.ID] = i
			a, ok := inAll[[2]string{s, e.ID}]
			if !ok || a.Position != e.Position || a.Version != e.Version {
				out = append(out, anomalyf("log-mismatch", "log", nil, "stream %s event %s (version %d, position %d) is not at that place in the log of all streams", s, e.ID, e.Version, e.Position))
			}
		}
	}
	return out
}

// checkAppends resolves every append against the final log.
func checkAppends(ops []*Op, f finalLog) []Anomaly {
	var out []Anomaly
	written := map[[2]string]bool{}
	for _, op := range ops {
		if op.Workload != "log" || op.Kind != "append" {
			continue
		}
		for i, e := range op.Events {
			written[[2]string{op.Key, e.ID}] = true
			idx, present := f.byID[op.Key][e.ID]
			switch {
			case op.Status == StatusOK && op.OK && !present:
				out = append(out, anomalyf("lost-append", "log", []int{op.ID}, "event %s was acknowledged in stream %s at version %d but is not in the final log", e.ID, op.Key, e.Version))
			case op.Status == StatusOK && op.OK && (f.streams[op.Key][idx].Version != e.Version || f.streams[op.Key][idx].Position != e.Position):
				got := f.streams[op.Key][idx]
				out = append(out, anomalyf("append-moved", "log", []int{op.ID}, "event %s was acknowledged at version %d position %d but the log has it at version %d position %d", e.ID, e.Version, e.Position, got.Version, got.Position))
			case op.Status == StatusOK && op.OK && i > 0 && e.Version != op.Events[i-1].Version+1:
				out = append(out, anomalyf("append-not-contiguous", "log", []int{op.ID}, "the events of one append to %s got versions %d and %d", op.Key, op.Events[i-1].Version, e.Version))
			case (op.Status == StatusFail || (op.Status == StatusOK && !op.OK)) && present:
				out = append(out, anomalyf("failed-append-applied", "log", []int{op.ID}, "event %s is in stream %s although its append failed (%s%s)", e.ID, op.Key, op.Err, op.Extra))
			}
		}
	}
	for s, evs := range f.streams {
		for _, e := range evs {
			if !written[[2]string{s, e.ID}] {
				out = append(out, anomalyf("phantom-event", "log", nil, "stream %s holds event %s, which no append wrote", s, e.ID))
			}
		}
	}
	for _, op := range ops {
		if op.Workload != "log" || op.Kind != "tail" || op.Status != StatusOK {
			continue
		}
		for _, e := range op.Events {
			evs := f.streams[op.Key]
			if e.Version >= uint64(len(evs)) || evs[e.Version].ID != e.ID {
				out = append(out, anomalyf("read-divergent", "log", []int{op.ID}, "a read of %s returned event %s at version %d, which the final log does not hold there", op.Key, e.ID, e.Version))
				break
			}
		}
	}
	return out
}

// streamOperation converts an operation for the stream model. An append
// whose outcome is unknown happened exactly when its events are in the
// final log; it then enters with the versions found there and an open
// return time.
func streamOperation(op *Op, f finalLog) (porcupine.Operation, bool) {
	p := porcupine.Operation{ClientId: op.Client, Call: op.Call, Return: op.Return, Metadata: op.ID}
	switch {
	case op.Kind == "tail" && op.Status == StatusOK:
		p.Input = streamInput{First: op.Seq}
	case op.Kind == "append" && op.Status == StatusOK && op.OK && len(op.Events) > 0:
		p.Input = streamInput{Append: true, First: op.Events[0].Version, Count: uint64(len(op.Events))}
	case op.Kind == "append" && op.Status == StatusUnknown && len(op.Events) > 0:
		idx, ok := f.byID[op.Key][op.Events[0].ID]
		if !ok {
			return p, false
		}
		p.Input, p.Return = streamInput{Append: true, First: uint64(idx), Count: uint64(len(op.Events))}, never
	default:
		return p, false
	}
	return p, true
}
