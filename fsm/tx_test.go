package fsm

import (
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"coord/internal/sm"
)

// TestAscendingBucketPacksPages writes the same ascending keys, a batch per
// transaction, through Bucket and AscendingBucket and compares the leaf
// pages each bucket ends with: packed pages take about half as many.
func TestAscendingBucketPacksPages(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "state.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	value := make([]byte, 300)
	for batch := range 50 {
		err := db.Update(func(btx *bolt.Tx) error {
			tx := newTx(btx, "m", nil)
			for i := range 40 {
				k := sm.U64(uint64(batch*40 + i))
				if err := tx.Bucket("plain").Put(k, value); err != nil {
					return err
				}
				if err := tx.AscendingBucket("packed").Put(k, value); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	leaves := func(name string) int {
		var n int
		_ = db.View(func(btx *bolt.Tx) error {
			n = btx.Bucket([]byte(machinePrefix + "m")).Bucket([]byte(name)).Stats().LeafPageN
			return nil
		})
		return n
	}
	plain, packed := leaves("plain"), leaves("packed")
	t.Logf("2000 keys of 308 bytes: %d leaf pages plain, %d packed", plain, packed)
	if packed*10 > plain*6 {
		t.Fatalf("packed bucket has %d leaf pages, plain %d: want at most 60%%", packed, plain)
	}
	err = db.View(func(btx *bolt.Tx) error {
		c := newTx(btx, "m", nil).AscendingBucket("packed").Cursor()
		n := 0
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if got, _ := sm.DecodeU64(k); got != uint64(n) {
				t.Fatalf("key %d is %d", n, got)
			}
			n++
		}
		if n != 2000 {
			t.Fatalf("%d keys read back, want 2000", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
