package fsm

import (
	"sort"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"coord/internal/sm"
)

// boltTx adapts a bbolt transaction to sm.Tx, scoped to one machine's
// top-level bucket.
type boltTx struct {
	tx      *bolt.Tx
	name    []byte
	machine string
	notes   map[string]struct{} // topics to wake after commit (nil: read-only)
}

func newTx(tx *bolt.Tx, machine string, notes map[string]struct{}) sm.Tx {
	return &boltTx{tx: tx, name: []byte(machinePrefix + machine), machine: machine, notes: notes}
}

func (t *boltTx) Writable() bool { return t.tx.Writable() }

func (t *boltTx) Notify(topic string) {
	if t.notes != nil {
		t.notes[t.machine+"/"+topic] = struct{}{}
	}
}

func (t *boltTx) Bucket(name string) sm.Bucket {
	if b := t.bucket(name); b != nil {
		return boltBucket{b}
	}
	return emptyBucket{}
}

// AscendingBucket fills the bucket's pages before splitting them. bbolt
// splits a page that outgrows its size at FillPercent of it: at the
// default, half, a bucket written in key order keeps only half-full pages,
// writes twice the pages per key and takes twice the space.
func (t *boltTx) AscendingBucket(name string) sm.Bucket {
	b := t.bucket(name)
	if b == nil {
		return emptyBucket{}
	}
	if t.tx.Writable() {
		b.FillPercent = ascendingFill
	}
	return boltBucket{b}
}

// ascendingFill is how full AscendingBucket packs pages: bbolt's maximum.
const ascendingFill = 1.0

// bucket returns the named bucket of the machine, creating it in a write
// transaction, or nil.
func (t *boltTx) bucket(name string) *bolt.Bucket {
	root := t.tx.Bucket(t.name)
	if root == nil && t.tx.Writable() {
		var err error
		if root, err = t.tx.CreateBucket(t.name); err != nil {
			panic(err) // only fails on a closed tx or bad name: a programming error
		}
	}
	if root == nil {
		return nil
	}
	b := root.Bucket([]byte(name))
	if b == nil && t.tx.Writable() {
		var err error
		if b, err = root.CreateBucket([]byte(name)); err != nil {
			panic(err)
		}
	}
	return b
}

type boltBucket struct{ b *bolt.Bucket }

func (b boltBucket) Get(k []byte) []byte   { return b.b.Get(k) }
func (b boltBucket) Put(k, v []byte) error { return b.b.Put(k, v) }
func (b boltBucket) Delete(k []byte) error { return b.b.Delete(k) }
func (b boltBucket) Cursor() sm.Cursor     { return b.b.Cursor() }

// emptyBucket stands for a bucket that does not exist in a read transaction.
type emptyBucket struct{}

func (emptyBucket) Get([]byte) []byte     { return nil }
func (emptyBucket) Put(_, _ []byte) error { return berrors.ErrTxNotWritable }
func (emptyBucket) Delete([]byte) error   { return berrors.ErrTxNotWritable }
func (emptyBucket) Cursor() sm.Cursor     { return emptyCursor{} }

type emptyCursor struct{}

func (emptyCursor) First() ([]byte, []byte)      { return nil, nil }
func (emptyCursor) Last() ([]byte, []byte)       { return nil, nil }
func (emptyCursor) Seek([]byte) ([]byte, []byte) { return nil, nil }
func (emptyCursor) Next() ([]byte, []byte)       { return nil, nil }
func (emptyCursor) Prev() ([]byte, []byte)       { return nil, nil }
func (emptyCursor) Delete() error                { return berrors.ErrTxNotWritable }

func sortMachines(ms []sm.Machine) {
	sort.Slice(ms, func(i, j int) bool { return ms[i].ID() < ms[j].ID() })
}
