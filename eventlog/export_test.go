package eventlog

import "coord/internal/sm"

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
	return count(bucketVersions, streamPrefix(name)), count(bucketIDs, streamPrefix(name)), count(bucketEvents, nil)
}

// Buckets lists the machine's buckets, so a test can create them up front
// and compare state hashes that do not change by a bucket's creation.
var Buckets = []string{bucketMeta, bucketStreams, bucketEvents, bucketVersions, bucketIDs, bucketTrim, bucketCursors}
