package apispec

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func loadOrSkip(t *testing.T) *Spec {
	t.Helper()
	path, err := Locate(".")
	if errors.Is(err, ErrNotFound) {
		t.Skipf("Exoscale OpenAPI spec absent: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	s, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const (
	poolID = "1c8b2b58-0d41-4a6b-9a5e-9d3b3ef0c7a1"
	goodOp = `{"id":"5f2a1c9e-8b7d-4e3f-a2b1-c0d9e8f7a6b5","state":"pending","reference":{"id":"` + poolID + `"}}`
)

func TestCheck(t *testing.T) {
	s := loadOrSkip(t)
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	tests := []struct {
		name     string
		method   string
		path     string
		body     string
		status   int
		respBody string
		want     []string // substrings, one per expected mismatch
	}{
		{name: "conforming scale", method: "PUT", path: "/v2/instance-pool/" + poolID + ":scale", body: `{"size":2}`, status: 200, respBody: goodOp},
		{name: "zone path prefix", method: "PUT", path: "/zone/de-fra-1/v2/instance-pool/" + poolID + ":scale", body: `{"size":2}`, status: 200, respBody: goodOp},
		{name: "accepted invalid request", method: "PUT", path: "/v2/instance-pool/" + poolID + ":scale", body: `{"size":"two"}`, status: 200, respBody: goodOp,
			want: []string{"accepted although the spec rejects it"}},
		{name: "rejected invalid request", method: "PUT", path: "/v2/instance-pool/" + poolID + ":scale", body: `{"size":"two"}`, status: 400, respBody: `{"message":"bad size"}`},
		{name: "error body not JSON message", method: "GET", path: "/v2/instance-pool/" + poolID, status: 404, respBody: `not found`,
			want: []string{`is not {"message": "..."}`}},
		{name: "served path not in the spec", method: "GET", path: "/v2/network-load-balancer", status: 200, respBody: `{}`,
			want: []string{"the spec has no such operation"}},
		{name: "unserved path not in the spec", method: "GET", path: "/v2/network-load-balancer", status: 404, respBody: `{"message":"no"}`},
		{name: "bad enum in response", method: "GET", path: "/v2/operation/" + poolID, status: 200,
			respBody: `{"id":"` + poolID + `","state":"done","reference":{"id":"` + poolID + `"}}`, want: []string{"/state"}},
		{name: "missing field Exoscale always returns", method: "GET", path: "/v2/operation/" + poolID, status: 200,
			respBody: `{"id":"` + poolID + `","state":"success"}`, want: []string{`lacks "reference"`}},
		{name: "missing boolean", method: "GET", path: "/v2/instance/" + poolID, status: 200,
			respBody: `{"id":"` + poolID + `","name":"a","state":"running","created-at":"2024-05-01T00:00:00Z","instance-type":{"id":"` + poolID + `"},` +
				`"template":{"id":"` + poolID + `"},"disk-size":10,"public-ip-assignment":"inet4","mac-address":"06:00:00:00:00:01",` +
				`"tpm-enabled":false,"disk-encrypted":false,"application-consistent-snapshot-enabled":false}`,
			want: []string{`lacks "secureboot-enabled"`}},
		{name: "tolerated short health check", method: "POST", path: "/v2/load-balancer/" + poolID + "/service", status: 200, respBody: goodOp,
			body: `{"name":"web","port":80,"target-port":8080,"protocol":"tcp","strategy":"round-robin","instance-pool":{"id":"` + poolID + `"},` +
				`"healthcheck":{"mode":"tcp","port":8080,"interval":1,"timeout":1,"retries":1}}`},
		{name: "tolerated security group rules in a response", method: "GET", path: "/v2/security-group/" + poolID, status: 200,
			respBody: `{"id":"` + poolID + `","name":"web","rules":[{"id":"` + poolID + `","flow-direction":"ingress","protocol":"tcp","start-port":80,"end-port":80,"network":"0.0.0.0/0"}]}`},
		{name: "role without the policy egoscale v2 dereferences", method: "GET", path: "/v2/iam-role/" + poolID, status: 200,
			respBody: `{"id":"` + poolID + `","name":"agents","editable":true}`, want: []string{`iam-role lacks "policy"`}},
		{name: "not an API request", method: "GET", path: "/metrics", status: 200, respBody: "# metrics"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := url.Parse(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			header := http.Header{}
			if tt.body != "" {
				header.Set("Content-Type", "application/json")
			}
			_, got := s.Check(context.Background(), Exchange{
				Method: tt.method, URL: u, Header: header, Body: []byte(tt.body),
				Status: tt.status, ResponseHeader: jsonHeader, ResponseBody: []byte(tt.respBody),
			})
			if len(got) != len(tt.want) {
				t.Fatalf("got %d mismatches %v, want %d (%q)", len(got), got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i].String(), w) {
					t.Errorf("mismatch %d = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}

// TestHandler checks that the middleware passes the exchange through
// unchanged, reports mismatches and counts conforming operations.
func TestHandler(t *testing.T) {
	s := loadOrSkip(t)
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/v2/zone" {
			w.Write([]byte(`{"zones":[{"name":"ch-gva-2","api-endpoint":"http://x/v2"}]}`))
			return
		}
		w.Write([]byte(`{"zones":[{"name":"nowhere"}]}`)) // served at an unknown path
	})
	var cov Coverage
	var reported []Mismatch
	h := s.Handler(api, &cov, func(m Mismatch) { reported = append(reported, m) })

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v2/zone", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "ch-gva-2") {
		t.Errorf("response %d %q, want the handler's", rec.Code, rec.Body)
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v2/nowhere", nil))
	if len(reported) != 1 || reported[0].Path != "/v2/nowhere" {
		t.Errorf("reported %v, want one mismatch for /v2/nowhere", reported)
	}
	if got := cov.Operations(); len(got) != 1 || got[0] != "GET /zone" {
		t.Errorf("coverage %v, want [GET /zone]", got)
	}
}
