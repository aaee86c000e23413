package fsm

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"coord/internal/cmdpb"
)

// Top-level buckets of state.db.
var (
	bucketMeta     = []byte("meta")
	bucketSessions = []byte("sessions")     // client id -> Session
	bucketResults  = []byte("results")      // client id, seq -> Result
	bucketIdle     = []byte("session_idle") // last_seen, client id -> empty
	keyMeta        = []byte("meta")
	machinePrefix  = "m."
)

// EncodeCommand returns the log entry payload for cmd.
func EncodeCommand(cmd *cmdpb.Command) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(cmd)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(b)+1)
	out = append(out, FormatV1)
	return append(out, b...), nil
}

// DecodeCommand parses a log entry payload.
func DecodeCommand(data []byte) (*cmdpb.Command, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("empty command")
	}
	if data[0] != FormatV1 {
		return nil, fmt.Errorf("unknown command format %d", data[0])
	}
	var cmd cmdpb.Command
	if err := proto.Unmarshal(data[1:], &cmd); err != nil {
		return nil, fmt.Errorf("decode command: %w", err)
	}
	return &cmd, nil
}

func readMeta(tx *bolt.Tx) (*cmdpb.Meta, error) {
	m := &cmdpb.Meta{}
	b := tx.Bucket(bucketMeta)
	if b == nil {
		return m, nil
	}
	if v := b.Get(keyMeta); v != nil {
		if err := proto.Unmarshal(v, m); err != nil {
			return nil, fmt.Errorf("fsm: corrupt meta record: %w", err)
		}
	}
	return m, nil
}

func writeMeta(tx *bolt.Tx, m *cmdpb.Meta) error {
	b, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	return putProto(b, keyMeta, m)
}

func putProto(b *bolt.Bucket, key []byte, m proto.Message) error {
	v, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return err
	}
	return b.Put(key, v)
}
