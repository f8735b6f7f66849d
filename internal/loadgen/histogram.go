package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// histSubBits sets the precision of histogram: each power-of-two range of
// values is split into 2^(histSubBits-1) equal buckets, so a bucket is at most
// 1/128 of its values wide and its midpoint is within 1/256 (0.4%) of any
// value in it.
const histSubBits = 8

const histHalf = 1 << (histSubBits - 1)

// histogram is a log-linear (HDR-style) histogram of non-negative durations
// in nanoseconds: exact below 2^histSubBits ns, within 0.4% above, over the
// whole int64 range, in a fixed 58 KiB. It is not safe for concurrent use.
type histogram struct {
	counts [(64 - histSubBits + 1) * histHalf]uint64
	n      uint64
	sum    float64 // nanoseconds, for the exact mean
	min    time.Duration
	max    time.Duration
}

func histIndex(v uint64) int {
	if v < 1<<histSubBits {
		return int(v)
	}
	e := bits.Len64(v) - histSubBits
	return e*histHalf + int(v>>e)
}

// histMid is the midpoint of bucket i (the value reported for it).
func histMid(i int) time.Duration {
	if i < 1<<histSubBits {
		return time.Duration(i)
	}
	e := i/histHalf - 1
	m := uint64(i - e*histHalf)
	lo := m << e
	return time.Duration(lo + (uint64(1)<<e)/2)
}

func (h *histogram) record(d time.Duration) {
	d = max(d, 0)
	if h.n == 0 || d < h.min {
		h.min = d
	}
	h.max = max(h.max, d)
	h.n++
	h.sum += float64(d)
	h.counts[histIndex(uint64(d))]++
}

// quantile returns the nearest-rank q-quantile (0 < q <= 1): the bucket value
// of the ceil(q*n)-th smallest sample, clamped to [min, max]; the largest rank
// is max itself. 0 when empty.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q*float64(h.n) - 1e-9))
	rank = max(1, min(rank, h.n))
	if rank == h.n {
		return h.max
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return max(h.min, min(histMid(i), h.max))
		}
	}
	return h.max
}

func (h *histogram) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}
