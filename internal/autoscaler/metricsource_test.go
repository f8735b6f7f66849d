package autoscaler

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"tidepool/internal/autoscaler/policy"
	"tidepool/internal/promrun"
)

// fakeMetrics is a MetricSource whose answer the test sets.
type fakeMetrics struct {
	mu    sync.Mutex
	m     policy.Metrics
	err   error
	calls int
}

func (f *fakeMetrics) set(m policy.Metrics, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m, f.err = m, err
}

func (f *fakeMetrics) PoolMetrics(ctx context.Context) (policy.Metrics, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return f.m, f.err
}

// TestTickTargetTracking drives the control loop with the target-tracking
// policy: it reads the metric every tick, grows the pool in one step, keeps
// the recommendation history across ticks so the scale-down waits for the
// stabilisation window, and holds on unknown metrics or a read error.
func TestTickTargetTracking(t *testing.T) {
	f := newLocalCloud(t, 2)
	src := &fakeMetrics{}
	a, clk, logs := newTestAutoscaler(t, f, func(c *Config) {
		c.Policy = policy.TargetTracking{Limits: policy.Limits{Min: 1, Max: 6}, Target: 0.5, Tolerance: 0.1,
			ScaleDownStabilization: 3 * time.Minute}
		c.Metrics = src
	})
	steps := []struct {
		m          policy.Metrics
		err        error
		wantTo     int
		wantReason policy.Reason
		wantResult string
	}{
		{m: policy.Metrics{}, wantTo: 2, wantReason: policy.ReasonNoMetrics, wantResult: resultHeld},
		{m: policy.Metrics{CPU: 0.95, Valid: true}, wantTo: 4, wantReason: policy.ReasonAboveTarget, wantResult: resultScaled},
		{m: policy.Metrics{CPU: 0.5, Valid: true}, wantTo: 4, wantReason: policy.ReasonWithinTolerance, wantResult: resultNoop},
		// The load halves: the recommendation is 2, but the window still
		// holds the recommendation 4 of the last two minutes.
		{m: policy.Metrics{CPU: 0.25, Valid: true}, wantTo: 4, wantReason: policy.ReasonStabilizing, wantResult: resultHeld},
		{err: errors.New("prometheus down"), wantTo: 4, wantReason: policy.ReasonNoMetrics, wantResult: resultHeld},
		// Three minutes after the last recommendation of 4.
		{m: policy.Metrics{CPU: 0.25, Valid: true}, wantTo: 2, wantReason: policy.ReasonBelowTarget, wantResult: resultScaled},
	}
	for i, st := range steps {
		src.set(st.m, st.err)
		d, err := a.Tick(context.Background())
		if err != nil {
			t.Fatalf("tick %d: %v", i, err)
		}
		if d.To != st.wantTo || d.Reason != st.wantReason {
			t.Fatalf("tick %d: decision from %d to %d %s (%s), want to %d %s", i, d.From, d.To, d.Reason, d.Message, st.wantTo, st.wantReason)
		}
		if got := a.Status().Decisions[0].Result; got != st.wantResult {
			t.Errorf("tick %d: result %s, want %s", i, got, st.wantResult)
		}
		if got := f.poolSize(); got != st.wantTo {
			t.Errorf("tick %d: pool size %d, want %d", i, got, st.wantTo)
		}
		clk.Advance(time.Minute)
	}
	if src.calls != len(steps) {
		t.Errorf("metric source read %d times, want once per tick (%d)", src.calls, len(steps))
	}
	if !strings.Contains(logs.String(), "cannot read the pool metrics") || !strings.Contains(logs.String(), "prometheus down") {
		t.Errorf("log lacks the metric read error:\n%s", logs)
	}
}

