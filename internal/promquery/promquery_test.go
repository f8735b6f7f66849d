package promquery

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
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
