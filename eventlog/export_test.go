package eventlog

import (
	"bytes"

	"coord/internal/sm"
)

// StoredCounts reports how many records a stream has in the version and id
// indexes, and how many events are stored in all.
func StoredCounts(tx sm.Tx, name string) (versions, ids, events int) {
	count := func(bucket string, prefix []byte) int {
		n := 0
		c := tx.Bucket(bucket).Cursor()
		for k, _ := c.Seek(prefix); k != nil && string(k[:min(len(k), len(prefix))]) == string(prefix); k, _ = c.Next() {
			n++
		}
		return n
	}
	c := tx.Bucket(bucketIDs).Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if _, stream, ok := bytes.Cut(k, []byte{0}); ok && string(stream) == name {
			ids++
		}
	}
	ids += count(bucketOldIDs, streamPrefix(name))
	return count(bucketVersions, streamPrefix(name)), ids, count(bucketEvents, nil)
}

// MoveIDsToOldIndex moves every id record to the id index of state written
// before the current one, keyed as that state keyed it.
func MoveIDsToOldIndex(tx sm.Tx) error {
	var keys, vals [][]byte
	c := tx.Bucket(bucketIDs).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		keys, vals = append(keys, bytes.Clone(k)), append(vals, bytes.Clone(v))
	}
	for i, k := range keys {
		id, name, _ := bytes.Cut(k, []byte{0})
		if err := tx.Bucket(bucketOldIDs).Put(oldIDKey(string(name), string(id)), vals[i]); err != nil {
			return err
		}
		if err := tx.Bucket(bucketIDs).Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Buckets lists the machine's buckets, so a test can create them up front
// and compare state hashes that do not change by a bucket's creation.
var Buckets = []string{bucketMeta, bucketStreams, bucketEvents, bucketVersions, bucketIDs, bucketOldIDs, bucketTrim, bucketCursors}
