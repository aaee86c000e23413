package fsm

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"coord/internal/cmdpb"
	"coord/internal/sm"
)

// FormatV1 is the first byte of every command this version writes: the
// envelope that follows is a protobuf cmdpb.Command.
const FormatV1 byte = 1

// Operations of sm.MachineFSM.
const (
	// OpNoop does nothing but advance the clock.
	OpNoop uint32 = 1
	// OpTick runs due work in every machine.
	OpTick uint32 = 2
	// OpSetClusterID sets the cluster id once.
	OpSetClusterID uint32 = 3
	// OpNewLeader is a new leader's first command: machines that observe
	// leader changes (sm.LeaderObserver) run their hook.
	OpNewLeader uint32 = 4
)

// Dedup and tick limits. They shape replicated state, so they are constants:
// every replica must use the same values.
const (
	// SessionTTL is how long, in state-machine time, a client session with no
	// requests is kept.
	SessionTTL = 6 * time.Hour
	// MaxResultsPerSession bounds the results kept for one client.
	MaxResultsPerSession = 10000
	// TickBudget bounds the records one Tick touches.
	TickBudget = 1024
)

// ErrHalted is returned for entries after the FSM halted on a corrupt entry.
var ErrHalted = errors.New("fsm: halted after a corrupt or unknown log entry")

// Observer receives timings from the FSM. Every method may be called from the
// FSM goroutine and must not block.
type Observer interface {
	BatchApplied(entries int, d time.Duration)
	SnapshotPersisted(bytes int64, d time.Duration)
	Restored(d time.Duration)
}

// Config configures an FSM.
type Config struct {
	// Path is the state database file.
	Path string
	// Machines are the primitives, each with a distinct ID and Name.
	Machines []sm.Machine
	// Logger receives the FSM's logs.
	Logger *slog.Logger
	// Observer receives timings (optional).
	Observer Observer
	// OnHalt is called once when the FSM meets an entry it must not skip. The
	// default logs and panics, which stops the process loudly.
	OnHalt func(err error)
	// SyncEveryCommit fsyncs state.db at every commit. By default commits
	// are not fsynced and state.db is rebuilt from the latest snapshot and
	// the Raft log after a machine crash (see durability.go).
	SyncEveryCommit bool
	// BootID returns the running kernel's boot id (default: read from
	// /proc); tests replace it to simulate a machine restart.
	BootID func() string
}

// FSM is the replicated state machine. It implements raft.BatchingFSM.
type FSM struct {
	cfg      Config
	log      *slog.Logger
	machines map[uint32]sm.Machine
	order    []sm.Machine

	dbMu sync.RWMutex // guards db against the swap in Restore
	db   *bolt.DB

	applied atomic.Uint64
	now     atomic.Int64
	halted  atomic.Bool

	waitMu sync.Mutex
	waitCh chan struct{} // closed and replaced after every batch

	watchers watchers
	notes    map[string]struct{} // topics notified by the batch being applied
	sessions sessionCache        // client sessions touched by the batch being applied
}

var _ raft.BatchingFSM = (*FSM)(nil)

// Open opens (or creates) the state database and returns the FSM.
func Open(cfg Config) (*FSM, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	f := &FSM{cfg: cfg, log: cfg.Logger, machines: map[uint32]sm.Machine{}, waitCh: make(chan struct{})}
	for _, m := range append([]sm.Machine{clusterMachine{}}, cfg.Machines...) {
		if m.ID() == sm.MachineFSM {
			return nil, fmt.Errorf("fsm: machine %q uses reserved id 0", m.Name())
		}
		if _, dup := f.machines[m.ID()]; dup {
			return nil, fmt.Errorf("fsm: duplicate machine id %d", m.ID())
		}
		f.machines[m.ID()] = m
		f.order = append(f.order, m)
	}
	sortMachines(f.order)
	if f.cfg.BootID == nil {
		f.cfg.BootID = kernelBootID
	}
	bootID := f.cfg.BootID()
	if !cfg.SyncEveryCommit {
		if _, err := discardIfTorn(cfg.Path, bootID, f.log); err != nil {
			return nil, err
		}
	}
	db, err := openDB(cfg.Path, !cfg.SyncEveryCommit)
	if err != nil {
		return nil, err
	}
	f.db = db
	if err := f.loadMeta(); err != nil {
		_ = db.Close()
		return nil, err
	}
	if !cfg.SyncEveryCommit {
		if err := markUnsynced(cfg.Path, bootID); err != nil {
			_ = db.Close()
			return nil, err
		}
	}
	return f, nil
}

