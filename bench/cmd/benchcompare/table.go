package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"coord/internal/loadgen"
)

// columns of the comparison table.
var columns = []string{"workload", "clients", "etcd ops/s", "coord ops/s", "coord/etcd ops", "etcd p50", "coord p50", "etcd p99", "coord p99", "coord/etcd p99", "errors e/c"}

// cells renders a row; ratio columns are coord divided by etcd (ops: higher
// is better for coord; p99: lower is).
func (r row) cells() []string {
	e, c := r.etcd, r.coord
	return []string{
		r.spec.title, fmt.Sprint(r.spec.clients),
		fmt.Sprintf("%.0f", e.OpsPerSec), fmt.Sprintf("%.0f", c.OpsPerSec), ratio(c.OpsPerSec, e.OpsPerSec),
		loadgen.FormatMS(e.LatencyMS.P50), loadgen.FormatMS(c.LatencyMS.P50),
		loadgen.FormatMS(e.LatencyMS.P99), loadgen.FormatMS(c.LatencyMS.P99), ratio(c.LatencyMS.P99, e.LatencyMS.P99),
		fmt.Sprintf("%d/%d", errCount(e), errCount(c)),
	}
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func errCount(r loadgen.Report) uint64 {
	var n uint64
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// textTable renders the rows for a terminal, with the FIFO checks below.
func textTable(rows []row) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(columns, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r.cells(), "\t"))
	}
	_ = tw.Flush()
	b.WriteString(notes(rows))
	return b.String()
}

// markdownTable renders the rows as a Markdown table.
func markdownTable(rows []row) string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(columns, " | ") + " |\n")
	b.WriteString("|" + strings.Repeat("---|", len(columns)) + "\n")
	for _, r := range rows {
		b.WriteString("| " + strings.Join(r.cells(), " | ") + " |\n")
	}
	b.WriteString(notes(rows))
	return b.String()
}

// notes reports the FIFO check of contended rows and any errors.
func notes(rows []row) string {
	var b strings.Builder
	for _, r := range rows {
		if x := r.coord.Extra; x != nil && x["fifo_grants_checked"] != nil {
			fmt.Fprintf(&b, "\ncoord FIFO check (%s, %d waiters): %v grants checked, %v out of order, %v watch resyncs.\n",
				r.spec.title, r.spec.clients, x["fifo_grants_checked"], x["fifo_violations"], x["watch_resyncs"])
		}
		for _, side := range []struct {
			name string
			rep  loadgen.Report
		}{{"etcd", r.etcd}, {"coord", r.coord}} {
			name, rep := side.name, side.rep
			if len(rep.Errors) > 0 {
				fmt.Fprintf(&b, "\n%s errors (%s, %d clients): %v; first of each: %q\n", name, r.spec.title, r.spec.clients, rep.Errors, rep.ErrorSamples)
			}
		}
	}
	return b.String()
}
