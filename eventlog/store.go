package eventlog

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"coord/internal/cmdpb"
	"coord/internal/sm"
)

// Buckets. Names never contain a 0 byte (see ValidateName), so "name, 0"
// prefixes one stream's keys unambiguously.
//
// "ids" is the id index of state written before "event_ids" existed. It is
// read and deleted from, never written, so it empties as retention removes
// the events it indexes.
const (
	bucketMeta     = "meta"      // "next_position" -> u64
	bucketStreams  = "streams"   // name -> EventLogStream
	bucketEvents   = "events"    // position -> EventLogEvent
	bucketVersions = "versions"  // name, 0, version -> position
	bucketIDs      = "event_ids" // event id, 0, name -> version, position
	bucketOldIDs   = "ids"       // name, 0, event id -> version, position
	bucketTrim     = "trim"      // at, name -> empty: scheduled retention work
	bucketCursors  = "cursors"   // name -> EventLogCursor
)

// Topics notified on changes (see sm.Tx.Notify).
const (
	// TopicAll is notified by every append and deletion.
	TopicAll          = "all"
	topicStreamPrefix = "stream/"
)

// StreamTopic is the topic notified by appends to and the deletion of a
// stream.
func StreamTopic(name string) string { return topicStreamPrefix + name }

var keyNextPosition = []byte("next_position")

func marshal(m proto.Message) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
}

// store wraps a transaction with typed access to the machine's records.
type store struct {
	env sm.Env
	tx  sm.Tx
}

func (s *store) put(bucket string, key []byte, m proto.Message) error {
	v, err := marshal(m)
	if err != nil {
		return err
	}
	return s.tx.Bucket(bucket).Put(key, v)
}

// stream returns a stream's record, or nil.
func (s *store) stream(name string) (*cmdpb.EventLogStream, error) {
	return loadStream(s.tx, name)
}

func loadStream(tx sm.Tx, name string) (*cmdpb.EventLogStream, error) {
	v := tx.Bucket(bucketStreams).Get([]byte(name))
	if v == nil {
		return nil, nil
	}
	var rec cmdpb.EventLogStream
	if err := proto.Unmarshal(v, &rec); err != nil {
		return nil, fmt.Errorf("corrupt stream record %q: %w", name, err)
	}
	return &rec, nil
}

func (s *store) saveStream(rec *cmdpb.EventLogStream) error {
	return s.put(bucketStreams, []byte(rec.Name), rec)
}

// nextPosition is the position the next appended event gets.
func nextPosition(tx sm.Tx) uint64 {
	n, _ := sm.DecodeU64(tx.Bucket(bucketMeta).Get(keyNextPosition))
	return n
}

func (s *store) setNextPosition(n uint64) error {
	return s.tx.Bucket(bucketMeta).Put(keyNextPosition, sm.U64(n))
}

func streamPrefix(name string) []byte { return append([]byte(name), 0) }

func versionKey(name string, version uint64) []byte {
	return sm.Join(streamPrefix(name), sm.U64(version))
}

// idKey is an event's key in the id index. The id comes first: ids made by
// the client (client.NewEventID) start with a timestamp, so the ids of one
// batch of appends, to however many streams, land on the index's last page
// instead of on a page per stream. Ids are printable ASCII (ValidateEvent),
// so the 0 separates id and name unambiguously.
func idKey(name, id string) []byte { return sm.Join([]byte(id), []byte{0}, []byte(name)) }

func oldIDKey(name, id string) []byte { return sm.Join(streamPrefix(name), []byte(id)) }

func trimKey(at int64, name string) []byte { return sm.Join(sm.I64(at), []byte(name)) }

// positionOf returns the position of a stored version.
func positionOf(tx sm.Tx, name string, version uint64) (uint64, bool) {
	return sm.DecodeU64(tx.Bucket(bucketVersions).Get(versionKey(name, version)))
}