// openDB opens a state database; noSync leaves commits unsynced.
func openDB(path string, noSync bool) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:        time.Second,
		NoSync:         noSync,
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
		// A large initial mapping avoids remapping (which waits for open
		// read transactions, such as a snapshot being persisted) as the file grows.
		InitialMmapSize: 256 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("fsm: open %s: %w", path, err)
	}
	return db, nil
}

func (f *FSM) loadMeta() error {
	return f.db.View(func(tx *bolt.Tx) error {
		m, err := readMeta(tx)
		if err != nil {
			return err
		}
		f.applied.Store(m.AppliedIndex)
		f.now.Store(m.Now)
		return nil
	})
}

// Close closes the state database, after fsyncing it when its commits are
// not synced one by one.
func (f *FSM) Close() error {
	f.dbMu.Lock()
	defer f.dbMu.Unlock()
	if f.cfg.SyncEveryCommit {
		return f.db.Close()
	}
	if err := f.db.Sync(); err != nil {
		_ = f.db.Close()
		return fmt.Errorf("fsm: sync state.db: %w", err)
	}
	if err := f.db.Close(); err != nil {
		return err
	}
	return clearUnsynced(f.cfg.Path)
}

// AppliedIndex is the index of the last entry applied to state.db.
func (f *FSM) AppliedIndex() uint64 { return f.applied.Load() }

// Now is the state-machine clock (unix nanoseconds).
func (f *FSM) Now() int64 { return f.now.Load() }

// Halted reports whether the FSM stopped on a corrupt entry.
func (f *FSM) Halted() bool { return f.halted.Load() }

