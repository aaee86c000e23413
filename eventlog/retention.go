package eventlog

import (
	"fmt"

	"coord/internal/cmdpb"
	"coord/internal/sm"
)

// keptFrom returns the lowest version that deletion, truncate_before and
// max_count keep (max_age aside), never below first_version. Every version
// below it is removed as far as readers are concerned, stored or not.
func keptFrom(rec *cmdpb.EventLogStream) uint64 {
	if rec.Deleted {
		return rec.NextVersion
	}
	from := max(rec.FirstVersion, min(rec.TruncateBefore, rec.NextVersion))
	if rec.MaxCount > 0 && rec.NextVersion > rec.MaxCount {
		from = max(from, rec.NextVersion-rec.MaxCount)
	}
	return from
}

// expired reports whether max_age has removed an event of rec at now.
// Event times never decrease along a stream, so expired events are a prefix
// of it.
func expired(rec *cmdpb.EventLogStream, ev *cmdpb.EventLogEvent, now int64) bool {
	return rec.MaxAge > 0 && ev.Time+rec.MaxAge <= now
}

// visible reports whether an event of rec is readable at now.
func visible(rec *cmdpb.EventLogStream, ev *cmdpb.EventLogEvent, now int64) bool {
	return ev.Version >= keptFrom(rec) && !expired(rec, ev, now)
}

// firstVisible returns the lowest readable version of rec at now
// (rec.NextVersion when none is).
func firstVisible(tx sm.Tx, rec *cmdpb.EventLogStream, now int64) (uint64, error) {
	v := keptFrom(rec)
	if rec.MaxAge == 0 {
		return v, nil
	}
	for ; v < rec.NextVersion; v++ {
		_, ev, err := eventAt(tx, rec.Name, v)
		if err != nil {
			return 0, err
		}
		if !expired(rec, ev, now) {
			break
		}
	}
	return v, nil
}

// eventAt returns a stored version of a stream and its position.
func eventAt(tx sm.Tx, name string, version uint64) (uint64, *cmdpb.EventLogEvent, error) {
	pos, ok := positionOf(tx, name, version)
	if !ok {
		return 0, nil, fmt.Errorf("stream %q: version %d is not stored", name, version)
	}
	ev, err := loadEvent(tx, pos)
	if err == nil && ev == nil {
		err = fmt.Errorf("stream %q: version %d points at position %d, which is not stored", name, version, pos)
	}
	return pos, ev, err
}

// trimDue handles a stream's scheduled retention work: it removes up to
// budget events that retention no longer keeps, from the oldest, and
// schedules what remains: at once when the budget ran out, else when the
// oldest kept event reaches max_age. It returns the events removed.
func (s *store) trimDue(name string, budget int) (int, error) {
	rec, err := s.stream(name)
	if err != nil {
		return 0, err
	}
	if rec == nil {
		return 0, fmt.Errorf("retention scheduled for stream %q, which has no record", name)
	}
	if err := s.unschedule(rec); err != nil {
		return 0, err
	}
	used, more, err := s.trim(rec, budget)
	if err != nil {
		return used, err
	}
	if more {
		err = s.schedule(rec, s.env.Now)
	} else {
		err = s.scheduleAge(rec)
	}
	if err != nil {
		return used, err
	}
	return used, s.saveStream(rec)
}

// trim removes up to budget of rec's oldest stored events that retention
// no longer keeps, and reports whether more remain to remove.
func (s *store) trim(rec *cmdpb.EventLogStream, budget int) (int, bool, error) {
	from := keptFrom(rec)
	used := 0
	for ; rec.FirstVersion < rec.NextVersion; rec.FirstVersion++ {
		if rec.FirstVersion >= from {
			if rec.MaxAge == 0 {
				break
			}
			_, ev, err := eventAt(s.tx, rec.Name, rec.FirstVersion)
			if err != nil {
				return used, false, err
			}
			if !expired(rec, ev, s.env.Now) {
				break
			}
		}
		if used == budget {
			return used, true, nil
		}
		if err := s.removeVersion(rec.Name, rec.FirstVersion); err != nil {
			return used, false, err
		}
		used++
	}
	return used, false, nil
}

// scheduleAge schedules the removal of rec's oldest stored event when it
// reaches max_age.
func (s *store) scheduleAge(rec *cmdpb.EventLogStream) error {
	if rec.Deleted || rec.MaxAge == 0 || rec.FirstVersion >= rec.NextVersion {
		return nil
	}
	_, ev, err := eventAt(s.tx, rec.Name, rec.FirstVersion)
	if err != nil {
		return err
	}
	return s.schedule(rec, ev.Time+rec.MaxAge)
}
