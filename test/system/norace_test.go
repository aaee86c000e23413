//go:build !race

package systemtest

// raceEnabled reports whether the test binary, and so the coordd and coordctl
// it builds, use the race detector.
const raceEnabled = false
