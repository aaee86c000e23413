package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	coordv1 "coord/api/coord/v1"
)

// jsonOptions renders API messages: .proto field names, every field
// present.
var jsonOptions = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}

// printer writes command output as a table or as JSON.
type printer struct {
	w    io.Writer
	json bool
}

// message prints m as JSON. protojson's spacing is deliberately unstable,
// so the output is re-indented into a fixed layout.
func (p printer) message(m proto.Message) error {
	raw, err := jsonOptions.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode %s: %w", m.ProtoReflect().Descriptor().Name(), err)
	}
	return p.rawJSON(raw)
}

// value prints v (a struct with json tags) as JSON in the same layout.
func (p printer) value(v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return p.rawJSON(raw)
}

func (p printer) rawJSON(raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := p.w.Write(buf.Bytes())
	return err
}

// table prints a header and rows in aligned columns.
func (p printer) table(header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(p.w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, row := range rows {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// line prints one line of text.
func (p printer) line(format string, args ...any) error {
	_, err := fmt.Fprintf(p.w, format+"\n", args...)
	return err
}

// statusRows renders GetStatusResponse members for the status table.
func statusRows(st *coordv1.GetStatusResponse, now time.Time) [][]string {
	rows := make([][]string, 0, len(st.GetMembers()))
	for _, m := range st.GetMembers() {
		rows = append(rows, []string{
			m.GetId(),
			roleName(m.GetRole()),
			fmt.Sprint(m.GetTerm()),
			fmt.Sprint(m.GetCommitIndex()),
			fmt.Sprint(m.GetAppliedIndex()),
			sinceText(m.GetLastContact(), now),
			yesNo(m.GetReady()),
			yesNo(m.GetHealthy()),
			dash(m.GetGrpcAddress()),
		})
	}
	return rows
}

// statusHeader is the status table's header.
var statusHeader = []string{"ID", "ROLE", "TERM", "COMMIT", "APPLIED", "LAST CONTACT", "READY", "HEALTHY", "GRPC ADDR"}

// memberRows renders members for the members table.
func memberRows(ms []*coordv1.Member) [][]string {
	rows := make([][]string, 0, len(ms))
	for _, m := range ms {
		rows = append(rows, []string{
			m.GetId(), yesNo(m.GetVoter()), yesNo(m.GetLeader()),
			dash(m.GetRaftAddress()), dash(m.GetGrpcAddress()), dash(m.GetHttpAddress()),
		})
	}
	return rows
}

// memberHeader is the members table's header.
var memberHeader = []string{"ID", "VOTER", "LEADER", "RAFT ADDR", "GRPC ADDR", "HTTP ADDR"}

// roleName turns ROLE_LEADER into "leader".
func roleName(r coordv1.Role) string {
	if r == coordv1.Role_ROLE_UNSPECIFIED {
		return "-"
	}
	return strings.ToLower(strings.TrimPrefix(r.String(), "ROLE_"))
}

// sinceText renders how long ago ts was, or "-" when unset.
func sinceText(ts *timestamppb.Timestamp, now time.Time) string {
	if ts == nil {
		return "-"
	}
	d := max(now.Sub(ts.AsTime()), 0)
	return d.Round(time.Millisecond).String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
