package live

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"tidepool/internal/report"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sseEvent is one event read from a stream.
type sseEvent struct {
	name string
	msg  map[string]any
}

// stream reads the server's event stream in the background.
type stream struct {
	events chan sseEvent
	done   chan struct{} // closed when the stream ended; err is then set
	err    error
}

func openStream(t *testing.T, url string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q, want text/event-stream", ct)
	}
	s := &stream{events: make(chan sseEvent, 100), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<24)
		var name string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				var m map[string]any
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &m); err != nil {
					s.err = err
					return
				}
				s.events <- sseEvent{name, m}
			}
		}
		s.err = sc.Err()
	}()
	t.Cleanup(func() { cancel(); <-s.done })
	return s
}

// next returns the next event, failing after a few seconds.
func (s *stream) next(t *testing.T) sseEvent {
	t.Helper()
	select {
	case e := <-s.events:
		return e
	case <-s.done:
		select { // events read before the end come first
		case e := <-s.events:
			return e
		default:
		}
		t.Fatalf("stream ended: %v", s.err)
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return sseEvent{}
}

func sample(sec int, pool int) report.Sample {
	return report.Sample{T: time.Duration(sec) * time.Second, OfferedRPS: 10, AnsweredRPS: 9.5, OK: 9,
		PoolSize: pool, RunningSize: pool, StartingSize: 0, DrainingSize: 0, AvgCPU: math.NaN(),
		P95: 40 * time.Millisecond, Alerts: map[string]string{"TidepoolPoolCPUHigh": report.AlertPending}}
}

func TestEventStream(t *testing.T) {
	srv := New(Config{Title: "test run", Interval: 50 * time.Millisecond})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	srv.SetLinks(Link{Name: "Prometheus", URL: "http://127.0.0.1:9090"})
	samples := []report.Sample{sample(0, 1), sample(1, 1)}
	events := []report.Event{{T: time.Second, Kind: report.KindScaleOut, From: 1, To: 2, Reason: "from 1 to 2 because a scale-up signal arrived"}}
	srv.Publish(samples, events)

	st := openStream(t, ts.URL)
	init := st.next(t)
	if init.name != "init" {
		t.Fatalf("first event %q, want init", init.name)
	}
	spec := init.msg["spec"].(map[string]any)
	if spec["title"] != "test run" || len(spec["panels"].([]any)) != len(report.Panels()) {
		t.Errorf("init spec = %v, want the title and the report's %d panels", spec, len(report.Panels()))
	}
	if got := len(init.msg["samples"].([]any)); got != 2 {
		t.Errorf("init has %d samples, want 2", got)
	}
	s0 := init.msg["samples"].([]any)[0].(map[string]any)
	v := s0["v"].(map[string]any)
	if v["cpu"] != nil || v["pool"] != 1.0 || v["p95"] != 40.0 || v["p50"] != nil {
		t.Errorf("sample values %v, want cpu null (NaN), pool 1, p95 40 ms, p50 null", v)
	}
	if s0["alerts"].(map[string]any)["TidepoolPoolCPUHigh"] != "pending" {
		t.Errorf("sample alerts %v, want the pending alert", s0["alerts"])
	}
	ev := init.msg["events"].([]any)[0].(map[string]any)
	if ev["kind"] != "scale-out" || ev["label"] != "+1 → 2" || ev["clock"] != "0:01" || !strings.Contains(ev["reason"].(string), "scale-up signal") {
		t.Errorf("event %v, want the scale-out with label, clock and reason", ev)
	}
	if l := init.msg["links"].([]any); len(l) != 1 {
		t.Errorf("links %v, want Prometheus", l)
	}

	// Nothing changed: an empty update still arrives within the interval.
	up := st.next(t)
	if up.name != "update" || len(up.msg["samples"].([]any)) != 0 || up.msg["events"] != nil {
		t.Errorf("idle update = %v %v, want an update without samples or events", up.name, up.msg)
	}

	// One sample changes, one is new: only those two are sent.
	samples[1].PoolSize = 2
	samples = append(samples, sample(2, 2))
	srv.Publish(samples, events)
	var got []any
	for len(got) == 0 {
		up = st.next(t)
		got = up.msg["samples"].([]any)
	}
	if len(got) != 2 || got[0].(map[string]any)["t"] != 1.0 || got[1].(map[string]any)["t"] != 2.0 {
		t.Errorf("update samples = %v, want t=1 and t=2 only", got)
	}
	if up.msg["events"] != nil {
		t.Errorf("events sent again although unchanged: %v", up.msg["events"])
	}

	// Finish sends the report and ends the stream; Finish returns once sent.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Finish(ctx, []byte("<html>final</html>")); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	for {
		up = st.next(t)
		if up.msg["finished"] == true {
			break
		}
	}
	if up.msg["report"] != "<html>final</html>" {
		t.Errorf("final update report = %v", up.msg["report"])
	}
	select {
	case <-st.done:
		if st.err != nil {
			t.Errorf("stream: %v", st.err)
		}
	case <-time.After(5 * time.Second):
		t.Error("stream still open after the final update")
	}

	// A later visitor gets everything, finished, at once; Publish is ignored.
	srv.Publish(nil, nil)
	resp, err := http.Get(ts.URL + "/state.json")
	if err != nil {
		t.Fatal(err)
	}
	var state map[string]any
	json.NewDecoder(resp.Body).Decode(&state)
	resp.Body.Close()
	if state["finished"] != true || len(state["samples"].([]any)) != 3 {
		t.Errorf("state after finish: finished %v, %d samples; want true, 3", state["finished"], len(state["samples"].([]any)))
	}
	if body := get(t, ts.URL+"/report.html", http.StatusOK); body != "<html>final</html>" {
		t.Errorf("/report.html = %q", body)
	}
}

