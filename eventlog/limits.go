package eventlog

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"coord/internal/cmdpb"
)

// Limits, enforced at the API edge and again when applied. They are part of
// the replicated behaviour: every replica must use the same values.
const (
	// MaxNameLen is the longest stream or cursor name in bytes.
	MaxNameLen = 200
	// MaxEventIDLen is the longest event id in bytes.
	MaxEventIDLen = 128
	// MaxEventTypeLen is the longest event type in bytes.
	MaxEventTypeLen = 128
	// MaxDataBytes is the largest event payload.
	MaxDataBytes = 512 << 10
	// MaxMetadataEntries bounds the metadata entries of one event.
	MaxMetadataEntries = 32
	// MaxMetadataKeyLen is the longest metadata key in bytes.
	MaxMetadataKeyLen = 128
	// MaxMetadataBytes bounds the metadata keys plus values of one event.
	MaxMetadataBytes = 8 << 10
	// MaxEventsPerAppend bounds the events of one append.
	MaxEventsPerAppend = 1000
	// MaxAppendBytes bounds the ids, types, payloads and metadata of one
	// append, well under node.MaxCommandBytes.
	MaxAppendBytes = 1 << 20
	// DefaultReadLimit is the number of events a read returns when its limit
	// is 0.
	DefaultReadLimit = 100
	// MaxReadLimit bounds the events one read returns.
	MaxReadLimit = 1000
	// MaxReadBytes bounds the encoded events of one read response (a read
	// returns at least one event, whatever its size).
	MaxReadBytes = 2 << 20
	// MaxScan bounds the positions one filtered read of all streams scans.
	MaxScan = 10000
	// MinMaxAge and MaxMaxAge bound a stream's max_age retention.
	MinMaxAge = time.Second
	MaxMaxAge = 100 * 365 * 24 * time.Hour
)

// ValidateName reports what is wrong with a stream or cursor name, or nil.
// Names are 1 to MaxNameLen bytes of letters, digits and "-_.:/@" that start
// with a letter or digit.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("name is empty")
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("name is %d bytes; the limit is %d", len(name), MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !alnum(c) && (i == 0 || strings.IndexByte("-_.:/@", c) < 0) {
			return fmt.Errorf("name %q has %q at offset %d; use letters, digits and -_.:/@, starting with a letter or digit", name, c, i)
		}
	}
	return nil
}

// ValidatePrefix reports what is wrong with a stream-name prefix, or nil. An
// empty prefix matches every name.
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	return ValidateName(prefix)
}

func alnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// token checks a field of 1 to max bytes of printable ASCII without spaces.
func token(field, s string, limit int) error {
	if s == "" {
		return fmt.Errorf("%s is empty", field)
	}
	if len(s) > limit {
		return fmt.Errorf("%s is %d bytes; the limit is %d", field, len(s), limit)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("%s has byte 0x%02x at offset %d; use printable ASCII without spaces", field, c, i)
		}
	}
	return nil
}

// ValidateEventType reports what is wrong with an event type, or nil.
func ValidateEventType(t string) error { return token("type", t, MaxEventTypeLen) }

// eventSize is what an event counts against MaxAppendBytes.
func eventSize(ev *cmdpb.EventLogNewEvent) int {
	n := len(ev.Id) + len(ev.Type) + len(ev.Data)
	for k, v := range ev.Metadata {
		n += len(k) + len(v)
	}
	return n
}

// ValidateEvent reports what is wrong with one event, or nil.
func ValidateEvent(ev *cmdpb.EventLogNewEvent) error {
	if err := token("id", ev.Id, MaxEventIDLen); err != nil {
		return err
	}
	if err := ValidateEventType(ev.Type); err != nil {
		return err
	}
	if len(ev.Data) > MaxDataBytes {
		return fmt.Errorf("data is %d bytes; the limit is %d", len(ev.Data), MaxDataBytes)
	}
	if len(ev.Metadata) > MaxMetadataEntries {
		return fmt.Errorf("metadata has %d entries; the limit is %d", len(ev.Metadata), MaxMetadataEntries)
	}
	if len(ev.Metadata) == 0 {
		return nil
	}
	// Keys in order: a replica reports the same invalid key as every other.
	size := 0
	for _, k := range slices.Sorted(maps.Keys(ev.Metadata)) {
		if err := token("metadata key", k, MaxMetadataKeyLen); err != nil {
			return err
		}
		size += len(k) + len(ev.Metadata[k])
	}
	if size > MaxMetadataBytes {
		return fmt.Errorf("metadata is %d bytes; the limit is %d", size, MaxMetadataBytes)
	}
	return nil
}

// ValidateAppend reports what is wrong with an append, or nil.
func ValidateAppend(a *cmdpb.EventLogAppend) error {
	if err := ValidateName(a.Stream); err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	if err := validateExpected(a.Expected); err != nil {
		return err
	}
	if len(a.Events) == 0 || len(a.Events) > MaxEventsPerAppend {
		return fmt.Errorf("events: give 1 to %d events, not %d", MaxEventsPerAppend, len(a.Events))
	}
	total := 0
	var seen map[string]int // event index by id; not needed for one event
	if len(a.Events) > 1 {
		seen = make(map[string]int, len(a.Events))
	}
	for i, ev := range a.Events {
		if err := ValidateEvent(ev); err != nil {
			return fmt.Errorf("events[%d]: %w", i, err)
		}
		if j, dup := seen[ev.Id]; dup {
			return fmt.Errorf("events[%d]: id %q repeats events[%d]'s; ids are unique within an append", i, ev.Id, j)
		}
		if seen != nil {
			seen[ev.Id] = i
		}
		total += eventSize(ev)
	}
	if total > MaxAppendBytes {
		return fmt.Errorf("events: %d bytes of ids, types, data and metadata; the limit per append is %d", total, MaxAppendBytes)
	}
	return nil
}

func validateExpected(e cmdpb.EventLogExpected) error {
	if e < cmdpb.EventLogExpected_EVENT_LOG_EXPECTED_UNSPECIFIED || e > cmdpb.EventLogExpected_EVENT_LOG_EXPECTED_VERSION {
		return fmt.Errorf("expected: unknown kind %d", e)
	}
	return nil
}

// ValidateRetention reports what is wrong with a retention setting, or nil.
func ValidateRetention(r *cmdpb.EventLogSetRetention) error {
	if err := ValidateName(r.Stream); err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	if r.MaxAge != 0 && (r.MaxAge < int64(MinMaxAge) || r.MaxAge > int64(MaxMaxAge)) {
		return fmt.Errorf("max_age %v is outside [%v, %v]", time.Duration(r.MaxAge), MinMaxAge, MaxMaxAge)
	}
	return nil
}

// ClampLimit turns a requested read limit into the number of events to
// return: 0 means DefaultReadLimit. It reports an error above MaxReadLimit.
func ClampLimit(limit uint32) (int, error) {
	if limit == 0 {
		return DefaultReadLimit, nil
	}
	if limit > MaxReadLimit {
		return 0, fmt.Errorf("limit %d is above the maximum of %d", limit, MaxReadLimit)
	}
	return int(limit), nil
}
