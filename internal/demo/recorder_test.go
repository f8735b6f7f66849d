package demo

import (
	"testing"
	"time"

	"tidepool/internal/autoscaler"
	"tidepool/internal/autoscaler/policy"
	"tidepool/internal/loadgen"
	"tidepool/internal/report"
)

// observed is an Observer that keeps what it is told.
type observed struct {
	samples []report.Sample
	events  []report.Event
}

func (o *observed) Sample(s report.Sample) { o.samples = append(o.samples, s) }
func (o *observed) Event(e report.Event)   { o.events = append(o.events, e) }

// TestRecorderTellsObserver: every recorded part of a sample and every
// event reaches the observer at once, as the report will show it.
func TestRecorderTellsObserver(t *testing.T) {
	var o observed
	r := newRecorder(&o)
	start := time.Now()
	r.addEvent(report.Event{Kind: report.KindLoadStart})
	r.addLoad(start, loadgen.Second{Offset: 2 * time.Second, Offered: 12, Answered: 11, OK: 11})
	r.addObservation(2500*time.Millisecond, observation{size: 3, running: 2, starting: 1, draining: 0, avgCPU: 0.7, cpu: map[string]float64{"a": 0.7}})
	r.addDecisions(start, []autoscaler.Record{
		{Time: start.Add(3 * time.Second), Decision: policy.Decision{From: 2, To: 3}, Result: "scaled"},
		{Time: start.Add(4 * time.Second), Decision: policy.Decision{From: 3, To: 3}, Result: "noop"},
	})
	r.addDecisions(start, []autoscaler.Record{ // seen before: no second event
		{Time: start.Add(3 * time.Second), Decision: policy.Decision{From: 2, To: 3}, Result: "scaled"},
	})

	if len(o.samples) != 2 {
		t.Fatalf("observer got %d samples, want 2 (load part, then pool part)", len(o.samples))
	}
	if s := o.samples[0]; s.T != 2*time.Second || s.OfferedRPS != 12 || s.PoolSize != -1 {
		t.Errorf("first sample %+v, want second 2 with the load and no pool yet", s)
	}
	if s := o.samples[1]; s.T != 2*time.Second || s.OfferedRPS != 12 || s.PoolSize != 3 || s.AvgCPU != 0.7 {
		t.Errorf("second sample %+v, want second 2 with load and pool", s)
	}
	wantKinds := []string{report.KindLoadStart, report.KindScaleOut}
	if len(o.events) != len(wantKinds) {
		t.Fatalf("observer got events %+v, want kinds %v", o.events, wantKinds)
	}
	for i, k := range wantKinds {
		if o.events[i].Kind != k {
			t.Errorf("event %d: kind %v, want %v", i, o.events[i].Kind, k)
		}
	}
	samples, events := r.snapshot()
	if len(samples) != 1 || samples[0].PoolSize != o.samples[1].PoolSize || len(events) != 2 {
		t.Errorf("snapshot: %d samples, %d events; want the observer's last sample and 2 events", len(samples), len(events))
	}
}
