package locks

import (
	"fmt"
	"strings"
	"time"
)

// Limits, enforced at the API edge and again when applied.
const (
	// MaxNameLen is the longest lock name in bytes.
	MaxNameLen = 256
	// MaxOwnerLen is the longest owner string in bytes.
	MaxOwnerLen = 256
	// MinTTL and MaxTTL bound a lease's TTL.
	MinTTL = time.Second
	MaxTTL = 24 * time.Hour
	// MaxWait bounds how long an acquire may queue.
	MaxWait = 24 * time.Hour
	// MaxLockDelay bounds a lock's lock-delay.
	MaxLockDelay = time.Minute
	// MinMaxHold and MaxMaxHold bound a lock's max-hold.
	MinMaxHold = time.Second
	MaxMaxHold = 7 * 24 * time.Hour
	// MaxLimit bounds a semaphore's holders.
	MaxLimit = 10000
	// MaxWaiters bounds one lock's queue.
	MaxWaiters = 100000
	// MaxKeepAlive bounds the leases renewed by one keep-alive.
	MaxKeepAlive = 1000
	// IdleRetention is how long an idle lock's record and recent events are
	// kept for watchers before being collected.
	IdleRetention = 10 * time.Minute
	// EventsPerLock is how many recent events a lock keeps at least; it
	// keeps at most twice as many (see trimEvents).
	EventsPerLock = 64
)

// ValidateName reports what is wrong with a lock name, or nil. Names are
// path-like: 1 to MaxNameLen bytes of letters, digits and "/-_.:@", not
// starting or ending with "/" and without empty segments.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("lock name is empty")
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("lock name is %d bytes; the limit is %d", len(name), MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("/-_.:@", c) >= 0
		if !ok {
			return fmt.Errorf("lock name %q has %q at offset %d; use letters, digits and /-_.:@", name, c, i)
		}
	}
	if name[0] == '/' || name[len(name)-1] == '/' || strings.Contains(name, "//") {
		return fmt.Errorf("lock name %q has an empty path segment", name)
	}
	return nil
}

// ValidateOwner reports what is wrong with an owner string, or nil.
func ValidateOwner(owner string) error {
	if len(owner) > MaxOwnerLen {
		return fmt.Errorf("owner is %d bytes; the limit is %d", len(owner), MaxOwnerLen)
	}
	for i := 0; i < len(owner); i++ {
		if owner[i] < ' ' || owner[i] == 0x7f {
			return fmt.Errorf("owner has a control character at offset %d", i)
		}
	}
	return nil
}

// within reports an error when d is outside [lo, hi].
func within(field string, d, lo, hi time.Duration) error {
	if d < lo || d > hi {
		return fmt.Errorf("%s %v is outside [%v, %v]", field, d, lo, hi)
	}
	return nil
}
