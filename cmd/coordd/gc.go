package main

import (
	"os"
	"runtime/debug"
)

// defaultGCPercent is the garbage-collector target coordd runs with unless
// GOGC is set. coordd's live heap is small (the state lives in bbolt's
// memory map, outside the Go heap) while every request allocates, so Go's
// default of 100 runs the collector very often under load; 400 spends a
// few tens of megabytes of heap to save that CPU (see docs/PERFORMANCE.md).
const defaultGCPercent = 400

// tuneGC applies defaultGCPercent unless the GOGC environment variable
// says otherwise.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
}

// streamWorkers is the number of goroutines that serve gRPC requests and
// are reused from one request to the next (grpc.NumStreamWorkers). A
// request handler's stack grows past the initial size of a new goroutine
// on every request (the profile showed 7% of the leader's CPU in stack
// copying); a reused worker keeps its grown stack. Requests beyond this
// many at once get goroutines of their own, as without workers.
const streamWorkers = 256
