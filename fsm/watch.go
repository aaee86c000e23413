package fsm

import "sync"

// watchers wakes local watchers of topics after the batch that notified them
// has committed.
type watchers struct {
	mu sync.Mutex
	m  map[string]chan struct{}
}

// watch returns a channel closed at the next wake of key.
func (w *watchers) watch(key string) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[string]chan struct{}{}
	}
	ch := w.m[key]
	if ch == nil {
		ch = make(chan struct{})
		w.m[key] = ch
	}
	return ch
}

func (w *watchers) wake(keys map[string]struct{}) {
	if len(keys) == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for k := range keys {
		if ch := w.m[k]; ch != nil {
			close(ch)
			delete(w.m, k)
		}
	}
}

func (w *watchers) wakeAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, ch := range w.m {
		close(ch)
		delete(w.m, k)
	}
}

// Watch returns a channel that is closed after the next committed batch in
// which machine notified topic (sm.Tx.Notify), or after a snapshot restore.
// Register the watch before reading the state it guards, then wait on it:
// a change between the read and the wait is never missed.
func (f *FSM) Watch(machine uint32, topic string) <-chan struct{} {
	name := "?"
	if m, ok := f.machines[machine]; ok {
		name = m.Name()
	}
	return f.watchers.watch(name + "/" + topic)
}