func TestFinishWithoutPages(t *testing.T) {
	srv := New(Config{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := srv.Finish(ctx, nil); err != nil {
		t.Errorf("Finish with no page = %v, want nil at once", err)
	}
	if err := srv.Finish(ctx, nil); err != nil {
		t.Errorf("second Finish = %v, want nil", err)
	}
}

func TestFinishTimesOutOnStuckPage(t *testing.T) {
	srv := New(Config{Interval: time.Hour})
	// A stream that is being served but cannot be written to: Finish waits
	// for it until ctx ends.
	srv.mu.Lock()
	srv.streams++
	srv.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := srv.Finish(ctx, nil); err != context.DeadlineExceeded {
		t.Errorf("Finish = %v, want DeadlineExceeded", err)
	}
}

func get(t *testing.T, url string, code int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != code {
		t.Errorf("GET %s = %d, want %d", url, resp.StatusCode, code)
	}
	return string(b)
}

// TestPageAssets checks that the page, its script and uPlot are served from
// the binary, with a policy that forbids fetching anything elsewhere, and
// that the page refers to nothing outside the server.
func TestPageAssets(t *testing.T) {
	ts := httptest.NewServer(New(Config{}).Handler())
	defer ts.Close()
	page := get(t, ts.URL+"/", http.StatusOK)
	refs := regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 4 {
		t.Fatalf("page refers to %d resources, want the scripts and styles", len(refs))
	}
	for _, r := range refs {
		ref := r[1]
		if ref == "data:," || ref == "report.html" {
			continue
		}
		if strings.Contains(ref, "//") || !strings.HasPrefix(ref, "assets/") {
			t.Errorf("page refers to %q, want a path under assets/", ref)
			continue
		}
		get(t, ts.URL+"/"+ref, http.StatusOK)
	}
	resp, err := http.Get(ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	get(t, ts.URL+"/report.html", http.StatusNotFound)
	get(t, ts.URL+"/assets/nothing.js", http.StatusNotFound)
}

// TestUPlotNotice checks the vendored uPlot files against the sums in
// assets/uplot/NOTICE.
func TestUPlotNotice(t *testing.T) {
	notice, err := os.ReadFile(filepath.Join("assets", "uplot", "NOTICE"))
	if err != nil {
		t.Fatal(err)
	}
	sums := regexp.MustCompile(`package/(?:dist/)?(\S+)\s+sha256 ([0-9a-f]{64})`).FindAllStringSubmatch(string(notice), -1)
	if len(sums) != 3 {
		t.Fatalf("NOTICE lists %d files with sums, want 3", len(sums))
	}
	for _, m := range sums {
		b, err := os.ReadFile(filepath.Join("assets", "uplot", m[1]))
		if err != nil {
			t.Error(err)
			continue
		}
		if h := sha256.Sum256(b); hex.EncodeToString(h[:]) != m[2] {
			t.Errorf("%s: sha256 %x, NOTICE says %s", m[1], h, m[2])
		}
	}
	if !strings.Contains(string(notice), "uplot-1.6.32.tgz") {
		t.Error("NOTICE does not name the npm tarball")
	}
}

func TestListenFallsBack(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	ln, fellBack, err := Listen(busy.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if !fellBack || ln.Addr().String() == busy.Addr().String() {
		t.Errorf("Listen(busy %s) = %s, fell back %v; want another port", busy.Addr(), ln.Addr(), fellBack)
	}
	ln2, fellBack, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln2.Close()
	if fellBack {
		t.Error("Listen(port 0) reports a fallback")
	}
	if _, _, err := Listen("256.0.0.1:1"); err == nil {
		t.Error("Listen(bad address) succeeded")
	}
}

func TestNumJSON(t *testing.T) {
	b, err := json.Marshal([]num{1.5, num(math.NaN()), num(math.Inf(1)), 0})
	if err != nil || string(b) != "[1.5,null,null,0]" {
		t.Errorf("Marshal = %s, %v; want [1.5,null,null,0]", b, err)
	}
}
