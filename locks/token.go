//go:build !chaosbug_memfence

package locks

import "coord/internal/sm"

// nextToken returns a fencing token greater than every token before it.
func (s *store) nextToken() (uint64, error) {
	b := s.tx.Bucket(bucketMeta)
	last, _ := sm.DecodeU64(b.Get(keyLastToken))
	t := max(last+1, s.env.Index)
	return t, b.Put(keyLastToken, sm.U64(t))
}
