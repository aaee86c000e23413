package chaos

import (
	"encoding/json"
	"errors"
	"os"
	"sort"
	"sync"
	"time"

	"coord/client"
)

// Status is an operation's outcome as its client saw it.
type Status string

// Operation outcomes.
const (
	// StatusOK: the call returned a result.
	StatusOK Status = "ok"
	// StatusFail: the call failed in a way that proves nothing was applied
	// (or a read, which applies nothing, failed).
	StatusFail Status = "fail"
	// StatusUnknown: a write that may or may not have been applied.
	StatusUnknown Status = "unknown"
)

// Op is one recorded operation. Times are nanoseconds since the run began
// (monotonic clock). Which fields are set depends on Kind.
type Op struct {
	ID       int    `json:"id"`
	Workload string `json:"workload"`
	Client   int    `json:"client"`
	Kind     string `json:"kind"`
	Key      string `json:"key,omitempty"`
	Node     string `json:"node,omitempty"` // pinned reads: the node asked

	Value    string `json:"value,omitempty"`    // put/append: the value written; get: the value read
	Found    bool   `json:"found,omitempty"`    // get: the key existed
	Token    uint64 `json:"token,omitempty"`    // lock ops: the fencing token
	Lease    uint64 `json:"lease,omitempty"`    // acquire: the lease
	Revision uint64 `json:"revision,omitempty"` // put: the log index; get: mod revision
	OK       bool   `json:"ok,omitempty"`       // acquire: granted; release: released; put: succeeded
	Fenced   bool   `json:"fenced,omitempty"`   // fenced put refused with FENCED
	Seq      uint64 `json:"seq,omitempty"`      // append: position in the stream
	Extra    string `json:"extra,omitempty"`
	// Events are the events an append wrote (ids, with the versions and
	// positions it was told) or a read returned.
	Events []EventRef `json:"events,omitempty"`

	Call   int64  `json:"call"`
	Return int64  `json:"return"`
	Status Status `json:"status"`
	Err    string `json:"err,omitempty"`
}

// EventRef is an event of the event log as an operation saw it.
type EventRef struct {
	ID       string `json:"id"`
	Stream   string `json:"stream,omitempty"`
	Version  uint64 `json:"version"`
	Position uint64 `json:"position"`
}

// history records operations from many goroutines.
type history struct {
	start time.Time
	mu    sync.Mutex
	ops   []*Op
}

func newHistory(start time.Time) *history { return &history{start: start} }

func (h *history) now() int64 { return time.Since(h.start).Nanoseconds() }

// begin records the invocation of an operation.
func (h *history) begin(op *Op) *Op {
	op.Call = h.now()
	return op
}

// end records the response and stores the operation.
func (h *history) end(op *Op, st Status, err error) {
	op.Return = h.now()
	op.Status = st
	if err != nil {
		op.Err = err.Error()
	}
	h.mu.Lock()
	op.ID = len(h.ops)
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// snapshot returns the operations recorded so far, ordered by call time.
func (h *history) snapshot() []*Op {
	h.mu.Lock()
	out := append([]*Op(nil), h.ops...)
	h.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Call < out[j].Call })
	return out
}

// writeJSONL writes the history, one operation per line.
func writeJSONL(path string, ops []*Op) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	for _, op := range ops {
		if err := enc.Encode(op); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// writeOutcome classifies a failed write: unknown unless the error proves
// the request was never applied.
func writeOutcome(err error) Status {
	if errors.Is(err, client.ErrOutcomeUnknown) {
		return StatusUnknown
	}
	var ce *client.Error
	if errors.As(err, &ce) {
		switch {
		case errors.Is(err, client.ErrNotLeader), errors.Is(err, client.ErrNoLeader),
			errors.Is(err, client.ErrNotApplied), errors.Is(err, client.ErrInvalidArgument),
			errors.Is(err, client.ErrFailedPrecondition), errors.Is(err, client.ErrNotFound),
			errors.Is(err, client.ErrResourceExhausted):
			return StatusFail
		}
	}
	return StatusUnknown
}

// opStats counts outcomes.
type opStats struct {
	OK      int `json:"ok"`
	Failed  int `json:"failed"`
	Unknown int `json:"unknown"`
}

func (s *opStats) add(st Status) {
	switch st {
	case StatusOK:
		s.OK++
	case StatusFail:
		s.Failed++
	case StatusUnknown:
		s.Unknown++
	}
}
