package main

import (
	"fmt"
	"sort"
	"strings"

	"coord/internal/loadgen"
)

// printBench prints a bench report as a table or JSON.
func (a *app) printBench(rep loadgen.Report) error {
	p := a.out()
	if p.json {
		return p.value(rep)
	}
	loop := "closed loop"
	if rep.Rate > 0 {
		loop = fmt.Sprintf("open loop at %g ops/s", rep.Rate)
	}
	rows := [][]string{
		{"workload", rep.Workload + paramText(rep.Params)},
		{"clients", fmt.Sprintf("%d on %d client instance(s), %s", rep.Clients, rep.Conns, loop)},
		{"duration", fmt.Sprintf("%gs after %gs of warm-up", rep.Duration, rep.Warmup)},
		{"ops", fmt.Sprintf("%d", rep.Ops)},
		{"ops/s", fmt.Sprintf("%.1f", rep.OpsPerSec)},
		{"latency", latencyText(rep.LatencyMS)},
		{"errors", errorText(rep.Errors)},
	}
	for _, code := range loadgen.SortedCodes(rep.Errors) {
		if msg := rep.ErrorSamples[code]; msg != "" {
			rows = append(rows, []string{"first " + code, oneLine(truncate(msg, 200))})
		}
	}
	for _, k := range sortedKeys(rep.Extra) {
		v := fmt.Sprint(rep.Extra[k])
		if l, ok := rep.Extra[k].(loadgen.LatencyMS); ok {
			k, v = strings.TrimSuffix(k, "_ms"), latencyText(l)
		}
		rows = append(rows, []string{strings.ReplaceAll(k, "_", " "), v})
	}
	return p.table([]string{"FIGURE", "VALUE"}, rows)
}

func paramText(params map[string]any) string {
	if len(params) == 0 {
		return ""
	}
	var parts []string
	for _, k := range sortedKeys(params) {
		parts = append(parts, fmt.Sprintf("%s=%v", k, params[k]))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func errorText(errs map[string]uint64) string {
	if len(errs) == 0 {
		return "0"
	}
	var parts []string
	for _, code := range loadgen.SortedCodes(errs) {
		parts = append(parts, fmt.Sprintf("%s=%d", code, errs[code]))
	}
	return strings.Join(parts, " ")
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// truncate shortens s to at most n bytes, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// latencyText renders a latency summary on one line.
func latencyText(l loadgen.LatencyMS) string {
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (mean %s)",
		loadgen.FormatMS(l.P50), loadgen.FormatMS(l.P90), loadgen.FormatMS(l.P99),
		loadgen.FormatMS(l.P999), loadgen.FormatMS(l.Max), loadgen.FormatMS(l.Mean))
}
