package eventlog

import (
	"bytes"
	"strings"

	"google.golang.org/protobuf/proto"

	"coord/internal/cmdpb"
	"coord/internal/sm"
)

// Event is a stored event and its global position.
type Event struct {
	Position uint64
	*cmdpb.EventLogEvent
}

// Stream is a stream's record as seen at a state-machine time.
type Stream struct {
	Record *cmdpb.EventLogStream
	// FirstVisible is the lowest readable version (Record.NextVersion when
	// none is).
	FirstVisible uint64
}

// GetStream returns a stream as seen at env.Now, or nil when it has no
// record.
func GetStream(env sm.Env, tx sm.Tx, name string) (*Stream, error) {
	rec, err := loadStream(tx, name)
	if err != nil || rec == nil {
		return nil, err
	}
	first, err := firstVisible(tx, rec, env.Now)
	if err != nil {
		return nil, err
	}
	return &Stream{Record: rec, FirstVisible: first}, nil
}

// Head returns the position the next appended event gets: every position
// below it was assigned.
func Head(tx sm.Tx) uint64 { return nextPosition(tx) }

// Cursor returns a committed cursor, or nil.
func Cursor(tx sm.Tx, name string) (*cmdpb.EventLogCursor, error) { return loadCursor(tx, name) }

// StreamPage is a page of one stream.
type StreamPage struct {
	// Stream is the stream (nil: no record).
	Stream *Stream
	// Events in the direction of the read.
	Events []Event
	// Next continues the read in the same direction.
	Next uint64
	// End is true when no readable event remains in that direction.
	End bool
}

// ReadStream reads up to limit readable events of a stream (and about
// MaxReadBytes, at least one event) from version from, forwards or
// backwards. Backwards, a from past the last version starts at the last.
// A deleted stream or one without a record reads as empty.
func ReadStream(env sm.Env, tx sm.Tx, name string, from uint64, backwards bool, limit int) (*StreamPage, error) {
	st, err := GetStream(env, tx, name)
	if err != nil {
		return nil, err
	}
	page := &StreamPage{Stream: st, Next: from, End: true}
	if st == nil || st.Record.Deleted {
		return page, nil
	}
	if backwards {
		return page, readBackwards(env, tx, st, page, limit)
	}
	return page, readForwards(tx, st, page, limit)
}

func readForwards(tx sm.Tx, st *Stream, page *StreamPage, limit int) error {
	rec := st.Record
	v, size := max(page.Next, st.FirstVisible), 0
	for ; v < rec.NextVersion && len(page.Events) < limit && size < MaxReadBytes; v++ {
		pos, ev, err := eventAt(tx, rec.Name, v)
		if err != nil {
			return err
		}
		page.Events = append(page.Events, Event{Position: pos, EventLogEvent: ev})
		size += proto.Size(ev)
	}
	page.Next, page.End = v, v >= rec.NextVersion
	return nil
}

func readBackwards(env sm.Env, tx sm.Tx, st *Stream, page *StreamPage, limit int) error {
	rec := st.Record
	if rec.NextVersion == 0 || min(page.Next, rec.NextVersion-1) < st.FirstVisible {
		return nil
	}
	v, size := min(page.Next, rec.NextVersion-1), 0
	for len(page.Events) < limit && size < MaxReadBytes {
		pos, ev, err := eventAt(tx, rec.Name, v)
		if err != nil {
			return err
		}
		if expired(rec, ev, env.Now) {
			return nil
		}
		page.Events = append(page.Events, Event{Position: pos, EventLogEvent: ev})
		size += proto.Size(ev)
		if v == st.FirstVisible {
			return nil
		}
		v--
	}
	page.Next, page.End = v, false
	return nil
}

// Filter selects events of the log of all streams.
type Filter struct {
	// StreamPrefix keeps events of streams whose name starts with it.
	StreamPrefix string
	// EventType keeps events of exactly this type (empty: any).
	EventType string
}

// Match reports whether the filter keeps ev.
func (f Filter) Match(ev *cmdpb.EventLogEvent) bool {
	return strings.HasPrefix(ev.Stream, f.StreamPrefix) && (f.EventType == "" || ev.Type == f.EventType)
}

// AllPage is a page of the log of all streams.
type AllPage struct {
	// Events in position order.
	Events []Event
	// Next continues the read: every matching readable event below it is
	// in this page or an earlier one.
	Next uint64
	// End is true when Next has reached the head of the log.
	End bool
}

// ReadAll reads up to limit readable events matching f from position from
// on (and about MaxReadBytes, at least one event), scanning at most MaxScan
// positions.
func ReadAll(env sm.Env, tx sm.Tx, from uint64, f Filter, limit int) (*AllPage, error) {
	head := nextPosition(tx)
	page := &AllPage{Next: from}
	streams := map[string]*cmdpb.EventLogStream{}
	scanned, size := 0, 0
	c := tx.Bucket(bucketEvents).Cursor()
	k, v := c.Seek(sm.U64(from))
	for ; k != nil && len(page.Events) < limit && size < MaxReadBytes && scanned < MaxScan; k, v = c.Next() {
		pos, _ := sm.DecodeU64(k)
		scanned++
		page.Next = pos + 1
		ev, err := decodeEvent(pos, v)
		if err != nil {
			return nil, err
		}
		if !f.Match(ev) {
			continue
		}
		ok, err := readable(tx, streams, ev, env.Now)
		if err != nil {
			return nil, err
		}
		if ok {
			page.Events = append(page.Events, Event{Position: pos, EventLogEvent: ev})
			size += len(v)
		}
	}
	if k == nil {
		page.Next = max(page.Next, head)
	}
	page.End = page.Next >= head
	return page, nil
}

// readable reports whether retention and deletion keep ev, caching stream
// records in streams.
func readable(tx sm.Tx, streams map[string]*cmdpb.EventLogStream, ev *cmdpb.EventLogEvent, now int64) (bool, error) {
	rec, ok := streams[ev.Stream]
	if !ok {
		var err error
		if rec, err = loadStream(tx, ev.Stream); err != nil {
			return false, err
		}
		streams[ev.Stream] = rec
	}
	return rec != nil && visible(rec, ev, now), nil
}

// ListStreams returns the streams whose names start with prefix, after the
// name after, at most limit of them, and whether more remain.
func ListStreams(env sm.Env, tx sm.Tx, prefix, after string, limit int) ([]*Stream, bool, error) {
	var out []*Stream
	c := tx.Bucket(bucketStreams).Cursor()
	start := []byte(prefix)
	if after != "" && after >= prefix {
		start = append([]byte(after), 0)
	}
	for k, _ := c.Seek(start); k != nil && bytes.HasPrefix(k, []byte(prefix)); k, _ = c.Next() {
		if len(out) == limit {
			return out, true, nil
		}
		st, err := GetStream(env, tx, string(k))
		if err != nil {
			return nil, false, err
		}
		out = append(out, st)
	}
	return out, false, nil
}
