package eventlog

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"coord/internal/cmdpb"
	"coord/internal/sm"
)

// Operations.
const (
	OpAppend       uint32 = 1 // cmdpb.EventLogAppend -> cmdpb.EventLogAppendResult
	OpDeleteStream uint32 = 2 // cmdpb.EventLogDeleteStream -> cmdpb.EventLogDeleteStreamResult
	OpSetRetention uint32 = 3 // cmdpb.EventLogSetRetention -> cmdpb.EventLogSetRetentionResult
	OpCommitCursor uint32 = 4 // cmdpb.EventLogCommitCursor -> cmdpb.EventLogCommitCursorResult
)

// Machine is the event-log primitive.
type Machine struct{}

var _ sm.Machine = Machine{}

// ID implements sm.Machine.
func (Machine) ID() uint32 { return sm.MachineEventLog }

// Name implements sm.Machine.
func (Machine) Name() string { return "eventlog" }

// Apply implements sm.Machine.
func (Machine) Apply(env sm.Env, tx sm.Tx, op uint32, body []byte) ([]byte, error) {
	s := &store{env: env, tx: tx}
	var res proto.Message
	var err error
	switch op {
	case OpAppend:
		var req cmdpb.EventLogAppend
		if err = proto.Unmarshal(body, &req); err == nil {
			res, err = s.append(&req)
		}
	case OpDeleteStream:
		var req cmdpb.EventLogDeleteStream
		if err = proto.Unmarshal(body, &req); err == nil {
			res, err = s.deleteStream(&req)
		}
	case OpSetRetention:
		var req cmdpb.EventLogSetRetention
		if err = proto.Unmarshal(body, &req); err == nil {
			res, err = s.setRetention(&req)
		}
	case OpCommitCursor:
		var req cmdpb.EventLogCommitCursor
		if err = proto.Unmarshal(body, &req); err == nil {
			res, err = s.commitCursor(&req)
		}
	default:
		return nil, fmt.Errorf("unknown eventlog op %d", op)
	}
	if err != nil {
		return nil, err
	}
	return marshal(res)
}

// Tick implements sm.Machine: it carries out due retention work (max_count,
// max_age, truncate_before, deleted streams), in due-time order, removing
// at most budget events.
func (Machine) Tick(env sm.Env, tx sm.Tx, budget int) (int, error) {
	s := &store{env: env, tx: tx}
	used := 0
	c := tx.Bucket(bucketTrim).Cursor()
	for k, _ := c.First(); k != nil && used < budget; k, _ = c.First() {
		if len(k) <= 8 {
			return used, fmt.Errorf("corrupt retention key %x", k)
		}
		at, _ := sm.DecodeU64(k[:8])
		if int64(at) > env.Now {
			break
		}
		n, err := s.trimDue(string(k[8:]), budget-used)
		if err != nil {
			return used, err
		}
		used += max(n, 1)
	}
	return used, nil
}

// NextDue implements sm.Machine.
func (Machine) NextDue(tx sm.Tx) (int64, bool) {
	k, _ := tx.Bucket(bucketTrim).Cursor().First()
	if len(k) < 8 {
		return 0, false
	}
	at, _ := sm.DecodeU64(k[:8])
	return int64(at), true
}