// Apply applies one entry (raft.FSM).
func (f *FSM) Apply(l *raft.Log) interface{} {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies committed entries in one transaction (raft.BatchingFSM).
// Each response is a *Response for a command entry, nil otherwise.
func (f *FSM) ApplyBatch(logs []*raft.Log) []interface{} {
	out := make([]interface{}, len(logs))
	if f.halted.Load() {
		for i := range out {
			out[i] = &Response{Err: ErrHalted}
		}
		return out
	}
	start := time.Now()
	var meta *cmdpb.Meta
	f.notes = map[string]struct{}{}
	f.sessions = sessionCache{}
	f.dbMu.RLock()
	err := f.db.Update(func(tx *bolt.Tx) error {
		var err error
		meta, err = readMeta(tx)
		if err != nil {
			return err
		}
		for i, l := range logs {
			if out[i], err = f.applyOne(tx, meta, l); err != nil {
				return err
			}
		}
		if err := f.sessions.flush(); err != nil {
			return err
		}
		return writeMeta(tx, meta)
	})
	f.dbMu.RUnlock()
	if err != nil {
		f.halt(err)
		for i := range out {
			out[i] = &Response{Err: ErrHalted}
		}
		return out
	}
	f.applied.Store(meta.AppliedIndex)
	f.now.Store(meta.Now)
	f.notify()
	f.watchers.wake(f.notes)
	if f.cfg.Observer != nil {
		f.cfg.Observer.BatchApplied(len(logs), time.Since(start))
	}
	return out
}

func (f *FSM) halt(err error) {
	if !f.halted.CompareAndSwap(false, true) {
		return
	}
	f.log.Error("state machine halted", "error", err)
	if f.cfg.OnHalt != nil {
		f.cfg.OnHalt(err)
		return
	}
	panic(err)
}

// Response is what ApplyBatch returns for a command entry.
type Response struct {
	// Result is the machine's result (possibly a rejection).
	Result *cmdpb.Result
	// Index is the entry's log index.
	Index uint64
	// Now is the state-machine time the entry was applied at.
	Now int64
	// Err is set when the FSM halted instead of applying.
	Err error
}

// applyOne applies a single entry inside the batch transaction. An error
// return means the entry is corrupt and the node must halt.
func (f *FSM) applyOne(tx *bolt.Tx, meta *cmdpb.Meta, l *raft.Log) (interface{}, error) {
	if l.Index <= meta.AppliedIndex {
		return nil, nil // already in state.db: replay after restart
	}
	meta.AppliedIndex, meta.AppliedTerm = l.Index, l.Term
	if l.Type != raft.LogCommand {
		return nil, nil
	}
	cmd, err := DecodeCommand(l.Data)
	if err != nil {
		return nil, fmt.Errorf("log index %d: %w", l.Index, err)
	}
	prevNow := meta.Now
	if cmd.LeaderTime > meta.Now {
		meta.Now = cmd.LeaderTime
	}
	env := sm.Env{Index: l.Index, Term: l.Term, Now: meta.Now}
	if cmd.Machine == sm.MachineFSM && cmd.Op == OpNewLeader {
		return &Response{Result: &cmdpb.Result{}, Index: l.Index, Now: env.Now}, f.newLeader(tx, env, prevNow)
	}
	res, err := f.dispatchDedup(tx, meta, env, cmd)
	if err != nil {
		return nil, fmt.Errorf("log index %d (machine %d op %d): %w", l.Index, cmd.Machine, cmd.Op, err)
	}
	return &Response{Result: res, Index: l.Index, Now: env.Now}, nil
}

// dispatch runs the command against its machine.
func (f *FSM) dispatch(tx *bolt.Tx, meta *cmdpb.Meta, env sm.Env, cmd *cmdpb.Command) (*cmdpb.Result, error) {
	if cmd.Machine == sm.MachineFSM {
		return f.applyFSMOp(tx, meta, env, cmd)
	}
	m, ok := f.machines[cmd.Machine]
	if !ok {
		return nil, fmt.Errorf("unknown machine %d", cmd.Machine)
	}
	if rej, err := f.checkFences(tx, env, cmd.Fences); rej != nil || err != nil {
		return rej, err
	}
	body, err := m.Apply(env, newTx(tx, m.Name(), f.notes), cmd.Op, cmd.Body)
	var rej *sm.Rejection
	if errors.As(err, &rej) {
		return &cmdpb.Result{RejectCode: cmdpb.RejectCode(rej.Code), RejectMessage: rej.Message}, nil
	}
	if err != nil {
		return nil, err
	}
	return &cmdpb.Result{Body: body}, nil
}

func (f *FSM) applyFSMOp(tx *bolt.Tx, meta *cmdpb.Meta, env sm.Env, cmd *cmdpb.Command) (*cmdpb.Result, error) {
	switch cmd.Op {
	case OpNoop:
		return &cmdpb.Result{}, nil
	case OpTick:
		return &cmdpb.Result{}, f.tick(tx, env)
	case OpSetClusterID:
		var req cmdpb.SetClusterID
		if err := proto.Unmarshal(cmd.Body, &req); err != nil {
			return nil, fmt.Errorf("decode SetClusterID: %w", err)
		}
		if meta.ClusterId == "" && req.ClusterId != "" {
			meta.ClusterId = req.ClusterId
		}
		return &cmdpb.Result{Body: []byte(meta.ClusterId)}, nil
	default:
		return nil, fmt.Errorf("unknown fsm op %d", cmd.Op)
	}
}

// newLeader runs every LeaderObserver's hook.
func (f *FSM) newLeader(tx *bolt.Tx, env sm.Env, prevNow int64) error {
	for _, m := range f.order {
		if o, ok := m.(sm.LeaderObserver); ok {
			if err := o.LeaderChanged(env, newTx(tx, m.Name(), f.notes), prevNow); err != nil {
				return fmt.Errorf("new leader hook of %s: %w", m.Name(), err)
			}
		}
	}
	return nil
}

// checkFences returns a rejection when any fence does not hold. An error
// means the lock state is corrupt.
func (f *FSM) checkFences(tx *bolt.Tx, env sm.Env, fences []*cmdpb.Fence) (*cmdpb.Result, error) {
	if len(fences) == 0 {
		return nil, nil
	}
	m, ok := f.machines[sm.MachineLocks]
	fencer, isFencer := m.(sm.Fencer)
	if !ok || !isFencer {
		return &cmdpb.Result{RejectCode: cmdpb.RejectCode_REJECT_CODE_FENCED, RejectMessage: "fencing is not available: no lock machine"}, nil
	}
	for _, fc := range fences {
		err := fencer.CheckFence(env, newTx(tx, m.Name(), nil), fc.Lock, fc.Token)
		var rej *sm.Rejection
		if errors.As(err, &rej) {
			return &cmdpb.Result{RejectCode: cmdpb.RejectCode(rej.Code), RejectMessage: rej.Message}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("fence on lock %q: %w", fc.Lock, err)
		}
	}
	return nil, nil
}

// tick runs due work: each machine in id order, then session collection.
func (f *FSM) tick(tx *bolt.Tx, env sm.Env) error {
	if err := f.sessions.flush(); err != nil { // expireSessions reads them
		return err
	}
	budget := TickBudget
	for _, m := range f.order {
		if budget <= 0 {
			return nil
		}
		used, err := m.Tick(env, newTx(tx, m.Name(), f.notes), budget)
		if err != nil {
			return fmt.Errorf("tick %s: %w", m.Name(), err)
		}
		budget -= used
	}
	if budget > 0 {
		return expireSessions(tx, env.Now, budget)
	}
	return nil
}

// NextDue reports the earliest state-machine time at which a Tick has work.
func (f *FSM) NextDue() (int64, bool) {
	var due int64
	var ok bool
	_ = f.view(func(tx *bolt.Tx) error {
		for _, m := range f.order {
			if d, has := m.NextDue(newTx(tx, m.Name(), nil)); has && (!ok || d < due) {
				due, ok = d, true
			}
		}
		if d, has := nextSessionExpiry(tx); has && (!ok || d < due) {
			due, ok = d, true
		}
		return nil
	})
	return due, ok
}

// View runs fn in a read transaction on the named machine's records, with
// the environment of the last applied entry.
func (f *FSM) View(machine uint32, fn func(env sm.Env, tx sm.Tx) error) error {
	m, ok := f.machines[machine]
	if !ok {
		return fmt.Errorf("fsm: unknown machine %d", machine)
	}
	return f.view(func(tx *bolt.Tx) error {
		meta, err := readMeta(tx)
		if err != nil {
			return err
		}
		env := sm.Env{Index: meta.AppliedIndex, Term: meta.AppliedTerm, Now: meta.Now}
		return fn(env, newTx(tx, m.Name(), nil))
	})
}

// Meta returns the bookkeeping record.
func (f *FSM) Meta() (*cmdpb.Meta, error) {
	var meta *cmdpb.Meta
	err := f.view(func(tx *bolt.Tx) error {
		var err error
		meta, err = readMeta(tx)
		return err
	})
	return meta, err
}

func (f *FSM) view(fn func(tx *bolt.Tx) error) error {
	f.dbMu.RLock()
	defer f.dbMu.RUnlock()
	return f.db.View(fn)
}

// WaitApplied blocks until the applied index reaches index or done closes.
func (f *FSM) WaitApplied(done <-chan struct{}, index uint64) bool {
	for {
		f.waitMu.Lock()
		ch := f.waitCh
		f.waitMu.Unlock()
		if f.applied.Load() >= index {
			return true
		}
		select {
		case <-ch:
		case <-done:
			return f.applied.Load() >= index
		}
	}
}

func (f *FSM) notify() {
	f.waitMu.Lock()
	close(f.waitCh)
	f.waitCh = make(chan struct{})
	f.waitMu.Unlock()
}