// loadEvent returns the event stored at a position, or nil.
func loadEvent(tx sm.Tx, pos uint64) (*cmdpb.EventLogEvent, error) {
	v := tx.Bucket(bucketEvents).Get(sm.U64(pos))
	if v == nil {
		return nil, nil
	}
	return decodeEvent(pos, v)
}

func decodeEvent(pos uint64, v []byte) (*cmdpb.EventLogEvent, error) {
	var ev cmdpb.EventLogEvent
	if err := proto.Unmarshal(v, &ev); err != nil {
		return nil, fmt.Errorf("corrupt event at position %d: %w", pos, err)
	}
	return &ev, nil
}

// storedID returns the version and position of the event with id in a
// stream, if it is stored.
func storedID(tx sm.Tx, name, id string) (version, pos uint64, ok bool, err error) {
	v := tx.Bucket(bucketIDs).Get(idKey(name, id))
	if v == nil {
		v = tx.Bucket(bucketOldIDs).Get(oldIDKey(name, id))
	}
	if v == nil {
		return 0, 0, false, nil
	}
	if len(v) != 16 {
		return 0, 0, false, fmt.Errorf("corrupt id record %q in stream %q", id, name)
	}
	version, _ = sm.DecodeU64(v[:8])
	pos, _ = sm.DecodeU64(v[8:])
	return version, pos, true, nil
}

// writeEvent stores one event under its position, version and id.
func (s *store) writeEvent(pos uint64, ev *cmdpb.EventLogEvent) error {
	v, err := marshal(ev)
	if err != nil {
		return err
	}
	if err := s.tx.AscendingBucket(bucketEvents).Put(sm.U64(pos), v); err != nil { // positions only grow
		return err
	}
	if err := s.tx.Bucket(bucketVersions).Put(versionKey(ev.Stream, ev.Version), sm.U64(pos)); err != nil {
		return err
	}
	return s.tx.Bucket(bucketIDs).Put(idKey(ev.Stream, ev.Id), sm.Join(sm.U64(ev.Version), sm.U64(pos)))
}

// removeVersion deletes a stored version of a stream and its id record.
func (s *store) removeVersion(name string, version uint64) error {
	pos, ev, err := eventAt(s.tx, name, version)
	if err != nil {
		return err
	}
	if err := s.tx.Bucket(bucketIDs).Delete(idKey(name, ev.Id)); err != nil {
		return err
	}
	if err := s.tx.Bucket(bucketOldIDs).Delete(oldIDKey(name, ev.Id)); err != nil {
		return err
	}
	if err := s.tx.Bucket(bucketVersions).Delete(versionKey(name, version)); err != nil {
		return err
	}
	return s.tx.Bucket(bucketEvents).Delete(sm.U64(pos))
}

// schedule makes sure retention work for rec is due no later than at. The
// caller saves rec.
func (s *store) schedule(rec *cmdpb.EventLogStream, at int64) error {
	if rec.TrimAt != 0 && rec.TrimAt <= at {
		return nil
	}
	if err := s.unschedule(rec); err != nil {
		return err
	}
	rec.TrimAt = at
	return s.tx.Bucket(bucketTrim).Put(trimKey(at, rec.Name), nil)
}

// unschedule drops rec's scheduled retention work. The caller saves rec.
func (s *store) unschedule(rec *cmdpb.EventLogStream) error {
	if rec.TrimAt == 0 {
		return nil
	}
	err := s.tx.Bucket(bucketTrim).Delete(trimKey(rec.TrimAt, rec.Name))
	rec.TrimAt = 0
	return err
}

// loadCursor returns a cursor, or nil.
func loadCursor(tx sm.Tx, name string) (*cmdpb.EventLogCursor, error) {
	v := tx.Bucket(bucketCursors).Get([]byte(name))
	if v == nil {
		return nil, nil
	}
	var c cmdpb.EventLogCursor
	if err := proto.Unmarshal(v, &c); err != nil {
		return nil, fmt.Errorf("corrupt cursor %q: %w", name, err)
	}
	return &c, nil
}
