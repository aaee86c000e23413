package eventlog

import (
	"coord/internal/cmdpb"
	"coord/internal/sm"
)

// Outcome shorthands.
const (
	appended      = cmdpb.EventLogAppendOutcome_EVENT_LOG_APPEND_OUTCOME_APPENDED
	duplicate     = cmdpb.EventLogAppendOutcome_EVENT_LOG_APPEND_OUTCOME_DUPLICATE
	wrongExpected = cmdpb.EventLogAppendOutcome_EVENT_LOG_APPEND_OUTCOME_WRONG_EXPECTED_VERSION
)

// holds reports whether a stream (nil: no record) is in the expected state.
func holds(rec *cmdpb.EventLogStream, kind cmdpb.EventLogExpected, version uint64) bool {
	exists := rec != nil && rec.NextVersion > 0
	switch kind {
	case cmdpb.EventLogExpected_EVENT_LOG_EXPECTED_NO_STREAM:
		return !exists
	case cmdpb.EventLogExpected_EVENT_LOG_EXPECTED_EXISTS:
		return exists
	case cmdpb.EventLogExpected_EVENT_LOG_EXPECTED_VERSION:
		return exists && rec.NextVersion-1 == version
	default:
		return true
	}
}

// current returns whether a stream has had an event and its last version.
func current(rec *cmdpb.EventLogStream) (bool, uint64) {
	if rec == nil || rec.NextVersion == 0 {
		return false, 0
	}
	return true, rec.NextVersion - 1
}

func deletedRejection(rec *cmdpb.EventLogStream) error {
	return sm.Reject(sm.RejectFailedPrecondition,
		"stream %q is deleted: appends to it are refused and its name is not reused", rec.Name)
}

// append appends events atomically. Order of checks: validity, deleted
// stream, stored ids (DUPLICATE before any expectation, so that a retry of
// an append that was applied succeeds), expected version.
func (s *store) append(a *cmdpb.EventLogAppend) (*cmdpb.EventLogAppendResult, error) {
	if err := ValidateAppend(a); err != nil {
		return nil, sm.Reject(sm.RejectInvalidArgument, "%v", err)
	}
	rec, err := s.stream(a.Stream)
	if err != nil {
		return nil, err
	}
	if rec != nil && rec.Deleted {
		return nil, deletedRejection(rec)
	}
	if res, err := s.duplicates(rec, a); res != nil || err != nil {
		return res, err
	}
	if !holds(rec, a.Expected, a.ExpectedVersion) {
		res := &cmdpb.EventLogAppendResult{Outcome: wrongExpected}
		res.StreamExists, res.CurrentVersion = current(rec)
		return res, nil
	}
	if rec == nil {
		rec = &cmdpb.EventLogStream{Name: a.Stream, CreatedAt: s.env.Now}
	}
	res, err := s.write(rec, a.Events)
	if err != nil {
		return nil, err
	}
	if err := s.retainAfterAppend(rec); err != nil {
		return nil, err
	}
	if err := s.saveStream(rec); err != nil {
		return nil, err
	}
	s.tx.Notify(TopicAll)
	s.tx.Notify(StreamTopic(rec.Name))
	return res, nil
}

// write stores events at the next versions and positions.
func (s *store) write(rec *cmdpb.EventLogStream, events []*cmdpb.EventLogNewEvent) (*cmdpb.EventLogAppendResult, error) {
	pos := nextPosition(s.tx)
	res := &cmdpb.EventLogAppendResult{Outcome: appended, FirstVersion: rec.NextVersion, FirstPosition: pos, Count: uint32(len(events))}
	for _, ne := range events {
		ev := &cmdpb.EventLogEvent{Stream: rec.Name, Version: rec.NextVersion, Id: ne.Id, Type: ne.Type, Data: ne.Data, Metadata: ne.Metadata, Time: s.env.Now}
		if err := s.writeEvent(pos, ev); err != nil {
			return nil, err
		}
		rec.NextVersion++
		pos++
	}
	rec.LastPosition, rec.UpdatedAt = pos-1, s.env.Now
	res.StreamExists, res.CurrentVersion = true, rec.NextVersion-1
	return res, s.setNextPosition(pos)
}

// retainAfterAppend schedules the retention work an append makes due.
func (s *store) retainAfterAppend(rec *cmdpb.EventLogStream) error {
	if rec.MaxCount > 0 && rec.NextVersion-rec.FirstVersion > rec.MaxCount {
		if err := s.schedule(rec, s.env.Now); err != nil {
			return err
		}
	}
	if rec.MaxAge > 0 && rec.TrimAt == 0 {
		return s.scheduleAge(rec)
	}
	return nil
}

