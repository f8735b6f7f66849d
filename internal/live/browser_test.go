package live

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"tidepool/internal/live/browsertest"
	"tidepool/internal/report"
)

// scripted is a short run fed to the live page step by step: one member,
// the high-CPU alert goes pending then firing, a scale-out to 2 with its
// reason, the new member starts and runs, and a scale-in drains one.
func scripted(steps int) ([]report.Sample, []report.Event) {
	var samples []report.Sample
	events := []report.Event{{T: 0, Kind: report.KindLoadStart, Reason: "load scenario started"}}
	for sec := range steps {
		s := report.Sample{T: time.Duration(sec) * time.Second, OfferedRPS: float64(2 + 2*sec), AnsweredRPS: float64(2 + 2*sec),
			OK: 2 + 2*sec, PoolSize: 1, RunningSize: 1, StartingSize: 0, DrainingSize: 0,
			AvgCPU: math.Min(0.1*float64(sec), 0.95), CPU: map[string]float64{"tidepool-1": math.Min(0.1*float64(sec), 0.95)},
			P50: 20 * time.Millisecond, P95: time.Duration(30+10*sec) * time.Millisecond, P99: time.Duration(40+20*sec) * time.Millisecond,
			Alerts: map[string]string{"TidepoolPoolCPUHigh": report.AlertInactive, "TidepoolPoolCPULow": report.AlertInactive}}
		switch {
		case sec >= 9:
			s.PoolSize, s.RunningSize, s.DrainingSize = 2, 2, 1
			s.CPU["tidepool-2"] = 0.5
		case sec >= 7:
			s.PoolSize, s.RunningSize = 2, 2
			s.CPU["tidepool-2"] = 0.6
		case sec >= 5:
			s.PoolSize, s.StartingSize = 2, 1
		}
		switch {
		case sec >= 4:
			s.Alerts["TidepoolPoolCPUHigh"] = report.AlertFiring
		case sec >= 3:
			s.Alerts["TidepoolPoolCPUHigh"] = report.AlertPending
		}
		samples = append(samples, s)
		switch sec {
		case 4:
			events = append(events, report.Event{T: s.T, Kind: report.KindAlertUp, Reason: "alert TidepoolPoolCPUHigh started firing"})
		case 5:
			events = append(events, report.Event{T: s.T, Kind: report.KindScaleOut, From: 1, To: 2,
				Reason: "from 1 to 2 because a scale-up signal arrived (1 up, 0 down since the last tick)"})
		}
	}
	return samples, events
}

// TestPageInBrowser feeds a scripted run to the live page in a real headless
// Chromium: the page loads without console errors, the pool size changes,
// the scale-out is marked on the charts and logged with its reason, the
// alert turns firing, the final report appears, and the page ends with
// exactly the samples the report was drawn from.
func TestPageInBrowser(t *testing.T) {
	b := browsertest.New(t)
	srv := New(Config{Title: "scripted run", Interval: 200 * time.Millisecond})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	srv.SetLinks(Link{Name: "Prometheus", URL: "http://127.0.0.1:1/"}, Link{Name: "Alertmanager", URL: "http://127.0.0.1:2/"})
	all, allEvents := scripted(12)
	publish := func(n int) {
		var evs []report.Event
		for _, e := range allEvents {
			if e.T < time.Duration(n)*time.Second {
				evs = append(evs, e)
			}
		}
		srv.Publish(all[:n], evs)
	}
	publish(2)
	if err := b.Navigate(ts.URL + "/"); err != nil {
		t.Fatal(err)
	}
	wait := func(what, expr string) {
		t.Helper()
		if _, err := browsertest.WaitFor[bool](b, expr, 10*time.Second); err != nil {
			t.Fatalf("%s: %v (problems: %v)", what, err, b.Problems())
		}
	}
	wait("first pool size", `document.getElementById('pool-size').textContent === '1'`)
	if n, err := browsertest.Eval[int](b, `document.querySelectorAll('#charts .uplot').length`); err != nil || n != len(report.Panels()) {
		t.Errorf("%d uPlot charts (%v), want the report's %d panels", n, err, len(report.Panels()))
	}
	titles, err := browsertest.Eval[[]string](b, `Array.from(document.querySelectorAll('#charts h3')).map(h => h.textContent)`)
	var want []string
	for _, p := range report.Panels() {
		want = append(want, p.Title)
	}
	if err != nil || !reflect.DeepEqual(titles, want) {
		t.Errorf("chart titles %q (%v), want the report's %q", titles, err, want)
	}

	for n := 3; n <= 8; n++ {
		publish(n)
		time.Sleep(150 * time.Millisecond)
	}
	wait("pool size 2", `document.getElementById('pool-size').textContent === '2'`)
	wait("scale-out mark on the pool chart", `(tidepool.drawn.pool || {})['scale-out'] > 0`)
	wait("alert firing", `document.querySelector('[data-alert="TidepoolPoolCPUHigh"] .badge.firing') !== null`)
	wait("alert mark on the CPU chart", `(tidepool.drawn.cpu || {})['alert-up'] > 0`)
	logText, err := browsertest.Eval[string](b, `document.querySelector('#log tr.scale-out').textContent`)
	if err != nil || !strings.Contains(logText, "a scale-up signal arrived") || !strings.Contains(logText, "1 → 2 (+1 → 2)") {
		t.Errorf("log row of the scale-out = %q (%v), want the change and its reason", logText, err)
	}
	publish(12)
	wait("draining member", `document.getElementById('pool-states').textContent.includes('1 draining')`)
	wait("second instance line", `tidepool.meta.instances.length === 2`)
	if err := b.Screenshot(filepath.Join(browsertest.ArtifactDir(), "live-page-scripted.png")); err != nil {
		t.Error(err)
	}

	var html bytes.Buffer
	if err := report.WriteHTML(&html, report.Data{Title: "scripted run", Samples: all, Events: allEvents}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Finish(ctx, html.Bytes()); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	wait("final report", `tidepool.reportShown && document.getElementById('report').srcdoc.includes('Summary')`)
	if st, err := browsertest.Eval[string](b, `document.getElementById('status').textContent`); err != nil || st != "finished" {
		t.Errorf("status %q (%v), want finished", st, err)
	}

	// The page holds exactly the samples the report was drawn from.
	got, err := browsertest.Eval[[]byte](b, `JSON.stringify(tidepool.sorted)`)
	if err != nil {
		t.Fatal(err)
	}
	var gotJSON string
	if err := json.Unmarshal(got, &gotJSON); err != nil {
		t.Fatal(err)
	}
	wantJSON, err := SamplesJSON(all)
	if err != nil {
		t.Fatal(err)
	}
	if !sameJSON(t, []byte(gotJSON), wantJSON) {
		t.Errorf("page samples differ from the report's:\n got %s\nwant %s", gotJSON, wantJSON)
	}
	if p := b.Problems(); len(p) > 0 {
		t.Errorf("console errors on the page:%s", browsertest.ProblemsText(p))
	}
	if err := b.Screenshot(filepath.Join(browsertest.ArtifactDir(), "live-page-scripted-final.png")); err != nil {
		t.Error(err)
	}
	t.Logf("screenshots in %s", browsertest.ArtifactDir())
}

func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("decode %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}
