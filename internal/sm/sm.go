package sm

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Machine ids. They are written into every log entry: never renumber.
const (
	// MachineFSM is the state machine's own bookkeeping (Tick).
	MachineFSM uint32 = 0
	// MachineCluster holds cluster metadata (cluster id, member addresses).
	MachineCluster uint32 = 1
	// MachineKV is the key-value register.
	MachineKV uint32 = 2
	// MachineLocks holds leases and fencing-token locks.
	MachineLocks uint32 = 3
	// MachineEventLog holds append-only event streams.
	MachineEventLog uint32 = 4
	// MachineRateLimit holds distributed token buckets.
	MachineRateLimit uint32 = 5
	// MachineBreaker holds shared circuit-breaker state.
	MachineBreaker uint32 = 6
	// MachineIdempotency holds idempotency records.
	MachineIdempotency uint32 = 7
	// MachineSaga holds saga progress.
	MachineSaga uint32 = 8
)

// Env is the context of one applied log entry. It is the only source of time
// and ordering a Machine may use.
type Env struct {
	// Index is the Raft index of the entry being applied.
	Index uint64
	// Term is the Raft term of the entry.
	Term uint64
	// Now is the state machine's clock in unix nanoseconds: the leader's
	// stamped time, clamped so that it never runs backwards.
	Now int64
}

// Time returns Now as a time.Time.
func (e Env) Time() time.Time { return time.Unix(0, e.Now) }

// Tx is a storage transaction scoped to one Machine's records.
type Tx interface {
	// Bucket returns the named bucket of the machine. In a read-only
	// transaction a missing bucket is returned empty; in a write transaction
	// it is created.
	Bucket(name string) Bucket
	// AscendingBucket is Bucket for a bucket whose keys are written in
	// ascending order, each above every key it holds: its pages are packed
	// full when they split instead of half full, since nothing will be
	// inserted before the new keys. Deletions may come in any order.
	AscendingBucket(name string) Bucket
	// Writable reports whether the transaction may write.
	Writable() bool
	// Notify wakes, once the transaction has committed, everyone watching
	// topic on this node (see fsm.FSM.Watch). Topics are scoped to the
	// machine. Notifications carry no data and are not replicated state:
	// watchers re-read the state they care about. In a read-only
	// transaction Notify does nothing.
	Notify(topic string)
}

// Bucket is an ordered map of byte keys to byte values. Values returned by
// Get and Cursor are valid only until the transaction ends and must not be
// modified.
type Bucket interface {
	Get(key []byte) []byte
	Put(key, value []byte) error
	Delete(key []byte) error
	Cursor() Cursor
}

// Cursor walks a bucket in key order. Each method returns a nil key when it
// runs off the end.
type Cursor interface {
	First() (key, value []byte)
	Last() (key, value []byte)
	Seek(key []byte) (key2, value []byte)
	Next() (key, value []byte)
	Prev() (key, value []byte)
	Delete() error
}

// Machine is one replicated primitive.
type Machine interface {
	// ID is the machine's id in log entries.
	ID() uint32
	// Name is the machine's storage namespace; it never changes.
	Name() string
	// Apply applies one operation. A deterministic refusal is returned as a
	// *Rejection (and nothing is written); any other error halts the node.
	Apply(env Env, tx Tx, op uint32, body []byte) ([]byte, error)
	// Tick handles work due at env.Now (expiries, deadlines, collection) in
	// key order, touching at most budget records, and reports how many it
	// touched.
	Tick(env Env, tx Tx, budget int) (int, error)
	// NextDue reports the earliest state-machine time at which Tick has work,
	// or false when nothing is scheduled.
	NextDue(tx Tx) (int64, bool)
}

// Fencer is implemented by the machine that owns fencing tokens (locks). The
// state machine asks it to check every fence a command carries before the
// command is dispatched.
type Fencer interface {
	// CheckFence returns nil when token is the current token of a holder of
	// lock name at env.Now, and a *Rejection with RejectFenced otherwise.
	CheckFence(env Env, tx Tx, name string, token uint64) error
}

// LeaderObserver is implemented by machines that must react when a new
// leader takes over. The new leader's first command (after its barrier)
// reaches every such machine before any client command of its term.
type LeaderObserver interface {
	// LeaderChanged runs at the new leader's first entry. prevNow is the
	// state-machine time before that entry: time between prevNow and
	// env.Now passed without a leader that could commit (for example a
	// lease's keep-alives could not be applied).
	LeaderChanged(env Env, tx Tx, prevNow int64) error
}

// RejectCode classifies a Rejection. The values match cmdpb.RejectCode.
type RejectCode int32

// Rejection codes.
const (
	RejectInvalidArgument    RejectCode = 1
	RejectFailedPrecondition RejectCode = 2
	RejectNotFound           RejectCode = 3
	RejectResourceExhausted  RejectCode = 4
	RejectFenced             RejectCode = 5
)

// Rejection is a deterministic refusal of a command: every replica refuses it
// the same way and nothing is written.
type Rejection struct {
	Code    RejectCode
	Message string
}

func (r *Rejection) Error() string { return r.Message }

// Reject returns a Rejection with a formatted message.
func Reject(code RejectCode, format string, args ...any) *Rejection {
	return &Rejection{Code: code, Message: fmt.Sprintf(format, args...)}
}

// U64 encodes v as 8 big-endian bytes.
func U64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

// I64 encodes a non-negative v as 8 big-endian bytes. Negative values are
// clamped to zero so that byte order stays numeric order.
func I64(v int64) []byte {
	if v < 0 {
		v = 0
	}
	return U64(uint64(v))
}

// DecodeU64 decodes 8 big-endian bytes; it returns false for any other length.
func DecodeU64(b []byte) (uint64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(b), true
}

// Join concatenates key parts.
func Join(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]byte, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
