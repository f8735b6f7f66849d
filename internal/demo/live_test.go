package demo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"tidepool/internal/buildbin"
	"tidepool/internal/live"
	"tidepool/internal/live/browsertest"
	"tidepool/internal/loadgen"
	"tidepool/internal/report"
)

// lineWatcher is a concurrency-safe io.Writer that keeps what was written
// and reports the first line containing a prefix.
type lineWatcher struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	prefix string
	found  chan string
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.found != nil {
		for line := range strings.SplitSeq(w.buf.String(), "\n") {
			if _, rest, ok := strings.Cut(line, w.prefix); ok {
				w.found <- rest
				w.found = nil
				break
			}
		}
	}
	return len(p), nil
}

func (w *lineWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestLiveDemoInBrowser runs a short real demo (fast profile, short load
// stages) with its live page open in a headless Chromium: the page loads
// without console errors, the pool size shown changes during the run, a
// scale-out mark and its reason appear, the final report is shown at the end,
// and the page then holds exactly the samples of the report. Screenshots are
// saved in browsertest.ArtifactDir().
func TestLiveDemoInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a short demo with a browser (about two minutes)")
	}
	b := browsertest.New(t)
	bin, err := buildbin.Tidepool()
	if err != nil {
		t.Fatal(err)
	}
	a, c := 100+rand.IntN(151), rand.IntN(128)*2
	found := make(chan string, 1) // not out.found: out sets that to nil once sent
	out := &lineWatcher{prefix: "live page: ", found: found}
	cfg := Config{
		Profile: "fast",
		OutDir:  t.TempDir(),
		Stages: []loadgen.Stage{
			{Kind: loadgen.KindHold, From: 2, Duration: 5 * time.Second},
			{Kind: loadgen.KindRamp, From: 2, To: 24, Duration: 20 * time.Second},
			{Kind: loadgen.KindHold, From: 24, Duration: 25 * time.Second},
			{Kind: loadgen.KindRamp, From: 24, To: 2, Duration: 5 * time.Second},
			{Kind: loadgen.KindHold, From: 2, Duration: 10 * time.Second},
		},
		MaxSize:      4,
		Settle:       2 * time.Minute,
		AppCommand:   []string{bin, "app"},
		MemberNet:    netip.PrefixFrom(netip.AddrFrom4([4]byte{127, byte(a), byte(c), 0}), 24),
		NLBNet:       netip.PrefixFrom(netip.AddrFrom4([4]byte{127, byte(a), byte(c + 1), 0}), 24),
		CgroupParent: fmt.Sprintf("tidepool-livetest-%d", rand.IntN(1e6)),
		LiveAddr:     "127.0.0.1:0",
		Out:          out,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	type result struct {
		res Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := Run(ctx, cfg)
		done <- result{res, err}
	}()
	var url string
	select {
	case line := <-found:
		url, _, _ = strings.Cut(line, " ")
	case r := <-done:
		t.Fatalf("demo ended before printing the live page: %v\n%s", r.err, out.String())
	case <-time.After(time.Minute):
		t.Fatalf("no live page address printed within a minute:\n%s", out.String())
	}
	if !strings.HasPrefix(url, "http://127.0.0.1:") || !strings.Contains(out.String(), filepath.Join(cfg.OutDir, report.HTMLFile)) {
		t.Errorf("live page line %q: want a loopback URL next to the report path", url)
	}
	if err := b.Navigate(url); err != nil {
		t.Fatal(err)
	}
	wait := func(what, expr string, timeout time.Duration) {
		t.Helper()
		if _, err := browsertest.WaitFor[bool](b, expr, timeout); err != nil {
			cancel()
			r := <-done
			t.Fatalf("%s: %v\nconsole problems: %v\ndemo: %v\n%s", what, err, b.Problems(), r.err, out.String())
		}
	}
	wait("first pool size", `document.getElementById('pool-size').textContent === '1'`, time.Minute)
	wait("pool size grows", `Number(document.getElementById('pool-size').textContent) >= 2`, 3*time.Minute)
	wait("scale-out mark on the pool chart", `(tidepool.drawn.pool || {})['scale-out'] > 0`, 10*time.Second)
	wait("scale-out logged with its reason", `Array.from(document.querySelectorAll('#log tr.scale-out')).some(r => r.textContent.includes('scale-up signal'))`, 10*time.Second)
	wait("scale-in", `(tidepool.drawn.pool || {})['scale-in'] > 0`, 3*time.Minute)
	if err := b.Screenshot(filepath.Join(browsertest.ArtifactDir(), "live-dashboard.png")); err != nil {
		t.Error(err)
	}

	r := <-done
	if r.err != nil {
		t.Fatalf("demo: %v\n%s", r.err, out.String())
	}
	wait("final report", `tidepool.finished && tidepool.reportShown && document.getElementById('report').srcdoc.includes('Summary')`, 30*time.Second)
	if err := b.Screenshot(filepath.Join(browsertest.ArtifactDir(), "live-dashboard-final.png")); err != nil {
		t.Error(err)
	}

	// Live and final agree: the page holds the report's samples and events.
	got, err := browsertest.Eval[string](b, `JSON.stringify(tidepool.sorted)`)
	if err != nil {
		t.Fatal(err)
	}
	want, err := live.SamplesJSON(r.res.Samples)
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("the page's %d samples differ from the report's %d", len(g.([]any)), len(w.([]any)))
	}
	kinds, err := browsertest.Eval[[]string](b, `tidepool.events.map(e => e.kind + ' ' + e.reason)`)
	if err != nil {
		t.Fatal(err)
	}
	var wantKinds []string
	for _, e := range r.res.Events {
		wantKinds = append(wantKinds, e.Kind+" "+e.Reason)
	}
	if !reflect.DeepEqual(kinds, wantKinds) {
		t.Errorf("page events\n%q\nwant the report's\n%q", kinds, wantKinds)
	}
	if p := b.Problems(); len(p) > 0 {
		t.Errorf("console errors on the live page:%s", browsertest.ProblemsText(p))
	}
	t.Logf("screenshots in %s; demo output:\n%s", browsertest.ArtifactDir(), out.String())
}

