package autoscaler

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"tidepool/internal/monitoring"
	"tidepool/internal/promrun"
)

// promRangeAPI serves the CPU queries, a range query of the arrival rate
// (values at the given offsets from the query's start, in steps) and the
// cost per request, sent as a form (POST or GET). It records the range
// query's parameters.
func promRangeAPI(t *testing.T, rates map[int]string, cost string, got *[3]string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		q := r.Form
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/api/v1/query_range" && q.Get("query") == monitoring.RuleArrivalRate:
			got[0], got[1], got[2] = q.Get("start"), q.Get("end"), q.Get("step")
			if rates == nil {
				fmt.Fprint(w, `{"status":"success","data":{"resultType":"matrix","result":[]}}`)
				return
			}
			start, _ := strconv.ParseFloat(q.Get("start"), 64)
			step, _ := strconv.ParseFloat(q.Get("step"), 64)
			var vals []string
			for i := 0; i < 100; i++ {
				if v, ok := rates[i]; ok {
					vals = append(vals, fmt.Sprintf(`[%.3f,"%s"]`, start+float64(i)*step, v))
				}
			}
			fmt.Fprintf(w, `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[%s]}]}}`, strings.Join(vals, ","))
		case q.Get("query") == DefaultCPUQuery:
			fmt.Fprint(w, vector("0.5"))
		case q.Get("query") == DefaultMembersQuery:
			fmt.Fprint(w, vector("2"))
		case strings.Contains(q.Get("query"), monitoring.RuleCostPerRequest):
			if cost == "" {
				fmt.Fprint(w, vector())
				return
			}
			fmt.Fprint(w, vector(cost))
		default:
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"status":"error","errorType":"bad_data","error":"unknown query"}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestPrometheusMetricsLoad(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	tests := []struct {
		name      string
		q         LoadQuery
		rates     map[int]string // step index -> value
		cost      string
		wantN     int
		wantStep  time.Duration
		wantRates map[int]float64 // NaN elsewhere
		wantCost  float64
		wantNone  bool
	}{
		{name: "rates on the grid, gaps NaN", q: LoadQuery{History: time.Minute, Step: 15 * time.Second, Now: clock},
			rates: map[int]string{0: "10", 1: "12.5", 3: "20", 4: "NaN"}, cost: "0.08",
			wantN: 5, wantStep: 15 * time.Second, wantRates: map[int]float64{0: 10, 1: 12.5, 3: 20}, wantCost: 0.08},
		{name: "default step", q: LoadQuery{History: time.Minute, Now: clock}, rates: map[int]string{4: "3"},
			wantN: 5, wantStep: DefaultLoadStep, wantRates: map[int]float64{4: 3}},
		{name: "long history at a longer step", q: LoadQuery{History: 100 * time.Hour, Step: time.Second, Now: clock}, rates: map[int]string{},
			wantN: 10000, wantStep: 36003 * time.Millisecond, wantRates: map[int]float64{}},
		{name: "cost averaged", q: LoadQuery{History: time.Minute, Step: 15 * time.Second, CostWindow: time.Minute, Now: clock},
			rates: map[int]string{4: "3"}, cost: "0.1", wantN: 5, wantStep: 15 * time.Second, wantRates: map[int]float64{4: 3}, wantCost: 0.1},
		{name: "no data is unknown", q: LoadQuery{History: time.Minute, Now: clock}, wantNone: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var params [3]string
			url := promRangeAPI(t, tt.rates, tt.cost, &params)
			m, err := PrometheusMetrics{URL: url, Load: tt.q}.PoolMetrics(context.Background())
			if err != nil {
				t.Fatalf("PoolMetrics: %v", err)
			}
			if !m.Valid || m.CPU != 0.5 || m.Members != 2 {
				t.Errorf("CPU part = %+v, want 0.5 over 2 members", m)
			}
			l := m.Load
			if tt.wantNone {
				if l.Rates != nil || l.Known() {
					t.Errorf("Load = %+v, want unknown", l)
				}
				return
			}
			if len(l.Rates) != tt.wantN || l.Step != tt.wantStep || !l.End.Equal(now) || l.CostPerRequest != tt.wantCost {
				t.Fatalf("Load = %d rates every %s ending %s, cost %v; want %d every %s ending %s, cost %v",
					len(l.Rates), l.Step, l.End, l.CostPerRequest, tt.wantN, tt.wantStep, now, tt.wantCost)
			}
			if want := fmt.Sprintf("%.3f", float64(now.UnixMilli())/1000); params[1] != want {
				t.Errorf("query end = %s, want %s", params[1], want)
			}
			for i, v := range l.Rates {
				want, ok := tt.wantRates[i]
				if ok != !math.IsNaN(v) || (ok && v != want) {
					t.Errorf("rate %d = %v, want %v (set: %v)", i, v, want, ok)
				}
			}
		})
	}
}

// TestPrometheusMetricsLoadRealPrometheus reads the arrival history from a
// real Prometheus whose rule records a constant rate.
func TestPrometheusMetricsLoadRealPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prometheus")
	}
	if _, err := promrun.PrometheusBinary(); err != nil {
		t.Skip(err)
	}
	prom := startPrometheus(t, fmt.Sprintf(`      - record: %s
        expr: vector(0.5)
      - record: %s
        expr: vector(42)
      - record: %s
        expr: vector(0.08)
`, DefaultCPUQuery, monitoring.RuleArrivalRate, monitoring.RuleCostPerRequest))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src := PrometheusMetrics{URL: prom.URL, Load: LoadQuery{History: 10 * time.Second, Step: time.Second}}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		m, err := src.PoolMetrics(ctx)
		if err != nil {
			t.Fatalf("PoolMetrics: %v", err)
		}
		known := 0
		for _, v := range m.Load.Rates {
			if !math.IsNaN(v) {
				if v != 42 {
					t.Fatalf("rate %v, want 42", v)
				}
				known++
			}
		}
		if known >= 3 && m.Load.CostPerRequest == 0.08 && len(m.Load.Rates) == 11 {
			return
		}
	}
	t.Error("no arrival history with 3 rates of 42 and a cost of 0.08 within 30s")
}
