package main

import (
	"io"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestOptionsRefuseBadInputNamingTheFlag(t *testing.T) {
	base := []string{"--id", "n1", "--data-dir", t.TempDir()}
	cases := map[string]struct {
		args []string
		env  map[string]string
		flag string
	}{
		"bad log level":      {args: []string{"--log-level", "loud"}, flag: "--log-level"},
		"bad log format":     {args: []string{"--log-format", "xml"}, flag: "--log-format"},
		"join and bootstrap": {args: []string{"--bootstrap", "--initial-cluster", "n1=127.0.0.1:1", "--join", "127.0.0.1:2"}, flag: "--join"},
		"zero threshold":     {args: []string{"--snapshot-threshold", "0"}, flag: "--snapshot-threshold"},
		"bad duration":       {args: []string{"--election-timeout", "soon"}, flag: "election-timeout"},
		"bad env":            {env: map[string]string{"COORD_HEARTBEAT_TIMEOUT": "fast"}, flag: "COORD_HEARTBEAT_TIMEOUT"},
		"stray argument":     {args: []string{"extra"}, flag: "extra"},
		"tiny heartbeat":     {args: []string{"--heartbeat-timeout", "1ms"}, flag: "--heartbeat-timeout"},
		"unknown flag":       {args: []string{"--nope"}, flag: "nope"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := parseOptions(append(append([]string{}, base...), tc.args...), env(tc.env), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.flag) {
				t.Fatalf("err = %v; want one naming %s", err, tc.flag)
			}
		})
	}
}

func TestNodeConfigRefusesBadAddresses(t *testing.T) {
	cases := map[string]struct {
		args []string
		flag string
	}{
		"no id":              {args: []string{"--data-dir", "d"}, flag: "id"},
		"no data dir":        {args: []string{"--id", "n1"}, flag: "data-dir"},
		"raft addr no port":  {args: []string{"--id", "n1", "--data-dir", "d", "--raft-addr", "localhost"}, flag: "raft-addr"},
		"advertise any":      {args: []string{"--id", "n1", "--data-dir", "d", "--raft-addr", "0.0.0.0:7101"}, flag: "raft-advertise"},
		"bad cluster":        {args: []string{"--id", "n1", "--data-dir", "d", "--bootstrap", "--initial-cluster", "n1"}, flag: "initial-cluster"},
		"self missing":       {args: []string{"--id", "n9", "--data-dir", "d", "--bootstrap", "--initial-cluster", "n1=127.0.0.1:7101"}, flag: "initial-cluster"},
		"duplicate member":   {args: []string{"--id", "n1", "--data-dir", "d", "--bootstrap", "--initial-cluster", "n1=127.0.0.1:1,n1=127.0.0.1:2"}, flag: "initial-cluster"},
		"election too short": {args: []string{"--id", "n1", "--data-dir", "d", "--heartbeat-timeout", "2s", "--election-timeout", "1s"}, flag: "election-timeout"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			o, err := parseOptions(tc.args, env(nil), io.Discard)
			if err == nil {
				_, err = o.nodeConfig()
			}
			if err == nil || !strings.Contains(err.Error(), tc.flag) {
				t.Fatalf("err = %v; want one naming %s", err, tc.flag)
			}
		})
	}
}

func TestEnvironmentAndFlagPrecedence(t *testing.T) {
	o, err := parseOptions([]string{"--grpc-addr", "127.0.0.1:9999"}, env(map[string]string{
		"COORD_ID": "n2", "COORD_DATA_DIR": "/tmp/x", "COORD_GRPC_ADDR": "127.0.0.1:1111", "COORD_BOOTSTRAP": "true",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.id != "n2" || o.dataDir != "/tmp/x" || !o.bootstrap {
		t.Fatalf("environment not applied: %+v", o)
	}
	if o.grpcAddr != "127.0.0.1:9999" || o.grpcAdvertise != "127.0.0.1:9999" {
		t.Fatalf("flag did not win over the environment: %+v", o)
	}
}
