package fsm

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"coord/internal/cmdpb"
	"coord/internal/sm"
)

// Operations of sm.MachineCluster.
const (
	// OpSetMember records a member's client-facing addresses.
	OpSetMember uint32 = 1
	// OpDeleteMember forgets a member's addresses.
	OpDeleteMember uint32 = 2
)

const bucketMembers = "members"

// clusterMachine keeps what the cluster knows about its members beyond their
// Raft addresses: where clients and operators reach them. Followers use it to
// find the leader's gRPC address.
type clusterMachine struct{}

func (clusterMachine) ID() uint32                           { return sm.MachineCluster }
func (clusterMachine) Name() string                         { return "cluster" }
func (clusterMachine) Tick(sm.Env, sm.Tx, int) (int, error) { return 0, nil }
func (clusterMachine) NextDue(sm.Tx) (int64, bool)          { return 0, false }

func (clusterMachine) Apply(_ sm.Env, tx sm.Tx, op uint32, body []byte) ([]byte, error) {
	b := tx.Bucket(bucketMembers)
	switch op {
	case OpSetMember:
		var m cmdpb.MemberMeta
		if err := proto.Unmarshal(body, &m); err != nil {
			return nil, fmt.Errorf("decode MemberMeta: %w", err)
		}
		if m.Id == "" {
			return nil, sm.Reject(sm.RejectInvalidArgument, "member id is empty")
		}
		return nil, putMsg(b, []byte(m.Id), &m)
	case OpDeleteMember:
		var m cmdpb.DeleteMember
		if err := proto.Unmarshal(body, &m); err != nil {
			return nil, fmt.Errorf("decode DeleteMember: %w", err)
		}
		return nil, b.Delete([]byte(m.Id))
	default:
		return nil, fmt.Errorf("unknown cluster op %d", op)
	}
}

func putMsg(b sm.Bucket, key []byte, m proto.Message) error {
	v, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return err
	}
	return b.Put(key, v)
}

// Members returns the stored member metadata by id.
func (f *FSM) Members() (map[string]*cmdpb.MemberMeta, error) {
	out := map[string]*cmdpb.MemberMeta{}
	err := f.View(sm.MachineCluster, func(_ sm.Env, tx sm.Tx) error {
		c := tx.Bucket(bucketMembers).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var m cmdpb.MemberMeta
			if err := proto.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("fsm: corrupt member record %q: %w", k, err)
			}
			out[string(k)] = &m
		}
		return nil
	})
	return out, err
}
