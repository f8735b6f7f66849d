package autoscaler

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"tidepool/internal/autoscaler/policy"
)

// page GETs the status page with the given Authorization header ("" for
// none) and returns the status code and body.
func page(t *testing.T, a *Autoscaler, auth string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func TestStatusPage(t *testing.T) {
	f := newFakeCloud(t, 1)
	a, _, _ := newTestAutoscaler(t, f, func(c *Config) {
		c.Policy = policy.Webhook{Limits: policy.Limits{Min: 1, Max: 3, Cooldown: 30 * time.Second}}
	})
	code, body := page(t, a, "")
	if code != http.StatusOK || !strings.Contains(body, "No decision yet") {
		t.Errorf("before a tick: %d, want 200 and no decision\n%s", code, body)
	}
	signal(t, a, http.MethodPost, "/up", "", nil)
	if _, err := a.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	signal(t, a, http.MethodPost, "/down", "", nil)
	code, body = page(t, a, "")
	if code != http.StatusOK {
		t.Fatalf("GET / = %d, want 200", code)
	}
	d := a.Status().Decisions[0]
	for _, want := range []string{
		`<td id="pool-size">2</td>`,
		`<td id="pending">0 up, 1 down`,
		"policy.Webhook", "<th>Min</th><td>1</td>", "<th>Max</th><td>3</td>", "<th>Cooldown</th><td>30s</td>", "<th>Victims</th><td>(default)</td>",
		"<th>tick interval</th>",
		`<tr class="scaled">`, "1 → 2", string(d.Reason), htmlText(d.Message),
		`http-equiv="refresh"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
}

// htmlText escapes s as html/template does in a text node.
func htmlText(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;").Replace(s)
}

func TestStatusPageAuth(t *testing.T) {
	f := newFakeCloud(t, 1)
	a, _, _ := newTestAutoscaler(t, f, func(c *Config) { c.AuthToken = "s3cret" })
	if code, _ := page(t, a, ""); code != http.StatusUnauthorized {
		t.Errorf("without credentials: %d, want 401 as the webhooks", code)
	}
	if code, _ := page(t, a, "Bearer s3cret"); code != http.StatusOK {
		t.Errorf("with the token: %d, want 200", code)
	}
}

func TestDescribePolicy(t *testing.T) {
	name, params := describePolicy(policy.TargetTracking{Limits: policy.Limits{Min: 2, Max: 8}, Target: 0.6, Tolerance: 0.1, ScaleDownStabilization: time.Minute})
	if name != "policy.TargetTracking" {
		t.Errorf("name %q, want policy.TargetTracking", name)
	}
	got := map[string]string{}
	var order []string
	for _, p := range params {
		got[p.Name] = p.Value
		order = append(order, p.Name)
	}
	for k, v := range map[string]string{"Min": "2", "Max": "8", "Target": "0.6", "Tolerance": "0.1", "ScaleDownStabilization": "1m0s", "MaxStep": "0"} {
		if got[k] != v {
			t.Errorf("param %s = %q, want %q (all: %v)", k, got[k], v, params)
		}
	}
	if order[0] != "Min" {
		t.Errorf("params start with %q, want the embedded Limits first", order[0])
	}
	if name, params := describePolicy(nil); name != "none" || params != nil {
		t.Errorf("describePolicy(nil) = %q, %v", name, params)
	}
}
