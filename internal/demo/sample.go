package demo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sort"
	"sync"
	"time"

	v3 "github.com/exoscale/egoscale/v3"

	"tidepool/internal/autoscaler"
	"tidepool/internal/loadgen"
	"tidepool/internal/monitoring"
	"tidepool/internal/promquery"
	"tidepool/internal/report"
)

// Series names the demo reads from Prometheus (recording rules of
// internal/monitoring).
const (
	poolCPUSeries     = monitoring.RulePoolCPU
	instanceCPUSeries = monitoring.RuleInstanceCPU
)

// Observer is told about what the demo records, as it is recorded: the
// seam for a live view (the report is built from the same records at the
// end). Calls come one at a time, in recording order, from the demo's
// goroutines with the recorder locked: a method must return quickly and must
// not call back into the demo.
type Observer interface {
	// Sample receives a second's sample each time part of it (the load
	// generator's second, or the pool and CPU observation) is recorded;
	// the same T comes again as the other part arrives.
	Sample(report.Sample)
	// Event receives each event: the load's start and end, an alert
	// that started or stopped firing, an autoscaler decision that changed,
	// held or failed to change the pool.
	Event(report.Event)
}

// recorder gathers per-second samples from the load generator (load,
// latency, errors) and the sampler (pool, CPU), keyed by whole seconds since
// the start, plus scaling events, and passes each change to its Observer.
// Safe for concurrent use.
type recorder struct {
	obs     Observer // nil: none
	mu      sync.Mutex
	samples map[int]*report.Sample
	events  []report.Event
	seen    map[time.Time]bool // autoscaler decisions already turned into events
	pool    [2]int             // last size, running
	alerts  map[string]string  // last known alert states
}

// newRecorder returns an empty recorder telling obs (nil: nobody).
func newRecorder(obs Observer) *recorder {
	return &recorder{obs: obs, samples: map[int]*report.Sample{}, seen: map[time.Time]bool{}, pool: [2]int{-1, -1}}
}

// notifySample and notifyEvent tell the observer; r.mu must be held.
func (r *recorder) notifySample(s *report.Sample) {
	if r.obs != nil {
		r.obs.Sample(*s)
	}
}

func (r *recorder) notifyEvent(e report.Event) {
	if r.obs != nil {
		r.obs.Event(e)
	}
}

func (r *recorder) at(sec int) *report.Sample {
	s, ok := r.samples[sec]
	if !ok {
		s = &report.Sample{T: time.Duration(sec) * time.Second, PoolSize: -1, RunningSize: -1, StartingSize: -1, DrainingSize: -1, AvgCPU: math.NaN()}
		r.samples[sec] = s
	}
	return s
}

// addLoad records one second of the load generator; start is the demo start
// (the load starts right after it).
func (r *recorder) addLoad(start time.Time, l loadgen.Second) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.at(int(l.Offset / time.Second))
	s.OfferedRPS = l.Offered
	s.AnsweredRPS = float64(l.Answered)
	s.OK = l.OK
	s.Late = l.Late
	s.Errors = 0
	for _, n := range l.Errors {
		s.Errors += n
	}
	s.Errors += l.Missed
	s.P50, s.P95, s.P99 = l.P50, l.P95, l.P99
	r.notifySample(s)
}

// addObservation records what the sampler read at t, and an event for
// each alert that started or stopped firing.
func (r *recorder) addObservation(t time.Duration, o observation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.at(int(t / time.Second))
	s.PoolSize, s.RunningSize, s.StartingSize, s.DrainingSize = o.size, o.running, o.starting, o.draining
	s.AvgCPU, s.CPU, s.Alerts = o.avgCPU, o.cpu, o.alerts
	if o.size >= 0 {
		r.pool = [2]int{o.size, o.running}
	}
	r.notifySample(s)
	if o.alerts != nil {
		for _, e := range alertEvents(report.Sample{T: t}, r.alerts, o.alerts) {
			r.events = append(r.events, e)
			r.notifyEvent(e)
		}
		r.alerts = o.alerts
	}
}

func (r *recorder) addEvent(e report.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	r.notifyEvent(e)
}