// promAPI serves canned /api/v1/query answers keyed by the query.
func promAPI(t *testing.T, answers map[string]string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := answers[r.FormValue("query")]
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			body = `{"status":"error","errorType":"bad_data","error":"unknown query"}`
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func vector(values ...string) string {
	var items []string
	for i, v := range values {
		items = append(items, fmt.Sprintf(`{"metric":{"i":"%d"},"value":[1700000000,"%s"]}`, i, v))
	}
	return `{"status":"success","data":{"resultType":"vector","result":[` + strings.Join(items, ",") + `]}}`
}

func TestPrometheusMetrics(t *testing.T) {
	tests := []struct {
		name    string
		cpu     string // answer to the CPU query; "" means the query fails
		members string // answer to the members query; "" means it fails
		want    policy.Metrics
		wantErr string
	}{
		{name: "value and count", cpu: vector("0.73"), members: vector("3"), want: policy.Metrics{CPU: 0.73, Members: 3, Valid: true}},
		{name: "count query fails", cpu: vector("0.73"), want: policy.Metrics{CPU: 0.73, Valid: true}},
		{name: "no data yet", cpu: vector(), members: vector(), want: policy.Metrics{}},
		{name: "NaN is unknown", cpu: vector("NaN"), members: vector("2"), want: policy.Metrics{}},
		{name: "two series", cpu: vector("0.5", "0.6"), wantErr: "returned 2 series"},
		{name: "negative", cpu: vector("-1"), wantErr: "returned -1"},
		{name: "query error", wantErr: "unknown query"},
		{name: "not JSON", cpu: "<html>", wantErr: "read pool cpu"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			answers := map[string]string{}
			if tt.cpu != "" {
				answers[DefaultCPUQuery] = tt.cpu
			}
			if tt.members != "" {
				answers[DefaultMembersQuery] = tt.members
			}
			got, err := PrometheusMetrics{URL: promAPI(t, answers)}.PoolMetrics(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("PoolMetrics = %+v, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("PoolMetrics = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	if _, err := (PrometheusMetrics{}).PoolMetrics(context.Background()); err == nil {
		t.Error("PoolMetrics without URL: no error")
	}
}

// TestPrometheusMetricsRealPrometheus reads the recording rules' series from
// a real Prometheus whose rules record them from constants.
func TestPrometheusMetricsRealPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prometheus")
	}
	if _, err := promrun.PrometheusBinary(); err != nil {
		t.Skip(err)
	}
	prom := startPrometheus(t, `      - record: instance:node_cpu_utilisation:ratio
        expr: label_replace(vector(0.7), "instance", "a", "", "") or label_replace(vector(0.76), "instance", "b", "", "")
      - record: pool:node_cpu_utilisation:avg
        expr: avg(instance:node_cpu_utilisation:ratio)
`)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src := PrometheusMetrics{URL: prom.URL}
	var got policy.Metrics
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if got, err = src.PoolMetrics(ctx); err != nil {
			t.Fatalf("PoolMetrics: %v", err)
		}
		if got.Valid && got.Members == 2 {
			break
		}
	}
	if !got.Valid || math.Abs(got.CPU-0.73) > 1e-9 || got.Members != 2 {
		t.Errorf("PoolMetrics = %+v, want CPU 0.73 over 2 members", got)
	}
}

// startPrometheus starts a real Prometheus evaluating rules (the rules of
// one group, indented as its list items) every second, stopped at the end
// of the test.
func startPrometheus(t *testing.T, rules string) *promrun.Process {
	t.Helper()
	dir := t.TempDir()
	conf := "global:\n  evaluation_interval: 1s\nrule_files: [" + filepath.Join(dir, "rules.yml") + "]\n"
	files := map[string]string{"rules.yml": "groups:\n  - name: t\n    interval: 1s\n    rules:\n" + rules, "prometheus.yml": conf}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prom, err := promrun.StartPrometheus(ctx, promrun.Config{ConfigFile: filepath.Join(dir, "prometheus.yml"), DataDir: filepath.Join(dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prom.Stop)
	return prom
}
