// Package smtest provides an in-memory sm.Tx for testing primitives without
// the state machine or its storage.
package smtest

import (
	"bytes"
	"crypto/sha256"
	"sort"

	"coord/internal/sm"
)

// Store is an in-memory set of buckets. It is not safe for concurrent use.
type Store struct {
	buckets map[string]*bucket
	// Notified collects the topics notified by writable transactions.
	Notified map[string]int
}

// New returns an empty store.
func New() *Store { return &Store{buckets: map[string]*bucket{}, Notified: map[string]int{}} }

// Tx returns a transaction on the store (writable or read-only).
func (s *Store) Tx(writable bool) sm.Tx { return &tx{s: s, writable: writable} }

// Hash digests every bucket's contents in key order.
func (s *Store) Hash() [32]byte {
	h := sha256.New()
	names := make([]string, 0, len(s.buckets))
	for n := range s.buckets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b := s.buckets[n]
		h.Write([]byte(n))
		for _, k := range b.sortedKeys() {
			h.Write([]byte(k))
			h.Write(b.m[k])
		}
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

type tx struct {
	s        *Store
	writable bool
}

func (t *tx) Writable() bool { return t.writable }

func (t *tx) Notify(topic string) {
	if t.writable {
		t.s.Notified[topic]++
	}
}

// AscendingBucket is Bucket: packing is a matter of storage only.
func (t *tx) AscendingBucket(name string) sm.Bucket { return t.Bucket(name) }

func (t *tx) Bucket(name string) sm.Bucket {
	b := t.s.buckets[name]
	if b == nil {
		b = &bucket{m: map[string][]byte{}}
		if t.writable {
			t.s.buckets[name] = b
		}
	}
	return &view{b: b, writable: t.writable}
}

type bucket struct{ m map[string][]byte }

func (b *bucket) sortedKeys() []string {
	keys := make([]string, 0, len(b.m))
	for k := range b.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

type view struct {
	b        *bucket
	writable bool
}

type readOnlyError struct{}

func (readOnlyError) Error() string { return "smtest: write in a read-only transaction" }

func (v *view) Get(k []byte) []byte { return v.b.m[string(k)] }

func (v *view) Put(k, val []byte) error {
	if !v.writable {
		return readOnlyError{}
	}
	v.b.m[string(k)] = append([]byte(nil), val...)
	return nil
}

func (v *view) Delete(k []byte) error {
	if !v.writable {
		return readOnlyError{}
	}
	delete(v.b.m, string(k))
	return nil
}

func (v *view) Cursor() sm.Cursor { return &cursor{v: v} }

// cursor re-reads the sorted keys on every move, so it reflects writes made
// while iterating (as a bbolt cursor within its transaction does).
type cursor struct {
	v   *view
	key []byte // current key (nil: unpositioned)
}

func (c *cursor) at(i int, keys []string) ([]byte, []byte) {
	if i < 0 || i >= len(keys) {
		c.key = nil
		return nil, nil
	}
	c.key = []byte(keys[i])
	return c.key, c.v.b.m[keys[i]]
}

func (c *cursor) First() ([]byte, []byte) { return c.at(0, c.v.b.sortedKeys()) }

func (c *cursor) Last() ([]byte, []byte) {
	keys := c.v.b.sortedKeys()
	return c.at(len(keys)-1, keys)
}

func (c *cursor) Seek(k []byte) ([]byte, []byte) {
	keys := c.v.b.sortedKeys()
	return c.at(sort.SearchStrings(keys, string(k)), keys)
}

func (c *cursor) Next() ([]byte, []byte) {
	if c.key == nil {
		return nil, nil
	}
	keys := c.v.b.sortedKeys()
	i := sort.Search(len(keys), func(i int) bool { return bytes.Compare([]byte(keys[i]), c.key) > 0 })
	return c.at(i, keys)
}

func (c *cursor) Prev() ([]byte, []byte) {
	if c.key == nil {
		return nil, nil
	}
	keys := c.v.b.sortedKeys()
	i := sort.Search(len(keys), func(i int) bool { return bytes.Compare([]byte(keys[i]), c.key) >= 0 })
	return c.at(i-1, keys)
}

func (c *cursor) Delete() error {
	if c.key == nil {
		return nil
	}
	return c.v.Delete(c.key)
}