// addDecisions turns the autoscaler's new decisions that changed, held or
// failed to change the pool into events.
func (r *recorder) addDecisions(start time.Time, recs []autoscaler.Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range recs {
		kind := decisionKind(d)
		if r.seen[d.Time] || kind == "" {
			continue
		}
		r.seen[d.Time] = true
		reason := d.Message
		if d.Error != "" {
			reason += ": " + d.Error
		}
		e := report.Event{T: d.Time.Sub(start), Kind: kind, From: d.From, To: d.To, Reason: reason}
		r.events = append(r.events, e)
		r.notifyEvent(e)
	}
}

func (r *recorder) lastPool() (size, running int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pool[0], r.pool[1]
}

// latest returns the newest sample with load data, the newest with pool
// data, and the number of failed requests so far.
func (r *recorder) latest() (load, pool report.Sample, failed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	lk, pk := -1, -1
	for k, s := range r.samples {
		failed += s.Errors
		if s.OfferedRPS > 0 && k > lk {
			lk = k
		}
		if s.PoolSize >= 0 && k > pk {
			pk = k
		}
	}
	if lk >= 0 {
		load = *r.samples[lk]
	}
	pool = report.Sample{PoolSize: -1, RunningSize: -1, StartingSize: -1, DrainingSize: -1, AvgCPU: math.NaN()}
	if pk >= 0 {
		pool = *r.samples[pk]
	}
	return load, pool, failed
}

func (r *recorder) snapshot() ([]report.Sample, []report.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]report.Sample, 0, len(r.samples))
	for _, s := range r.samples {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].T < out[j].T })
	ev := append([]report.Event(nil), r.events...)
	sort.SliceStable(ev, func(i, j int) bool { return ev[i].T < ev[j].T })
	return out, ev
}

// sample polls the cloud, Prometheus and the autoscaler once a second until
// ctx ends.
func sample(ctx context.Context, start time.Time, client *v3.Client, poolID v3.UUID, promURL string, scaler *autoscaler.Autoscaler, rec *recorder, log *slog.Logger) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		t := time.Since(start)
		qctx, cancel := context.WithTimeout(ctx, 900*time.Millisecond)
		o := unknownObservation()
		o.cpu = map[string]float64{}
		size, running, runningIDs, err := poolMembers(qctx, client, poolID)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				log.Warn("sample pool", "err", err)
			}
		default:
			o.size, o.running, o.starting = size, running, size-running
			if n, err := countDraining(qctx, promURL, runningIDs); err == nil {
				o.draining = n
			}
		}
		if v, err := promquery.Instant(qctx, promURL, poolCPUSeries); err == nil && len(v) > 0 {
			o.avgCPU = v[0].Value
		}
		if v, err := promquery.Instant(qctx, promURL, instanceCPUSeries); err == nil {
			for _, s := range v {
				name := s.Labels["instance_name"]
				if name == "" {
					name = s.Labels["instance"]
				}
				o.cpu[name] = s.Value
			}
		}
		if a, err := promquery.AlertStates(qctx, promURL); err == nil {
			o.alerts = a
		}
		cancel()
		rec.addObservation(t, o)
		rec.addDecisions(start, scaler.Status().Decisions)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// progress prints one line every period until ctx ends.
func progress(ctx context.Context, out io.Writer, period time.Duration, start time.Time, rec *recorder) {
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		load, pool, failed := rec.latest()
		fmt.Fprintln(out, progressLine(time.Since(start), load, pool, failed))
	}
}

// progressLine formats one progress line: load and latency of the newest
// complete second, the newest pool observation, and failures so far.
func progressLine(elapsed time.Duration, load, pool report.Sample, failed int) string {
	cpu := "  n/a"
	if !math.IsNaN(pool.AvgCPU) {
		cpu = fmt.Sprintf("%4.0f%%", pool.AvgCPU*100)
	}
	size := "?"
	if pool.PoolSize >= 0 {
		size = fmt.Sprintf("%d (%d running)", pool.PoolSize, pool.RunningSize)
	}
	return fmt.Sprintf("[%6s] offered %5.1f req/s  pool %-14s avg CPU %s  p95 %6s  errors %d",
		elapsed.Round(time.Second), load.OfferedRPS, size, cpu, load.P95.Round(time.Millisecond), failed)
}
