package report

import (
	"math"
	"time"
)

// cdfPoint is one known point (latency in seconds, cumulative fraction) of a
// latency distribution.
type cdfPoint struct{ v, q float64 }

// secondCDF is the piecewise-linear approximation of one sample's latency
// distribution, weighted by its request count.
type secondCDF struct {
	pts []cdfPoint // v and q non-decreasing; last q is 1
	w   float64
}

// at returns the fraction of requests with latency <= x.
func (c secondCDF) at(x float64) float64 {
	for k := 1; k < len(c.pts); k++ {
		if b := c.pts[k]; x < b.v {
			a := c.pts[k-1] // the last point with v <= x; b.v > a.v
			return a.q + (b.q-a.q)*(x-a.v)/(b.v-a.v)
		}
	}
	return 1
}

// latencyCDFs builds one secondCDF per sample that has at least one
// percentile. Weights are OK+Errors; if no sample with percentiles has a
// request count, all weigh the same.
func latencyCDFs(samples []Sample) []secondCDF {
	var out []secondCDF
	var total float64
	for _, smp := range samples {
		pts := []cdfPoint{{0, 0}}
		for _, p := range []struct {
			d time.Duration
			q float64
		}{{smp.P50, 0.50}, {smp.P95, 0.95}, {smp.P99, 0.99}} {
			if p.d <= 0 {
				continue
			}
			v := max(p.d.Seconds(), pts[len(pts)-1].v) // keep it monotonic
			pts = append(pts, cdfPoint{v, p.q})
		}
		if len(pts) == 1 {
			continue
		}
		pts = append(pts, cdfPoint{pts[len(pts)-1].v, 1})
		w := float64(max(smp.OK+smp.Errors, 0))
		total += w
		out = append(out, secondCDF{pts: pts, w: w})
	}
	if total == 0 {
		for i := range out {
			out[i].w = 1
		}
	}
	return out
}

// mixtureQuantile returns the q-quantile (0<q<1) of the request-weighted
// mixture of the per-sample latency distributions (see Summary.P95), or 0
// when no sample has latency data.
func mixtureQuantile(samples []Sample, q float64) time.Duration {
	cdfs := latencyCDFs(samples)
	var total, hi float64
	for _, c := range cdfs {
		total += c.w
		hi = max(hi, c.pts[len(c.pts)-1].v)
	}
	if total == 0 || hi <= 0 {
		return 0
	}
	mix := func(x float64) float64 {
		var f float64
		for _, c := range cdfs {
			f += c.w * c.at(x)
		}
		return f / total
	}
	// Smallest x with mix(x) >= q; mix(hi) == 1. The tolerance absorbs
	// rounding in the weighted sum.
	lo := 0.0
	for hi-lo > 1e-7 {
		mid := (lo + hi) / 2
		if mix(mid) >= q-1e-12 {
			hi = mid
		} else {
			lo = mid
		}
	}
	return time.Duration(math.Round(hi*1e6)) * time.Microsecond
}
