package fsm

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

// Snapshot dump format, version 1:
//
//	magic "COORDSNAP" | version byte
//	records: 0x01 | uvarint depth | depth x (uvarint len, bucket name) |
//	         uvarint len, key | uvarint len, value
//	end:     0x00 | 32-byte SHA-256 of everything before the end marker
//
// Records come in bbolt's key order, bucket by bucket, so two replicas with
// the same state produce byte-identical dumps.
var snapMagic = []byte("COORDSNAP")

const (
	snapVersion byte = 1
	recKV       byte = 1
	recEnd      byte = 0
	restoreTxN       = 10000 // records per transaction while restoring
	// restoreFill is how full restore packs bbolt's pages: records arrive in
	// key order, so pages split by the default rule (half full) would leave
	// the new file twice as large as needed and twice as slow to write.
	restoreFill = 0.9
)

// Snapshot captures the state at the last applied entry (raft.FSM). It runs
// on the FSM goroutine; the returned snapshot is persisted concurrently with
// later applies from its own read transaction.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.dbMu.RLock()
	defer f.dbMu.RUnlock()
	tx, err := f.db.Begin(false)
	if err != nil {
		return nil, err
	}
	return &fsmSnapshot{tx: tx, obs: f.cfg.Observer}, nil
}

type fsmSnapshot struct {
	tx  *bolt.Tx
	obs Observer
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	start := time.Now()
	n, err := writeDump(sink, s.tx)
	if err != nil {
		_ = sink.Cancel()
		return err
	}
	if s.obs != nil {
		s.obs.SnapshotPersisted(n, time.Since(start))
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() { _ = s.tx.Rollback() }

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writeDump writes the logical dump of tx to w and returns its size.
func writeDump(w io.Writer, tx *bolt.Tx) (int64, error) {
	cw := &countingWriter{w: w}
	bw := bufio.NewWriterSize(cw, 256<<10)
	h := sha256.New()
	out := io.MultiWriter(bw, h)
	if _, err := out.Write(append(append([]byte{}, snapMagic...), snapVersion)); err != nil {
		return 0, err
	}
	var path [][]byte
	var walk func(b *bolt.Bucket) error
	walk = func(b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			if v == nil { // nested bucket
				path = append(path, k)
				err := walk(b.Bucket(k))
				path = path[:len(path)-1]
				return err
			}
			return writeRecord(out, path, k, v)
		})
	}
	err := tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		path = append(path[:0], name)
		return walk(b)
	})
	if err != nil {
		return 0, err
	}
	if _, err := bw.Write([]byte{recEnd}); err != nil {
		return 0, err
	}
	if _, err := bw.Write(h.Sum(nil)); err != nil {
		return 0, err
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	return cw.n, nil
}

func writeRecord(w io.Writer, path [][]byte, k, v []byte) error {
	buf := make([]byte, 0, 32+len(k)+len(v))
	buf = append(buf, recKV)
	buf = binary.AppendUvarint(buf, uint64(len(path)))
	for _, p := range path {
		buf = appendBytes(buf, p)
	}
	buf = appendBytes(buf, k)
	buf = appendBytes(buf, v)
	_, err := w.Write(buf)
	return err
}

func appendBytes(buf, b []byte) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(b)))
	return append(buf, b...)
}

// Restore replaces all state with the dump in rc (raft.FSM). The dump is
// loaded into a new file that is swapped in only when it is complete and
// verified, so a failed restore leaves the previous state untouched.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	start := time.Now()
	tmp := f.cfg.Path + ".restore"
	_ = os.Remove(tmp)
	db, err := openDB(tmp, true) // synced once, below, before the swap
	if err != nil {
		return err
	}
	if err := loadDump(db, rc); err != nil {
		_ = db.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("fsm: restore: %w", err)
	}
	if err := db.Sync(); err != nil {
		_ = db.Close()
		return err
	}
	if err := db.Close(); err != nil {
		return err
	}
	if err := f.swap(tmp); err != nil {
		return err
	}
	if f.cfg.Observer != nil {
		f.cfg.Observer.Restored(time.Since(start))
	}
	f.notify()
	f.watchers.wakeAll()
	return nil
}

// swap replaces the open database with the file at tmp.
//
// The old database is closed in the background: bbolt's Close waits for
// every open read transaction, and a snapshot raft has taken but not yet
// released holds one. Raft may hold that snapshot while it waits for this
// restore to finish (takeSnapshot waits for the main loop, which waits for
// the restore it started to install a leader's snapshot), so closing here
// would deadlock the node. The old handle keeps reading the file it opened
// (renamed over, not yet freed) until the snapshot is released.
func (f *FSM) swap(tmp string) error {
	f.dbMu.Lock()
	defer f.dbMu.Unlock()
	if err := os.Rename(tmp, f.cfg.Path); err != nil {
		return err
	}
	if err := syncDir(f.cfg.Path); err != nil {
		return err
	}
	db, err := openDB(f.cfg.Path, !f.cfg.SyncEveryCommit)
	if err != nil {
		return err
	}
	old := f.db
	f.db = db
	go func() {
		if err := old.Close(); err != nil {
			f.log.Warn("closing the state database replaced by a restore", "error", err)
		}
	}()
	return f.loadMetaLocked()
}

