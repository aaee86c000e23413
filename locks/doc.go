// Package locks is coord's lock machine: leases, fencing-token locks with
// fair wait queues, semaphores, lock-delay and max-hold.
//
// Leases. A lease is granted for a TTL and kept alive by its holder; one
// keep-alive renews every lock held under the lease. A lease that is not
// renewed expires in state-machine time (never by a node's wall clock), and
// everything held or awaited under it is let go.
//
// Grants and tokens. Every grant carries a fencing token: the Raft index of
// the entry that granted it, or one more than the previous token when a
// single entry grants several. Tokens strictly increase across all locks,
// leader changes, restarts and snapshot restores, because they are derived
// from the replicated log and the last token is part of the replicated state.
//
// What a holder may assume. While its lease is alive (and its max-hold, if
// any, has not passed) a holder is one of at most `limit` holders of the
// lock. It must treat the lock as lost before the lease's nominal end (TTL
// minus round trip minus a margin for clock rate), and should pass its token
// to every resource it touches: a resource (or a fenced coord command) that
// refuses tokens older than the newest it has seen makes a stale holder
// harmless even if it has not noticed its loss.
//
// Queues. Acquire may wait: waiters queue in FIFO order in the replicated
// state. When a holder releases or expires, the next waiters are granted in
// the same entry, and servers wake waiting callers through change
// notifications, without polling. A waiter leaves the queue when its wait
// deadline passes, its lease ends, or it abandons the wait.
//
// Lock-delay. After a holder's lease expires (not after a clean release) the
// lock grants nobody for the lock's lock-delay, giving a stalled holder time
// to notice it has lost the lock.
//
// Semaphores. A lock admits `limit` holders, fixed by the first acquire while
// the lock has holders or waiters; each holder has its own token.
//
// Time. All deadlines are state-machine time (leader-stamped, never
// decreasing). Expired leases and holders count as absent as soon as their
// time has passed (lazy expiry); Tick applies the consequences (releases,
// grants to waiters, lock-delay ends, garbage collection) in time order.
package locks
