package locks

import "strconv"

// LeaseTopic returns the notification topic that the changes of lock name
// concerning one lease wake: its grant, its leaving the queue, the end of
// its grant. A caller waiting in the queue watches it instead of Topic, so
// a handoff wakes the one waiter it grants rather than every waiter.
func LeaseTopic(name string, lease uint64) string {
	return topic(name) + "\x00" + strconv.FormatUint(lease, 10)
}