// TestLivePhase runs the live page phase in a group with a stand-in for the
// load phase that records like the real one: what is recorded reaches an
// open page through the Observer, and when the group stops (the live phase
// last) the page gets the report, written once, and then the server stops.
func TestLivePhase(t *testing.T) {
	cfg, prof, err := Config{OutDir: t.TempDir(), LiveAddr: "127.0.0.1:0"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	found := make(chan string, 1)
	out := &lineWatcher{prefix: "live page: ", found: found}
	cfg.Out = out
	s := &session{cfg: cfg, prof: prof, log: slog.New(slog.DiscardHandler), feed: newLiveFeed()}
	s.rec = newRecorder(s.feed)

	var url string
	messages := make(chan map[string]any, 100) // the page's messages; closed when its stream ends
	load := func(ctx context.Context, ready func()) error {
		ready()
		url, _, _ = strings.Cut(<-found, " ")
		resp, err := http.Get(url + "events")
		if err != nil {
			return err
		}
		go func() {
			defer close(messages)
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(nil, 1<<24)
			for sc.Scan() {
				if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
					var m map[string]any
					if err := json.Unmarshal([]byte(data), &m); err != nil {
						t.Errorf("page message: %v", err)
						return
					}
					messages <- m
				}
			}
		}()
		s.load.start = time.Now()
		s.rec.addEvent(report.Event{Kind: report.KindLoadStart, Reason: "load scenario started"})
		s.rec.addLoad(s.load.start, loadgen.Second{Offset: 2 * time.Second, Offered: 12, Answered: 12, OK: 12})
		s.rec.addObservation(2*time.Second, observation{size: 3, running: 2, starting: 1, draining: 0, avgCPU: 0.7, cpu: map[string]float64{"a": 0.7}})
		timeout := time.After(10 * time.Second)
		for { // until the recorded second reaches the page
			select {
			case m, ok := <-messages:
				if !ok {
					return errors.New("the page's stream ended before the recorded second arrived")
				}
				if samples, _ := m["samples"].([]any); len(samples) > 0 {
					if v := samples[0].(map[string]any)["v"].(map[string]any); v[report.KeyPool] == 3.0 {
						return nil
					}
				}
			case <-timeout:
				return errors.New("the recorded second did not reach the page within 10 s")
			}
		}
	}
	if err := runPhases(context.Background(), []phase{{"live page", s.runLive}, {"load", load}}); err != nil {
		t.Fatalf("phases: %v\n%s", err, out.String())
	}

	var last map[string]any
	for m := range messages {
		last = m
	}
	if last["finished"] != true || !strings.Contains(fmt.Sprint(last["report"]), "Summary") {
		t.Errorf("the page's last message is not the finished run with the report: %v", last)
	}
	res, err := s.result()
	if err != nil || res.HTMLPath != filepath.Join(cfg.OutDir, report.HTMLFile) || len(res.Samples) != 1 {
		t.Errorf("result %+v, %v; want the report written once with the recorded second", res, err)
	}
	if n := strings.Count(out.String(), "report: "); n != 1 {
		t.Errorf("report written %d times, want once:\n%s", n, out.String())
	}
	if resp, err := http.Get(url); err == nil {
		resp.Body.Close()
		t.Errorf("the live page still answers after the run")
	}
}

func TestJoinObservers(t *testing.T) {
	var a, b observed
	if joinObservers() != nil || joinObservers(nil) != nil {
		t.Error("joining no observer is not nil")
	}
	if o := joinObservers(nil, &a); o != Observer(&a) {
		t.Errorf("joining one observer = %v, want it", o)
	}
	o := joinObservers(&a, nil, &b)
	o.Sample(report.Sample{T: time.Second})
	o.Event(report.Event{Kind: report.KindLoadStart})
	for _, x := range []*observed{&a, &b} {
		if len(x.samples) != 1 || len(x.events) != 1 {
			t.Errorf("an observer was told %d samples and %d events, want 1 and 1", len(x.samples), len(x.events))
		}
	}
}
