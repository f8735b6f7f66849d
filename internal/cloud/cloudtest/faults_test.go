package cloudtest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestWithFaults checks each kind of fault against a stand-in for the
// cloud that counts the requests reaching it.
func TestWithFaults(t *testing.T) {
	tests := []struct {
		name        string
		fault       Fault
		wantStatus  int
		wantBody    string
		wantReached int32
	}{
		{"passed through", Fault{}, http.StatusOK, "cloud", 1},
		{"failed before", Fault{Status: 503}, 503, `{"message":"fault injected by cloudtest"}`, 0},
		{"lost after", Fault{Status: 502, After: true}, 502, "fault injected", 1},
		{"garbled", Fault{Body: `{"instances":[{"id":`}, http.StatusOK, `{"instances":[{"id":`, 0},
		{"plain text", Fault{Status: 503, Body: "upstream unavailable", ContentType: "text/plain"}, 503, "upstream unavailable", 0},
		{"delayed", Fault{Delay: 50 * time.Millisecond}, http.StatusOK, "cloud", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var reached atomic.Int32
			cloud := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reached.Add(1)
				io.WriteString(w, "cloud")
			})
			srv := httptest.NewServer(withFaults(cloud, func(r *http.Request) (Fault, bool) {
				return tt.fault, r.URL.Path == "/v2/x"
			}))
			defer srv.Close()
			start := time.Now()
			resp, err := http.Get(srv.URL + "/v2/x")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus || !strings.Contains(string(body), tt.wantBody) || reached.Load() != tt.wantReached {
				t.Errorf("got %d %q, %d reached the cloud; want %d %q, %d", resp.StatusCode, body, reached.Load(), tt.wantStatus, tt.wantBody, tt.wantReached)
			}
			if time.Since(start) < tt.fault.Delay {
				t.Errorf("answered after %v; want at least %v", time.Since(start), tt.fault.Delay)
			}
			if resp, err := http.Get(srv.URL + "/v2/other"); err != nil || resp.StatusCode != http.StatusOK {
				t.Errorf("unmatched request: %v, %v; want 200", resp, err)
			} else {
				resp.Body.Close()
			}
		})
	}
	t.Run("hang until the client gives up", func(t *testing.T) {
		srv := httptest.NewServer(withFaults(http.NotFoundHandler(), func(*http.Request) (Fault, bool) { return Fault{Delay: time.Hour}, true }))
		defer srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v2/x", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			t.Fatal("a hung request was answered")
		}
	})
}