// duplicates returns the DUPLICATE result when every event's id is stored
// in the stream, nil when none is, and a rejection when some are.
func (s *store) duplicates(rec *cmdpb.EventLogStream, a *cmdpb.EventLogAppend) (*cmdpb.EventLogAppendResult, error) {
	if rec == nil {
		return nil, nil
	}
	res := &cmdpb.EventLogAppendResult{Outcome: duplicate}
	firstNew := -1
	for i, ev := range a.Events {
		v, p, ok, err := storedID(s.tx, a.Stream, ev.Id)
		if err != nil {
			return nil, err
		}
		if !ok {
			if firstNew < 0 {
				firstNew = i
			}
			continue
		}
		res.Versions, res.Positions = append(res.Versions, v), append(res.Positions, p)
	}
	switch {
	case len(res.Versions) == 0:
		return nil, nil
	case firstNew >= 0:
		return nil, sm.Reject(sm.RejectFailedPrecondition,
			"stream %q stores %d of the %d events already (events[%d], id %q, is not stored): an append is applied whole or not at all; send only the events that are not stored",
			a.Stream, len(res.Versions), len(a.Events), firstNew, a.Events[firstNew].Id)
	}
	res.StreamExists, res.CurrentVersion = current(rec)
	return res, nil
}

// deleteStream marks a stream deleted and schedules the removal of its
// events.
func (s *store) deleteStream(d *cmdpb.EventLogDeleteStream) (*cmdpb.EventLogDeleteStreamResult, error) {
	if err := ValidateName(d.Stream); err != nil {
		return nil, sm.Reject(sm.RejectInvalidArgument, "stream: %v", err)
	}
	if err := validateExpected(d.Expected); err != nil {
		return nil, sm.Reject(sm.RejectInvalidArgument, "%v", err)
	}
	rec, err := s.stream(d.Stream)
	if err != nil {
		return nil, err
	}
	res := &cmdpb.EventLogDeleteStreamResult{}
	res.StreamExists, res.CurrentVersion = current(rec)
	switch {
	case rec == nil:
		res.Outcome = cmdpb.EventLogDeleteOutcome_EVENT_LOG_DELETE_OUTCOME_NOT_FOUND
		return res, nil
	case rec.Deleted:
		res.Outcome = cmdpb.EventLogDeleteOutcome_EVENT_LOG_DELETE_OUTCOME_ALREADY_DELETED
		return res, nil
	case !holds(rec, d.Expected, d.ExpectedVersion):
		res.Outcome = cmdpb.EventLogDeleteOutcome_EVENT_LOG_DELETE_OUTCOME_WRONG_EXPECTED_VERSION
		return res, nil
	}
	rec.Deleted, rec.DeletedAt = true, s.env.Now
	if err := s.schedule(rec, s.env.Now); err != nil {
		return nil, err
	}
	if err := s.saveStream(rec); err != nil {
		return nil, err
	}
	s.tx.Notify(TopicAll)
	s.tx.Notify(StreamTopic(rec.Name))
	res.Outcome = cmdpb.EventLogDeleteOutcome_EVENT_LOG_DELETE_OUTCOME_DELETED
	return res, nil
}

// setRetention replaces a stream's retention (truncate_before only rises,
// capped at next_version) and schedules the work it makes due. It may
// create the record of a stream without events.
func (s *store) setRetention(r *cmdpb.EventLogSetRetention) (*cmdpb.EventLogSetRetentionResult, error) {
	if err := ValidateRetention(r); err != nil {
		return nil, sm.Reject(sm.RejectInvalidArgument, "%v", err)
	}
	rec, err := s.stream(r.Stream)
	if err != nil {
		return nil, err
	}
	if rec != nil && rec.Deleted {
		return nil, sm.Reject(sm.RejectFailedPrecondition, "stream %q is deleted", rec.Name)
	}
	if rec == nil {
		rec = &cmdpb.EventLogStream{Name: r.Stream, CreatedAt: s.env.Now}
	}
	rec.MaxCount, rec.MaxAge = r.MaxCount, r.MaxAge
	rec.TruncateBefore = max(rec.TruncateBefore, min(r.TruncateBefore, rec.NextVersion))
	if rec.FirstVersion < rec.NextVersion {
		if err := s.schedule(rec, s.env.Now); err != nil {
			return nil, err
		}
	}
	if err := s.saveStream(rec); err != nil {
		return nil, err
	}
	return &cmdpb.EventLogSetRetentionResult{Stream: rec}, nil
}

// commitCursor sets a cursor.
func (s *store) commitCursor(c *cmdpb.EventLogCommitCursor) (*cmdpb.EventLogCommitCursorResult, error) {
	if err := ValidateName(c.Name); err != nil {
		return nil, sm.Reject(sm.RejectInvalidArgument, "cursor name: %v", err)
	}
	cur := &cmdpb.EventLogCursor{Name: c.Name, Position: c.Position, UpdatedAt: s.env.Now}
	if err := s.put(bucketCursors, []byte(c.Name), cur); err != nil {
		return nil, err
	}
	return &cmdpb.EventLogCommitCursorResult{Cursor: cur}, nil
}
