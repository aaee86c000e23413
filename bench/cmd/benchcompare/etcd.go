package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"coord/internal/loadgen"
)

// etcdPool is a set of etcd clients shared by the workers, like
// loadgen.Pool for coord.
type etcdPool []*clientv3.Client

func newEtcdPool(n int, endpoints []string) (etcdPool, error) {
	var p etcdPool
	for range n {
		c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			p.close()
			return nil, err
		}
		p = append(p, c)
	}
	return p, nil
}

// etcdLeader returns the client endpoint of the etcd leader, so that etcd's
// requests go straight to the leader as coord's do (a follower would
// forward writes and ask the leader for every linearizable read).
func etcdLeader(ctx context.Context, endpoints []string) ([]string, error) {
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	for _, ep := range endpoints {
		st, err := c.Status(ctx, ep)
		if err == nil && st.Leader == st.Header.MemberId {
			return []string{ep}, nil
		}
	}
	return nil, errors.New("no member reports itself as leader")
}

func (p etcdPool) forWorker(w int) *clientv3.Client { return p[w%len(p)] }

func (p etcdPool) close() {
	for _, c := range p {
		_ = c.Close()
	}
}

// etcdPut is loadgen.KVPut for etcd.
type etcdPut struct {
	pool      etcdPool
	prefix    string
	keys      int
	valueSize int
	value     string
}

func (w *etcdPut) Setup(context.Context, int) error {
	w.value = string(loadgen.Value(w.valueSize))
	return nil
}

func (w *etcdPut) Op(ctx context.Context, worker int) error {
	_, err := w.pool.forWorker(worker).Put(ctx, w.prefix+loadgen.KeyName(rand.IntN(w.keys)), w.value)
	return err
}

func (w *etcdPut) Close(context.Context) error { return nil }
func (w *etcdPut) Extra() map[string]any       { return nil }

// etcdGet is loadgen.Read for etcd (linearizable Get, etcd's default).
type etcdGet struct {
	pool      etcdPool
	prefix    string
	keys      int
	valueSize int
}

func (w *etcdGet) Setup(ctx context.Context, _ int) error {
	value := string(loadgen.Value(w.valueSize))
	return loadgen.Parallel(ctx, w.keys, 64, func(ctx context.Context, i int) error {
		_, err := w.pool.forWorker(i).Put(ctx, w.prefix+loadgen.KeyName(i), value)
		return err
	})
}

func (w *etcdGet) Op(ctx context.Context, worker int) error {
	resp, err := w.pool.forWorker(worker).Get(ctx, w.prefix+loadgen.KeyName(rand.IntN(w.keys)))
	if err == nil && len(resp.Kvs) == 0 {
		return errors.New("a key written by setup was not found")
	}
	return err
}

func (w *etcdGet) Close(context.Context) error { return nil }
func (w *etcdGet) Extra() map[string]any       { return nil }

// etcdMutex is loadgen.Lock for etcd: every worker holds a session (a
// lease kept alive by the client) and each operation locks and unlocks a
// concurrency.Mutex: its own, or with contended one shared by all.
type etcdMutex struct {
	pool      etcdPool
	prefix    string
	contended bool
	sessions  []*concurrency.Session
	names     []string
}

func (w *etcdMutex) Setup(ctx context.Context, clients int) error {
	w.sessions = make([]*concurrency.Session, clients)
	w.names = make([]string, clients)
	for i := range w.names {
		w.names[i] = w.prefix + "lock/" + loadgen.KeyName(i)
		if w.contended {
			w.names[i] = w.prefix + "hot"
		}
	}
	return loadgen.Parallel(ctx, clients, 64, func(ctx context.Context, i int) error {
		s, err := concurrency.NewSession(w.pool.forWorker(i), concurrency.WithTTL(60), concurrency.WithContext(context.Background()))
		if err != nil {
			return fmt.Errorf("etcd session: %w", err)
		}
		w.sessions[i] = s
		return nil
	})
}

func (w *etcdMutex) Op(ctx context.Context, worker int) error {
	m := concurrency.NewMutex(w.sessions[worker], w.names[worker])
	if err := m.Lock(ctx); err != nil {
		return err
	}
	return m.Unlock(ctx)
}

func (w *etcdMutex) Close(context.Context) error {
	var errs []error
	for _, s := range w.sessions {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	return errors.Join(errs...)
}

func (w *etcdMutex) Extra() map[string]any { return nil }
