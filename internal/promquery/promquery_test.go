package promquery

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

// promAPI serves canned /api/v1/query answers keyed by the query (sent as
// a form, POST or GET).
func promAPI(t *testing.T, answers map[string]string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		body, ok := answers[r.FormValue("query")]
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			body = `{"status":"error","errorType":"bad_data","error":"parse error"}`
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestInstant(t *testing.T) {
	url := promAPI(t, map[string]string{
		"up": `{"status":"success","data":{"resultType":"vector","result":[` +
			`{"metric":{"__name__":"up","job":"a"},"value":[1700000000,"1"]},` +
			`{"metric":{"__name__":"up","job":"b"},"value":[1700000000,"0"]}]}}`,
		"none":   `{"status":"success","data":{"resultType":"vector","result":[]}}`,
		"nan":    `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"NaN"]}]}}`,
		"scalar": `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"2.5"]}}`,
		"matrix": `{"status":"success","data":{"resultType":"matrix","result":[]}}`,
		"html":   `<html>`,
	})
	tests := []struct {
		expr    string
		want    []Sample
		wantErr string
	}{
		{expr: "up", want: []Sample{{Labels: map[string]string{"__name__": "up", "job": "a"}, Value: 1}, {Labels: map[string]string{"__name__": "up", "job": "b"}, Value: 0}}},
		{expr: "none", want: []Sample{}},
		{expr: "scalar", want: []Sample{{Value: 2.5}}},
		{expr: "matrix", wantErr: `query "matrix": unsupported result type matrix`},
		{expr: "sum(", wantErr: "parse error"},
		{expr: "html", wantErr: `query "html"`},
	}
	for _, tt := range tests {
		got, err := Instant(context.Background(), url, tt.expr)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Instant(%q) = %v, %v; want error containing %q", tt.expr, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Instant(%q) = %+v, %v; want %+v", tt.expr, got, err, tt.want)
		}
	}
	got, err := Instant(context.Background(), url, "nan")
	if err != nil || len(got) != 1 || !math.IsNaN(got[0].Value) {
		t.Errorf("Instant(nan) = %+v, %v; want one NaN sample", got, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Instant(ctx, url, "up"); err == nil {
		t.Error("Instant with a cancelled context: want an error")
	}
}

func TestRange(t *testing.T) {
	start, end := time.UnixMilli(1700000000000), time.UnixMilli(1700000030500)
	var form url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query_range" {
			http.NotFound(w, r)
			return
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		form = r.Form
		w.Header().Set("Content-Type", "application/json")
		switch r.FormValue("query") {
		case "rate":
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"matrix","result":[`+
				`{"metric":{"pool":"p"},"values":[[1700000000,"1.5"],[1700000015.25,"NaN"],[1700000030.5,"2"]]}]}}`)
		case "none":
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"matrix","result":[]}}`)
		case "vector":
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
		case "badtime":
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[["x","1"]]}]}}`)
		default:
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"status":"error","errorType":"bad_data","error":"exceeded maximum resolution"}`)
		}
	}))
	t.Cleanup(srv.Close)

	got, err := Range(context.Background(), srv.URL, "rate", start, end, 15250*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !reflect.DeepEqual(got[0].Labels, map[string]string{"pool": "p"}) || len(got[0].Points) != 3 {
		t.Fatalf("Range(rate) = %+v; want one series {pool=p} of 3 points", got)
	}
	wantT := []time.Time{start, time.UnixMilli(1700000015250), end}
	wantV := []float64{1.5, math.NaN(), 2}
	for i, p := range got[0].Points {
		if !p.T.Equal(wantT[i]) || !(p.V == wantV[i] || math.IsNaN(p.V) && math.IsNaN(wantV[i])) {
			t.Errorf("point %d = %v %v; want %v %v", i, p.T, p.V, wantT[i], wantV[i])
		}
	}
	if want := (url.Values{"query": {"rate"}, "start": {"1700000000.000"}, "end": {"1700000030.500"}, "step": {"15.25"}}); !reflect.DeepEqual(form, want) {
		t.Errorf("form sent = %v; want %v", form, want)
	}

	if got, err := Range(context.Background(), srv.URL, "none", start, end, time.Second); err != nil || len(got) != 0 {
		t.Errorf("Range(none) = %+v, %v; want no series", got, err)
	}
	for expr, wantErr := range map[string]string{
		"vector":  `query range "vector": unsupported result type vector`,
		"badtime": "sample time x is not a number",
		"big":     "exceeded maximum resolution",
	} {
		if got, err := Range(context.Background(), srv.URL, expr, start, end, time.Second); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("Range(%q) = %v, %v; want error containing %q", expr, got, err, wantErr)
		}
	}
}
