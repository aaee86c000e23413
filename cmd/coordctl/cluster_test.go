package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	coordv1 "coord/api/coord/v1"
	"coord/client/clienttest"
)

// tableRows splits table output into rows of fields.
func tableRows(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		rows = append(rows, strings.Fields(line))
	}
	return rows
}

func TestClusterStatusTable(t *testing.T) {
	fc := clienttest.Start(t, 3)
	r := mustSucceed(t, runOn(t, fc, "cluster", "status"))
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("status printed %d lines, want header + 3:\n%s", len(lines), r.stdout)
	}
	header := strings.Join(strings.Fields(lines[0]), " ")
	if header != "ID ROLE TERM COMMIT APPLIED LAST CONTACT READY HEALTHY GRPC ADDR" {
		t.Fatalf("header %q", header)
	}
	leader := strings.Fields(lines[1])
	want := []string{"n1", "leader", "1", "0", "0", "-", "yes", "yes", fc.Nodes[0].Addr}
	if strings.Join(leader, " ") != strings.Join(want, " ") {
		t.Fatalf("leader row %q, want %q", leader, want)
	}
	if f := strings.Fields(lines[2]); f[0] != "n2" || f[1] != "follower" {
		t.Fatalf("follower row %q", f)
	}
}

func TestClusterStatusJSON(t *testing.T) {
	fc := clienttest.Start(t, 3)
	fc.Nodes[2].Stop()
	r := mustSucceed(t, runOn(t, fc, "-o", "json", "cluster", "status"))
	var got map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("invalid JSON %q: %v", r.stdout, err)
	}
	if got["cluster_id"] != clienttest.ClusterID || got["leader_id"] != "n1" {
		t.Fatalf("status JSON %v", got)
	}
	members := got["members"].([]any)
	leader := members[0].(map[string]any)
	// Unpopulated fields are present, with proto names.
	for _, field := range []string{"id", "raft_address", "grpc_address", "http_address", "role", "term",
		"commit_index", "applied_index", "last_log_index", "last_contact", "leader_id", "ready",
		"healthy", "error", "cluster_id", "last_snapshot_index", "version", "state_time"} {
		if _, ok := leader[field]; !ok {
			t.Errorf("member JSON lacks %q", field)
		}
	}
	if leader["role"] != "ROLE_LEADER" || leader["term"] != "1" || leader["last_contact"] != nil || leader["error"] != "" {
		t.Errorf("leader JSON %v", leader)
	}
	if down := members[2].(map[string]any); down["role"] != "ROLE_UNREACHABLE" || down["healthy"] != false {
		t.Errorf("stopped member JSON %v", down)
	}
}

func TestClusterMembers(t *testing.T) {
	fc := clienttest.Start(t, 3)
	r := mustSucceed(t, runOn(t, fc, "cluster", "members"))
	rows := tableRows(r.stdout)
	if len(rows) != 4 || rows[1][0] != "n1" || rows[1][2] != "yes" || rows[2][2] != "no" || rows[3][4] != fc.Nodes[2].Addr {
		t.Fatalf("members table:\n%s", r.stdout)
	}
	r = mustSucceed(t, runOn(t, fc, "-o", "json", "cluster", "members"))
	var got coordv1JSONMembers
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || len(got.Members) != 3 || got.Members[1].GrpcAddress != fc.Nodes[1].Addr {
		t.Fatalf("members -o json %q: %v", r.stdout, err)
	}
}

// coordv1JSONMembers decodes ListMembersResponse JSON.
type coordv1JSONMembers struct {
	LeaderID string `json:"leader_id"`
	Members  []struct {
		ID          string `json:"id"`
		GrpcAddress string `json:"grpc_address"`
		Voter       bool   `json:"voter"`
	} `json:"members"`
}

func TestClusterMembershipCommands(t *testing.T) {
	fc := clienttest.Start(t, 3)
	r := mustSucceed(t, runOn(t, fc, "cluster", "add-voter", "n4", "127.0.0.1:17004"))
	if r.stdout != "added voter n4 at 127.0.0.1:17004; 4 members\n" {
		t.Fatalf("add-voter printed %q", r.stdout)
	}
	r = mustSucceed(t, runOn(t, fc, "cluster", "remove", "n4"))
	if r.stdout != "removed member n4; 3 members\n" {
		t.Fatalf("remove printed %q", r.stdout)
	}
	if msg := mustFail(t, runOn(t, fc, "cluster", "remove", "n9"), exitError); !strings.Contains(msg, "NotFound") {
		t.Fatalf("remove of unknown member: %q", msg)
	}
	r = mustSucceed(t, runOn(t, fc, "-o", "json", "cluster", "transfer-leader", "n3"))
	if r.stdout != "{\n  \"leader_id\": \"n3\"\n}\n" {
		t.Fatalf("transfer-leader -o json printed %q", r.stdout)
	}
	if fc.Leader() != "n3" {
		t.Fatalf("leader %q after transfer, want n3", fc.Leader())
	}
	r = mustSucceed(t, runOn(t, fc, "cluster", "transfer-leader"))
	if r.stdout != "leader is now n1\n" {
		t.Fatalf("transfer-leader printed %q", r.stdout)
	}
}

