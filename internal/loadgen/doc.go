// Package loadgen drives benchmark workloads and measures them: a fixed
// number of workers run an operation in a closed loop (each starts its next
// operation when the previous one ends) or in an open loop (operations are
// scheduled at a fixed total rate, and latency is measured from the
// scheduled start, so that a stalled server is charged for the operations it
// delayed), after a warm-up whose operations are not counted.
//
// Latencies go into a log-linear histogram with a relative error below 1%
// (the HDR-histogram layout), so percentiles up to p99.9 and the maximum are
// exact to that precision at any run length and in constant memory.
//
// The workloads for coord live in this package too (Put, linearizable or
// stale Get, lock acquire and release on distinct locks, and one contended
// lock with FIFO checking of its grants); `coordctl bench` and the etcd
// comparison in bench/ run them through the same Runner, so both sides of a
// comparison are measured identically.
package loadgen