func (f *FSM) loadMetaLocked() error {
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

// loadDump reads a dump into db, verifying its checksum before the final commit.
func loadDump(db *bolt.DB, r io.Reader) error {
	h := sha256.New()
	br := bufio.NewReaderSize(r, 256<<10)
	tr := &teeByteReader{r: br, h: h}
	head := make([]byte, len(snapMagic)+1)
	if _, err := io.ReadFull(tr, head); err != nil {
		return fmt.Errorf("read header: %w", err)
	}
	if !bytes.Equal(head[:len(snapMagic)], snapMagic) || head[len(snapMagic)] != snapVersion {
		return fmt.Errorf("not a coord snapshot (version %d)", head[len(head)-1])
	}
	for {
		recs, done, err := readRecords(tr, restoreTxN)
		if err != nil {
			return err
		}
		if err := db.Update(func(tx *bolt.Tx) error { return putRecords(tx, recs) }); err != nil {
			return err
		}
		if done {
			break
		}
	}
	sum := h.Sum(nil) // hash of everything before the end marker
	want := make([]byte, sha256.Size)
	if _, err := io.ReadFull(br, want); err != nil {
		return fmt.Errorf("read checksum: %w", err)
	}
	if !bytes.Equal(sum, want) {
		return errors.New("checksum mismatch: snapshot is corrupt")
	}
	return nil
}

type record struct {
	path [][]byte
	k, v []byte
}

func readRecords(r *teeByteReader, max int) ([]record, bool, error) {
	recs := make([]record, 0, max)
	var prev [][]byte
	for len(recs) < max {
		kind, err := r.peekKind()
		if err != nil {
			return nil, false, err
		}
		if kind == recEnd {
			return recs, true, nil
		}
		if kind != recKV {
			return nil, false, fmt.Errorf("unknown record kind %d", kind)
		}
		rec, err := readRecord(r, prev)
		if err != nil {
			return nil, false, err
		}
		recs = append(recs, rec)
		prev = rec.path
	}
	return recs, false, nil
}

// readRecord reads one record. Consecutive records mostly share their
// bucket path, so a path equal to prev's is shared rather than copied, and
// the key and value share one allocation.
func readRecord(r *teeByteReader, prev [][]byte) (record, error) {
	depth, err := binary.ReadUvarint(r)
	if err != nil || depth == 0 || depth > 16 {
		return record{}, fmt.Errorf("bad record depth %d: %v", depth, err)
	}
	var rec record
	same := int(depth) == len(prev)
	for i := range int(depth) {
		p, err := r.readField()
		if err != nil {
			return record{}, err
		}
		if same && bytes.Equal(p, prev[i]) {
			continue
		}
		if same { // the path diverges from prev here: copy prev's prefix
			rec.path = append(rec.path, prev[:i]...)
			same = false
		}
		rec.path = append(rec.path, bytes.Clone(p))
	}
	if same {
		rec.path = prev
	}
	k, err := r.readField()
	if err != nil {
		return record{}, err
	}
	n, err := fieldLen(r)
	if err != nil {
		return record{}, err
	}
	kv := make([]byte, len(k)+int(n))
	copy(kv, k)
	if _, err := io.ReadFull(r, kv[len(k):]); err != nil {
		return record{}, err
	}
	rec.k, rec.v = kv[:len(k):len(k)], kv[len(k):]
	return rec, nil
}

// fieldLen reads the length of a field.
func fieldLen(r *teeByteReader) (uint64, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return 0, err
	}
	if n > 64<<20 {
		return 0, fmt.Errorf("record field of %d bytes is too large", n)
	}
	return n, nil
}

func putRecords(tx *bolt.Tx, recs []record) error {
	for _, rec := range recs {
		b, err := tx.CreateBucketIfNotExists(rec.path[0])
		if err != nil {
			return err
		}
		for _, p := range rec.path[1:] {
			if b, err = b.CreateBucketIfNotExists(p); err != nil {
				return err
			}
		}
		b.FillPercent = restoreFill
		if err := b.Put(rec.k, rec.v); err != nil {
			return err
		}
	}
	return nil
}

// teeByteReader hashes what it reads. The record-kind byte is consumed by
// peekKind; the end marker is hashed too, matching writeDump.
type teeByteReader struct {
	r   *bufio.Reader
	h   hash.Hash
	one [1]byte // ReadByte's byte, hashed without an allocation
	buf []byte  // readField's buffer, reused
}

// readField reads a length-prefixed field into a buffer that is valid until
// the next call.
func (t *teeByteReader) readField() ([]byte, error) {
	n, err := fieldLen(t)
	if err != nil {
		return nil, err
	}
	if uint64(cap(t.buf)) < n {
		t.buf = make([]byte, n)
	}
	t.buf = t.buf[:n]
	_, err = io.ReadFull(t, t.buf)
	return t.buf, err
}

func (t *teeByteReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.h.Write(p[:n])
	return n, err
}

func (t *teeByteReader) ReadByte() (byte, error) {
	b, err := t.r.ReadByte()
	if err == nil {
		t.one[0] = b
		t.h.Write(t.one[:])
	}
	return b, err
}

func (t *teeByteReader) peekKind() (byte, error) {
	b, err := t.r.ReadByte()
	if err != nil {
		return 0, fmt.Errorf("truncated snapshot: %w", err)
	}
	if b != recEnd {
		t.h.Write([]byte{b})
	}
	return b, nil
}

// Hash returns the SHA-256 of the current state's logical dump and the
// applied index it was taken at. Replicas at the same applied index have the
// same hash.
func (f *FSM) Hash() (uint64, [32]byte, error) {
	var sum [32]byte
	var idx uint64
	err := f.view(func(tx *bolt.Tx) error {
		m, err := readMeta(tx)
		if err != nil {
			return err
		}
		idx = m.AppliedIndex
		h := sha256.New()
		if _, err := writeDump(h, tx); err != nil {
			return err
		}
		copy(sum[:], h.Sum(nil))
		return nil
	})
	return idx, sum, err
}

func syncDir(path string) error {
	d, err := os.Open(dirOf(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func dirOf(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if os.IsPathSeparator(path[i]) {
			return path[:i+1]
		}
	}
	return "."
}
