package main

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"coord/internal/loadgen"
)

// spec is one row of the comparison: one workload at one client count.
type spec struct {
	key     string // for --only
	title   string
	clients int
	// coord and etcd build the two sides; prefix keeps runs apart.
	coord func(p loadgen.Pool, prefix string) loadgen.Workload
	etcd  func(p etcdPool, prefix string) loadgen.Workload
}

// row is a measured spec.
type row struct {
	spec        spec
	etcd, coord loadgen.Report
}

// plan lists the rows to run, in order.
func plan(o *options) []spec {
	var out []spec
	add := func(s spec) {
		if o.only == "" || strings.Contains(","+o.only+",", ","+s.key+",") {
			out = append(out, s)
		}
	}
	for _, n := range o.clients {
		add(spec{key: "put", title: "put (etcd Put / coord KV put)", clients: n,
			coord: func(p loadgen.Pool, pre string) loadgen.Workload {
				return &loadgen.KVPut{Pool: p, Prefix: pre, Keys: o.keys, ValueSize: o.valueSize}
			},
			etcd: func(p etcdPool, pre string) loadgen.Workload {
				return &etcdPut{pool: p, prefix: pre, keys: o.keys, valueSize: o.valueSize}
			}})
	}
	for _, n := range o.clients {
		add(spec{key: "append", title: "append (etcd Put / coord 1-event append)", clients: n,
			coord: func(p loadgen.Pool, pre string) loadgen.Workload {
				return &loadgen.LogAppend{Pool: p, Prefix: pre, ValueSize: o.valueSize, PerRequest: 1}
			},
			etcd: func(p etcdPool, pre string) loadgen.Workload {
				return &etcdPut{pool: p, prefix: pre, keys: o.keys, valueSize: o.valueSize}
			}})
	}
	for _, n := range o.clients {
		add(spec{key: "lock", title: "lock+unlock, distinct locks", clients: n,
			coord: func(p loadgen.Pool, pre string) loadgen.Workload { return &loadgen.Lock{Pool: p, Prefix: pre} },
			etcd:  func(p etcdPool, pre string) loadgen.Workload { return &etcdMutex{pool: p, prefix: pre} }})
	}
	add(spec{key: "lock-contended", title: "lock+unlock, one hot lock (handoffs/s)", clients: o.waiters,
		coord: func(p loadgen.Pool, pre string) loadgen.Workload {
			return &loadgen.Lock{Pool: p, Prefix: pre, Contended: true}
		},
		etcd: func(p etcdPool, pre string) loadgen.Workload {
			return &etcdMutex{pool: p, prefix: pre, contended: true}
		}})
	for _, n := range o.clients {
		add(spec{key: "read", title: "linearizable read (etcd Get / coord Get)", clients: n,
			coord: func(p loadgen.Pool, pre string) loadgen.Workload {
				return &loadgen.Read{Pool: p, Prefix: pre, Keys: o.keys, ValueSize: o.valueSize}
			},
			etcd: func(p etcdPool, pre string) loadgen.Workload {
				return &etcdGet{pool: p, prefix: pre, keys: o.keys, valueSize: o.valueSize}
			}})
	}
	return out
}

// runRow measures etcd, then coord, on one spec, o.repeat times, and keeps
// each system's median run (by ops/s): alternating the systems spreads
// whatever else the machine does over both.
func runRow(ctx context.Context, o *options, p *pools, s spec) (row, error) {
	var etcdRuns, coordRuns []loadgen.Report
	for range o.repeat {
		prefix := "bench/" + loadgen.RunID() + "/"
		if o.system != "coord" {
			rep, err := measure(ctx, o, s, s.etcd(p.etcd, "/"+prefix))
			if err != nil {
				return row{}, fmt.Errorf("etcd: %w", err)
			}
			etcdRuns = append(etcdRuns, rep)
		}
		if o.system != "etcd" {
			rep, err := measure(ctx, o, s, s.coord(p.coord, prefix))
			if err != nil {
				return row{}, fmt.Errorf("coord: %w", err)
			}
			coordRuns = append(coordRuns, rep)
		}
	}
	return row{spec: s, etcd: median(etcdRuns), coord: median(coordRuns)}, nil
}

// median returns the run with the median ops/s (the lower middle one for
// an even count), noting every run's ops/s in its Extra.
func median(runs []loadgen.Report) loadgen.Report {
	if len(runs) == 0 {
		return loadgen.Report{}
	}
	sorted := slices.Clone(runs)
	slices.SortFunc(sorted, func(a, b loadgen.Report) int { return cmp.Compare(a.OpsPerSec, b.OpsPerSec) })
	m := sorted[(len(sorted)-1)/2]
	if len(runs) > 1 {
		var all []float64
		for _, r := range runs {
			all = append(all, math.Round(r.OpsPerSec))
		}
		m.Extra = maps.Clone(m.Extra)
		if m.Extra == nil {
			m.Extra = map[string]any{}
		}
		m.Extra["ops_per_sec_of_each_run"] = all
	}
	return m
}

func measure(ctx context.Context, o *options, s spec, w loadgen.Workload) (loadgen.Report, error) {
	if err := w.Setup(ctx, s.clients); err != nil {
		return loadgen.Report{}, fmt.Errorf("setup: %w", err)
	}
	cfg := loadgen.Config{Clients: s.clients, Duration: o.duration, Warmup: o.warmup, OpTimeout: 30 * time.Second}
	res, err := loadgen.Run(ctx, cfg, w.Op)
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if cerr := w.Close(cctx); err == nil && cerr != nil {
		err = fmt.Errorf("cleanup: %w", cerr)
	}
	if err != nil {
		return loadgen.Report{}, err
	}
	return loadgen.NewReport(s.key, nil, cfg, o.conns, res, w.Extra()), nil
}
