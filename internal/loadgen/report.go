package loadgen

import (
	"fmt"
	"time"
)

// Report is the machine-readable account of one run (`coordctl bench -o
// json` prints it).
type Report struct {
	Workload  string            `json:"workload"`
	Params    map[string]any    `json:"params,omitempty"`
	Clients   int               `json:"clients"`
	Conns     int               `json:"conns"`
	Rate      float64           `json:"rate"`
	Duration  float64           `json:"duration_s"`
	Warmup    float64           `json:"warmup_s"`
	Ops       uint64            `json:"ops"`
	OpsPerSec float64           `json:"ops_per_sec"`
	Errors    map[string]uint64 `json:"errors"`
	// ErrorSamples holds one error message per code.
	ErrorSamples map[string]string `json:"error_samples,omitempty"`
	LatencyMS    LatencyMS         `json:"latency_ms"`
	Extra        map[string]any    `json:"extra,omitempty"`
}

// LatencyMS is a Latency in milliseconds.
type LatencyMS struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

// MS converts l to milliseconds.
func (l Latency) MS() LatencyMS {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return LatencyMS{Mean: ms(l.Mean), P50: ms(l.P50), P90: ms(l.P90), P99: ms(l.P99), P999: ms(l.P999), Max: ms(l.Max)}
}

// NewReport builds the report of a run.
func NewReport(workload string, params map[string]any, cfg Config, conns int, res Result, extra map[string]any) Report {
	errs := res.Errors
	if errs == nil {
		errs = map[string]uint64{}
	}
	return Report{
		Workload: workload, Params: params,
		Clients: cfg.Clients, Conns: conns, Rate: cfg.Rate,
		Duration: cfg.Duration.Seconds(), Warmup: cfg.Warmup.Seconds(),
		Ops: res.Ops, OpsPerSec: res.OpsPerSec, Errors: errs, ErrorSamples: res.ErrorSamples,
		LatencyMS: res.Latency.MS(), Extra: extra,
	}
}

// FormatMS renders milliseconds with three significant digits or so.
func FormatMS(ms float64) string {
	switch {
	case ms >= 100:
		return fmt.Sprintf("%.0fms", ms)
	case ms >= 10:
		return fmt.Sprintf("%.1fms", ms)
	default:
		return fmt.Sprintf("%.2fms", ms)
	}
}
