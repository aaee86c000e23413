package loadgen

import (
	"math/bits"
	"time"
)

// subBits sets the histogram's precision: every power-of-two range of
// values is split into 2^subBits buckets, so a bucket's width is at most
// 1/128 of its values (relative error < 0.8%).
const subBits = 7

const (
	subCount = 1 << subBits
	// maxExp covers values up to 2^(maxExp+subBits) ns (about 39 hours).
	maxExp = 40
)

// Histogram counts durations in log-linear buckets. The zero value is
// ready to use; it is not safe for concurrent use (give each worker its own
// and Merge them).
type Histogram struct {
	counts [maxExp + 1][subCount]uint64
	total  uint64
	sum    time.Duration
	max    time.Duration
	min    time.Duration
}

// bucket returns the bucket of a non-negative value in nanoseconds.
func bucket(v uint64) (exp, sub int) {
	if v < subCount {
		return 0, int(v)
	}
	exp = bits.Len64(v) - subBits // >= 1
	if exp > maxExp {
		return maxExp, subCount - 1
	}
	return exp, int(v>>(exp-1)) - subCount
}

// bucketValue is the highest value in a bucket (so percentiles never
// understate a latency).
func bucketValue(exp, sub int) time.Duration {
	if exp == 0 {
		return time.Duration(sub)
	}
	lo := uint64(sub+subCount) << (exp - 1)
	return time.Duration(lo + (1 << (exp - 1)) - 1)
}

// Record adds one duration (negative ones count as zero).
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	e, s := bucket(uint64(d))
	h.counts[e][s]++
	if h.total == 0 || d < h.min {
		h.min = d
	}
	h.total++
	h.sum += d
	h.max = max(h.max, d)
}

// Merge adds every value recorded in o.
func (h *Histogram) Merge(o *Histogram) {
	if o.total == 0 {
		return
	}
	for e := range o.counts {
		for s, c := range o.counts[e] {
			h.counts[e][s] += c
		}
	}
	if h.total == 0 || o.min < h.min {
		h.min = o.min
	}
	h.total += o.total
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// Count is the number of values recorded.
func (h *Histogram) Count() uint64 { return h.total }

// Max is the largest value recorded (exact).
func (h *Histogram) Max() time.Duration { return h.max }

// Mean is the average value (exact).
func (h *Histogram) Mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return h.sum / time.Duration(h.total)
}

// Quantile returns the value at or below which a fraction q of the values
// lie, rounded up to its bucket's upper edge (and never above Max).
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(q*float64(h.total) + 0.5)
	rank = min(max(rank, 1), h.total)
	var seen uint64
	for e := range h.counts {
		for s, c := range h.counts[e] {
			if seen += c; seen >= rank {
				if e == maxExp && s == subCount-1 {
					return h.max // the last bucket also holds every larger value
				}
				return min(bucketValue(e, s), h.max)
			}
		}
	}
	return h.max
}
