package app

import (
	"context"
	"net/http/httptest"
	"testing"
)

// counter returns the value of the counter name with label path, summed
// over its other labels.
func counter(t *testing.T, s *Server, name, path string) float64 {
	t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "path" && l.GetValue() == path {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// TestArrivalsCountedOnArrival checks that tidepool_app_arrivals_total
// counts a request when it arrives, while it still waits for a work slot,
// so that it leads the answered requests (and the CPU) when the app is
// saturated.
func TestArrivalsCountedOnArrival(t *testing.T) {
	s := New(Config{Concurrency: 1})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan struct{}, 2)
	for range 2 {
		go func() {
			s.Handler().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/?work=2s", nil).WithContext(ctx))
			done <- struct{}{}
		}()
	}
	waitFor(t, func() bool { return counter(t, s, "tidepool_app_arrivals_total", "/") == 2 })
	if got := counter(t, s, "tidepool_app_requests_total", "/"); got != 0 {
		t.Errorf("answered = %v while both requests are in flight, want 0", got)
	}
	cancel()
	<-done
	<-done
	if got, want := counter(t, s, "tidepool_app_arrivals_total", "/"), counter(t, s, "tidepool_app_requests_total", "/"); got != want {
		t.Errorf("arrivals = %v, answered = %v after both ended, want equal", got, want)
	}
	s.Handler().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/health", nil))
	if got := counter(t, s, "tidepool_app_arrivals_total", "/health"); got != 0 {
		t.Errorf("arrivals of /health = %v, want 0 (not instrumented)", got)
	}
}
