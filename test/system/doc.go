// Package systemtest holds the system tests: they build coordd and coordctl,
// run a real cluster of coordd processes through scripts/cluster.sh (the way a
// person would), kill, restart and stop nodes, and check the cluster through
// coordctl.
//
// The tests need bash. Each cluster gets its own temporary directory and a
// block of free loopback ports between 20000 and 29999.
package systemtest