func TestClusterSnapshot(t *testing.T) {
	fc := clienttest.Start(t, 3)
	r := mustSucceed(t, runOn(t, fc, "cluster", "snapshot", "--node", "n2"))
	rows := tableRows(r.stdout)
	if len(rows) != 2 || rows[1][0] != "n2" || rows[1][1] != "n2-0" {
		t.Fatalf("snapshot table:\n%s", r.stdout)
	}
	r = mustSucceed(t, runOn(t, fc, "cluster", "snapshot"))
	if rows := tableRows(r.stdout); rows[1][0] != "n1" {
		t.Fatalf("snapshot of the leader:\n%s", r.stdout)
	}
	calls := fc.Calls("TakeSnapshot")
	if len(calls) != 2 || calls[0].Node != "n2" || calls[1].Node != "n1" {
		t.Fatalf("TakeSnapshot calls %+v", calls)
	}
}

func TestClusterHash(t *testing.T) {
	fc := clienttest.Start(t, 3)
	mustSucceed(t, runOn(t, fc, "kv", "put", "k", "v"))
	r := mustSucceed(t, runOn(t, fc, "cluster", "hash"))
	rows := tableRows(r.stdout)
	if len(rows) != 4 || strings.Join(rows[0], " ") != "NODE APPLIED SHA256" {
		t.Fatalf("hash table:\n%s", r.stdout)
	}
	for i, row := range rows[1:] {
		if row[0] != fc.Nodes[i].ID || row[1] != "1" || row[2] != rows[1][2] || len(row[2]) != 64 {
			t.Fatalf("hash row %q", row)
		}
	}
	r = mustSucceed(t, runOn(t, fc, "-o", "json", "cluster", "hash", "--node", "n2"))
	var got struct {
		Hashes []nodeHash `json:"hashes"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || len(got.Hashes) != 1 {
		t.Fatalf("hash -o json %q: %v", r.stdout, err)
	}
	if h := got.Hashes[0]; h.ID != "n2" || h.AppliedIndex != 1 || h.SHA256 != rows[1][2] || h.Error != "" {
		t.Fatalf("hash JSON %+v", h)
	}
	if !strings.Contains(r.stdout, `"applied_index": "1"`) {
		t.Fatalf("applied_index not a decimal string: %s", r.stdout)
	}
	if msg := mustFail(t, runOn(t, fc, "cluster", "hash", "--node", "n9"), exitError); msg != `cluster hash: no member "n9"` {
		t.Fatalf("hash of unknown member: %q", msg)
	}
}

func TestClusterHashReportsSilentMember(t *testing.T) {
	fc := clienttest.Start(t, 3)
	fc.Nodes[2].Stop()
	r := runOn(t, fc, "--timeout", "500ms", "cluster", "hash")
	msg := mustFail(t, r, exitError)
	if !strings.HasPrefix(msg, "cluster hash: 1 of 3 members did not answer (n3: ") {
		t.Fatalf("message %q", msg)
	}
	rows := tableRows(r.stdout)
	if len(rows) != 4 || rows[3][0] != "n3" || rows[3][2] != "error:" || rows[1][1] != "0" {
		t.Fatalf("hash table with a silent member:\n%s", r.stdout)
	}
}

func TestStatusFormatting(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if got := sinceText(timestamppb.New(now.Add(-1500*time.Microsecond)), now); got != "2ms" {
		t.Errorf("sinceText = %q", got)
	}
	if got := sinceText(timestamppb.New(now.Add(time.Second)), now); got != "0s" {
		t.Errorf("sinceText of a future instant = %q", got)
	}
	if got := sinceText(nil, now); got != "-" {
		t.Errorf("sinceText(nil) = %q", got)
	}
	if got := roleName(coordv1.Role_ROLE_CANDIDATE); got != "candidate" {
		t.Errorf("roleName = %q", got)
	}
}
