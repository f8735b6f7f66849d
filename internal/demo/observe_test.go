package demo

import (
	"reflect"
	"testing"
	"time"

	"tidepool/internal/autoscaler"
	"tidepool/internal/autoscaler/policy"
	"tidepool/internal/report"
)

func TestAlertEvents(t *testing.T) {
	const hi, lo = "TidepoolPoolCPUHigh", "TidepoolPoolCPULow"
	at := report.Sample{T: 7 * time.Second}
	tests := []struct {
		name      string
		prev, cur map[string]string
		want      []string // kind + reason
	}{
		{"unknown now", map[string]string{hi: report.AlertFiring}, nil, nil},
		{"pending is not firing", map[string]string{hi: report.AlertInactive}, map[string]string{hi: report.AlertPending}, nil},
		{"fires", map[string]string{hi: report.AlertPending}, map[string]string{hi: report.AlertFiring, lo: report.AlertInactive},
			[]string{"alert-up alert TidepoolPoolCPUHigh started firing"}},
		{"first observation firing", nil, map[string]string{lo: report.AlertFiring}, []string{"alert-up alert TidepoolPoolCPULow started firing"}},
		{"one resolves, one fires", map[string]string{hi: report.AlertFiring, lo: report.AlertInactive}, map[string]string{hi: report.AlertInactive, lo: report.AlertFiring},
			[]string{"alert-down alert TidepoolPoolCPUHigh stopped firing (now inactive)", "alert-up alert TidepoolPoolCPULow started firing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, e := range alertEvents(at, tt.prev, tt.cur) {
				if e.T != at.T {
					t.Errorf("event at %s, want %s", e.T, at.T)
				}
				got = append(got, e.Kind+" "+e.Reason)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("alertEvents = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRecorderEvents(t *testing.T) {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var told observed
	rec := newRecorder(&told)
	o := unknownObservation()
	o.alerts = map[string]string{"A": report.AlertFiring}
	rec.addObservation(2*time.Second, o)
	rec.addObservation(3*time.Second, o) // no change, no event
	dec := func(sec, from, to int, result string) autoscaler.Record {
		return autoscaler.Record{Time: start.Add(time.Duration(sec) * time.Second), Result: result,
			Decision: policy.Decision{From: from, To: to, Message: "because"}}
	}
	recs := []autoscaler.Record{dec(5, 1, 2, "scaled"), dec(10, 2, 2, "noop"), dec(15, 2, 3, "held"), dec(20, 3, 2, "scaled"), dec(25, 2, 1, "error")}
	rec.addDecisions(start, recs)
	rec.addDecisions(start, recs) // seen ones are not added again
	samples, events := rec.snapshot()
	var got []string
	for _, e := range events {
		got = append(got, e.T.String()+" "+e.Kind)
	}
	want := []string{"2s alert-up", "5s scale-out", "15s scale-held", "20s scale-in", "25s scale-failed"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
	if len(samples) != 2 || samples[0].StartingSize != -1 || samples[0].DrainingSize != -1 || samples[0].Alerts["A"] != report.AlertFiring {
		t.Errorf("samples %+v, want 2 with unknown starting/draining and the alert state", samples)
	}
	if !reflect.DeepEqual(told.events, events) {
		t.Errorf("observer told events %+v, want the recorded %+v", told.events, events)
	}
}
