package chaos

import (
	"fmt"
	"path/filepath"
	"strings"
)

// MatrixRow is one line of the detection matrix: a build and whether the
// suite caught its bug.
type MatrixRow struct {
	Tag          string             `json:"tag"`
	What         string             `json:"what"`
	Caught       bool               `json:"caught"`
	Runs         int                `json:"runs"`
	Anomalies    int                `json:"anomalies"`
	Kinds        []string           `json:"kinds,omitempty"`
	FirstAnomaly string             `json:"first_anomaly,omitempty"`
	Ops          map[string]opStats `json:"ops,omitempty"`
	Replay       string             `json:"replay"`
}

// WriteMatrix writes matrix.json and matrix.md into dir.
func WriteMatrix(dir string, rows []MatrixRow) error {
	if err := writeJSON(filepath.Join(dir, "matrix.json"), rows); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("| build tag | seeded bug | caught | runs | anomaly kinds | replay |\n|---|---|---|---|---|---|\n")
	for _, r := range rows {
		caught := "no"
		if r.Caught {
			caught = "yes"
		}
		kinds := strings.Join(r.Kinds, ", ")
		if kinds == "" {
			kinds = "-"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %d | %s | `%s` |\n", r.Tag, r.What, caught, r.Runs, kinds, r.Replay)
	}
	return writeFile(filepath.Join(dir, "matrix.md"), b.String())
}
