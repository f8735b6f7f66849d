package loadgen

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkPlannedAt measures computing the next planned send time, the
// dispatcher's per-request scheduling cost. It must not allocate.
func BenchmarkPlannedAt(b *testing.B) {
	cases := []struct {
		name   string
		stages []string
	}{
		{"hold", []string{"hold:1000:1h"}},
		{"ramp", []string{"ramp:0-1000:1h"}},
		{"spike", []string{"spike:100-1000/10m:1h"}},
		{"sine", []string{"sine:500±400/5m:1h"}},
		{"10stages", []string{"ramp:0-100:1m", "hold:100:5m", "spike:100-500/10s:1m", "sine:200±100/1m:10m", "ramp:200-50:1m",
			"hold:0:1m", "hold:20:1m", "ramp:20-300:2m", "sine:300±300/30s:5m", "hold:10:1m"}},
	}
	for _, c := range cases {
		s := mustSchedule(b, c.stages...)
		n := s.Requests()
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var k uint64
			var sink time.Duration
			for b.Loop() {
				p, _ := s.PlannedAt(k)
				sink += p
				k += 7919 // stride through the whole schedule
				if k >= n {
					k -= n
				}
			}
			_ = sink
		})
	}
}

// BenchmarkRecord measures the per-request bookkeeping on the hot path:
// marking a request in flight (dispatcher) and recording its outcome
// (worker). The bucket's sample slice is reused as it is after emission.
func BenchmarkRecord(b *testing.B) {
	r := newRecorder()
	o := outcome{planned: 300 * time.Millisecond, latency: 2 * time.Millisecond, answered: true, kind: kindOK}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.start(o.planned)
		r.record(o)
		select { // as the emitter would
		case <-r.changed:
		default:
		}
		if i++; i%4096 == 0 {
			r.open[0].lat = r.open[0].lat[:0]
		}
	}
}

// BenchmarkRecordParallel is BenchmarkRecord from many workers at once.
func BenchmarkRecordParallel(b *testing.B) {
	r := newRecorder()
	o := outcome{planned: 300 * time.Millisecond, latency: 2 * time.Millisecond, kind: kindOK}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			r.start(o.planned)
			r.record(o)
			if i++; i%4096 == 0 {
				r.mu.Lock()
				r.open[0].lat = r.open[0].lat[:0]
				r.mu.Unlock()
			}
		}
	})
}

// BenchmarkSecond measures turning a completed second of 1000 samples into
// a Second (sort, percentiles, merge into the run histogram): once per
// second, off the hot path.
func BenchmarkSecond(b *testing.B) {
	var tot totals
	bk := &bucket{lat: make([]time.Duration, 1000)}
	b.ReportAllocs()
	for b.Loop() {
		for i := range bk.lat {
			bk.lat[i] = time.Duration((i*7919)%1000) * time.Microsecond
		}
		bk.second(0, 1000, &tot)
	}
}

// BenchmarkRun measures the generator's whole per-request path (dispatch,
// hand-off to a worker, HTTP request, recording) against an in-process
// server that answers at once: one op is one request. The schedule asks for
// more than the machine can do, with 4 workers, so ns/op is the cost of a
// request at 4 in flight (server included) and allocs/op the generator's
// and server's allocations per request. "newconn" opens a connection per
// request (Config.DisableKeepAlive, as the demo does), "keepalive" reuses
// them.
func BenchmarkRun(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(okHandler))
	b.Cleanup(srv.Close)
	for _, c := range []struct {
		name      string
		keepAlive bool
	}{{"keepalive", true}, {"newconn", false}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			n := b.N
			cfg := Config{
				Target:           srv.URL,
				Stages:           []Stage{{Kind: KindHold, From: MaxRate, Duration: time.Duration(n) * time.Second / MaxRate}},
				MaxWorkers:       4,
				LateAfter:        time.Hour, // far behind on purpose: nothing may be missed
				DisableKeepAlive: !c.keepAlive,
			}
			b.ResetTimer()
			sum, _, err := Run(context.Background(), cfg, nil)
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			if sum.OK != n {
				b.Fatalf("ok %d of %d requests (summary %+v)", sum.OK, n, sum)
			}
		})
	}
}
