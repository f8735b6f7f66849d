package autoscaler

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v3 "github.com/exoscale/egoscale/v3"

	"tidepool/internal/autoscaler/policy"
)

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestWebhookEndpoints(t *testing.T) {
	amUp := readTestdata(t, "alertmanager-v4-firing-up.json")
	amResolved := readTestdata(t, "alertmanager-v4-resolved.json")
	grafanaDown := readTestdata(t, "grafana-firing-down.json")
	grafanaMixed := readTestdata(t, "grafana-mixed.json")
	grafanaLegacyOK := readTestdata(t, "grafana-legacy-ok.json")
	grafanaLegacyAlerting := readTestdata(t, "grafana-legacy-alerting.json")
	grafanaResolved := readTestdata(t, "grafana-resolved.json")
	tests := []struct {
		name        string
		open        bool // Config.OpenWebhooks
		method      string
		path        string
		body        string
		wantCode    int
		wantPending policy.Pending
		wantStatus  string // reply "status" for 200s
	}{
		{"GET /up is not a signal", false, http.MethodGet, "/up", "", 405, policy.Pending{}, ""},
		{"GET /down is not a signal", false, http.MethodGet, "/down", "", 405, policy.Pending{}, ""},
		{"GET /up with the open contract", true, http.MethodGet, "/up", "", 200, policy.Pending{Up: 1}, "recorded"},
		{"POST /up", false, http.MethodPost, "/up", "", 200, policy.Pending{Up: 1}, "recorded"},
		{"PUT /down", false, http.MethodPut, "/down", "", 200, policy.Pending{Down: 1}, "recorded"},
		{"HEAD /down", false, http.MethodHead, "/down", "", 405, policy.Pending{}, ""},
		{"HEAD /up with the open contract", true, http.MethodHead, "/up", "", 405, policy.Pending{}, ""},
		{"OPTIONS /up", false, http.MethodOptions, "/up", "", 405, policy.Pending{}, ""},
		{"OPTIONS /up with the open contract", true, http.MethodOptions, "/up", "", 405, policy.Pending{}, ""},
		{"DELETE /down", false, http.MethodDelete, "/down", "", 405, policy.Pending{}, ""},
		{"/up with Grafana legacy ok is ignored", false, http.MethodPost, "/up", grafanaLegacyOK, 200, policy.Pending{}, "ignored"},
		{"/up with Grafana legacy alerting", false, http.MethodPost, "/up", grafanaLegacyAlerting, 200, policy.Pending{Up: 1}, "recorded"},
		{"/down with Grafana resolved is ignored", false, http.MethodPost, "/down", grafanaResolved, 200, policy.Pending{}, "ignored"},
		{"/up with status resolved and no alerts is ignored", false, http.MethodPost, "/up", `{"status":"resolved"}`, 200, policy.Pending{}, "ignored"},
		{"/up with state ok and no alerts is ignored", false, http.MethodPost, "/up", `{"state":"ok"}`, 200, policy.Pending{}, "ignored"},
		{"/up with state no_data is ignored", false, http.MethodPost, "/up", `{"state":"no_data","ruleName":"x"}`, 200, policy.Pending{}, "ignored"},
		{"/up with status firing and no alerts", false, http.MethodPost, "/up", `{"status":"firing"}`, 200, policy.Pending{Up: 1}, "recorded"},
		{"/up firing alerts but payload resolved is ignored", false, http.MethodPost, "/up",
			`{"status":"resolved","alerts":[{"status":"firing","labels":{"scale":"up"}}]}`, 200, policy.Pending{}, "ignored"},
		{"/up firing alerts but Grafana state ok is ignored", false, http.MethodPost, "/up",
			`{"state":"ok","alerts":[{"status":"firing","labels":{"scale":"up"}}]}`, 200, policy.Pending{}, "ignored"},
		{"webhook Grafana legacy ok is ignored", false, http.MethodPost, "/webhook", grafanaLegacyOK, 200, policy.Pending{}, "ignored"},
		{"webhook Grafana legacy alerting reads its tags", false, http.MethodPost, "/webhook", grafanaLegacyAlerting, 200, policy.Pending{Up: 1}, "recorded"},
		{"webhook Grafana resolved is ignored", false, http.MethodPost, "/webhook", grafanaResolved, 200, policy.Pending{}, "ignored"},
		{"webhook status resolved without alerts is ignored", false, http.MethodPost, "/webhook", `{"status":"resolved"}`, 200, policy.Pending{}, "ignored"},
		{"webhook HEAD", false, http.MethodHead, "/webhook", "", 405, policy.Pending{}, ""},
		{"/up with Alertmanager payload", false, http.MethodPost, "/up", amUp, 200, policy.Pending{Up: 1}, "recorded"},
		{"/down with Grafana payload counts as down", false, http.MethodPost, "/down", grafanaDown, 200, policy.Pending{Down: 1}, "recorded"},
		{"/up with resolved payload is ignored", false, http.MethodPost, "/up", amResolved, 200, policy.Pending{}, "ignored"},
		{"/up with other JSON", false, http.MethodPost, "/up", `{"hello": "world"}`, 200, policy.Pending{Up: 1}, "recorded"},
		{"/up with whitespace body", false, http.MethodPost, "/up", " \n", 200, policy.Pending{Up: 1}, "recorded"},
		{"/up malformed", false, http.MethodPost, "/up", `{"alerts": [`, 400, policy.Pending{}, ""},
		{"/up not JSON", false, http.MethodPost, "/up", `scale=up`, 400, policy.Pending{}, ""},
		{"/up JSON array", false, http.MethodPost, "/up", `[1, 2]`, 400, policy.Pending{}, ""},
		{"/up trailing data", false, http.MethodPost, "/up", `{} {}`, 400, policy.Pending{}, ""},
		{"webhook Alertmanager up", false, http.MethodPost, "/webhook", amUp, 200, policy.Pending{Up: 1}, "recorded"},
		{"webhook Grafana down", false, http.MethodPost, "/webhook", grafanaDown, 200, policy.Pending{Down: 1}, "recorded"},
		{"webhook Grafana PUT", false, http.MethodPut, "/webhook", grafanaDown, 200, policy.Pending{Down: 1}, "recorded"},
		{"webhook direction from annotation, others ignored", false, http.MethodPost, "/webhook", grafanaMixed, 200, policy.Pending{Up: 1}, "recorded"},
		{"webhook resolved ignored", false, http.MethodPost, "/webhook", amResolved, 200, policy.Pending{}, "ignored"},
		{"webhook without direction ignored", false, http.MethodPost, "/webhook",
			`{"status":"firing","alerts":[{"status":"firing","labels":{"alertname":"X"}}]}`, 200, policy.Pending{}, "ignored"},
		{"webhook bad direction ignored", false, http.MethodPost, "/webhook",
			`{"status":"firing","alerts":[{"status":"firing","labels":{"alertname":"X","scale":"sideways"}}]}`, 200, policy.Pending{}, "ignored"},
		{"webhook alert status from payload", false, http.MethodPost, "/webhook",
			`{"status":"firing","alerts":[{"labels":{"scale":"DOWN"}}]}`, 200, policy.Pending{Down: 1}, "recorded"},
		{"webhook empty body", false, http.MethodPost, "/webhook", "", 400, policy.Pending{}, ""},
		{"webhook not an alert payload", false, http.MethodPost, "/webhook", `{"hello":"world"}`, 400, policy.Pending{}, ""},
		{"webhook malformed", false, http.MethodPost, "/webhook", amUp[:len(amUp)/2], 400, policy.Pending{}, ""},
		{"webhook GET", false, http.MethodGet, "/webhook", "", 405, policy.Pending{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := noCloud{t}
			a, _, _ := newTestAutoscaler(t, f, func(c *Config) { c.OpenWebhooks = tt.open })
			code, reply := signal(t, a, tt.method, tt.path, tt.body, map[string]string{"Content-Type": "application/json"})
			if code != tt.wantCode {
				t.Fatalf("%s %s = %d, want %d (reply %v)", tt.method, tt.path, code, tt.wantCode, reply)
			}
			if got := a.Status().Pending; got != tt.wantPending {
				t.Errorf("pending = %+v, want %+v", got, tt.wantPending)
			}
			if tt.wantStatus != "" && reply["status"] != tt.wantStatus {
				t.Errorf("reply status = %v, want %q (reply %v)", reply["status"], tt.wantStatus, reply)
			}
			if code >= 400 && reply["error"] == nil && tt.method != http.MethodHead {
				t.Errorf("error reply without an error message: %v", reply)
			}
		})
	}
}

func TestWebhookCustomLabel(t *testing.T) {
	f := noCloud{t}
	a, _, _ := newTestAutoscaler(t, f, func(c *Config) { c.DirectionLabel, c.DirectionAnnotation = "autoscale", "direction" })
	body := `{"status":"firing","alerts":[
		{"status":"firing","labels":{"autoscale":"down"}},
		{"status":"firing","labels":{"scale":"up"},"annotations":{"direction":"up"}},
		{"status":"firing","labels":{"scale":"up"}}]}`
	code, reply := signal(t, a, http.MethodPost, "/webhook", body, nil)
	if code != 200 {
		t.Fatalf("POST /webhook = %d", code)
	}
	if got, want := a.Status().Pending, (policy.Pending{Up: 1, Down: 1}); got != want {
		t.Errorf("pending = %+v, want %+v", got, want)
	}
	if reply["ignored"] != 1.0 {
		t.Errorf("ignored = %v, want 1 (the alert with only the default label)", reply["ignored"])
	}
}

func TestWebhookAuth(t *testing.T) {
	basic := func(u, p string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)) }
	tests := []struct {
		name      string
		token     string
		basicAuth string
		header    string
		wantCode  int
	}{
		{"open", "", "", "", 200},
		{"token ok", "s3cret", "", "Bearer s3cret", 200},
		{"token missing", "s3cret", "", "", 401},
		{"token wrong", "s3cret", "", "Bearer s3cre", 401},
		{"token in basic slot", "s3cret", "", basic("s3cret", ""), 401},
		{"basic ok", "", "grafana:pa:ss", basic("grafana", "pa:ss"), 200},
		{"basic wrong", "", "grafana:pa:ss", basic("grafana", "pass"), 401},
		{"both configured, basic used", "s3cret", "am:pw", basic("am", "pw"), 200},
		{"both configured, token used", "s3cret", "am:pw", "Bearer s3cret", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := noCloud{t}
			a, _, _ := newTestAutoscaler(t, f, func(c *Config) { c.AuthToken, c.BasicAuth = tt.token, tt.basicAuth })
			for _, path := range []string{"/up", "/down", "/webhook"} {
				body := ""
				if path == "/webhook" {
					body = `{"status":"firing","alerts":[{"status":"firing","labels":{"scale":"up"}}]}`
				}
				hdr := map[string]string{}
				if tt.header != "" {
					hdr["Authorization"] = tt.header
				}
				code, _ := signal(t, a, http.MethodPost, path, body, hdr)
				if code != tt.wantCode {
					t.Errorf("POST %s = %d, want %d", path, code, tt.wantCode)
				}
			}
			wantUp := 0
			if tt.wantCode == 200 {
				wantUp = 2
			}
			if got := a.Status().Pending.Up; got != wantUp {
				t.Errorf("pending up = %d, want %d", got, wantUp)
			}
			// Status, metrics and health stay open.
			for _, path := range []string{"/status", "/metrics", "/health"} {
				if code, _ := signal(t, a, http.MethodGet, path, "", nil); code != 200 {
					t.Errorf("GET %s = %d, want 200", path, code)
				}
			}
		})
	}
}

func TestWebhookBodyLimit(t *testing.T) {
	f := noCloud{t}
	a, _, _ := newTestAutoscaler(t, f, func(c *Config) { c.MaxBody = 1024 })
	big := `{"status":"firing","alerts":[{"status":"firing","labels":{"scale":"up","pad":"` + strings.Repeat("x", 2000) + `"}}]}`
	for _, path := range []string{"/up", "/webhook"} {
		if code, _ := signal(t, a, http.MethodPost, path, big, nil); code != http.StatusRequestEntityTooLarge {
			t.Errorf("POST %s with %d bytes = %d, want 413", path, len(big), code)
		}
	}
	if got := a.Status().Pending; got != (policy.Pending{}) {
		t.Errorf("pending = %+v after rejected bodies, want none", got)
	}
	small := `{"status":"firing","alerts":[{"status":"firing","labels":{"scale":"up"}}]}`
	if code, _ := signal(t, a, http.MethodPost, "/webhook", small, nil); code != 200 {
		t.Errorf("small body = %d, want 200", code)
	}
}

func TestStatusAndMetrics(t *testing.T) {
	f := newLocalCloud(t, 1)
	a, _, _ := newTestAutoscaler(t, f, nil)
	signal(t, a, http.MethodPost, "/up", "", nil)
	signal(t, a, http.MethodPost, "/webhook", "{", nil)
	if _, err := a.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	signal(t, a, http.MethodPost, "/down", "", nil)

	code, st := signal(t, a, http.MethodGet, "/status", "", nil)
	if code != 200 {
		t.Fatalf("GET /status = %d", code)
	}
	pool, _ := st["pool"].(map[string]any)
	decisions, _ := st["decisions"].([]any)
	pending, _ := st["pending"].(map[string]any)
	if pool["size"] != 2.0 || len(decisions) != 1 || pending["down"] != 1.0 || st["last_scale"] == nil {
		t.Fatalf("/status = %v; want pool size 2, 1 decision, 1 pending down, last_scale", st)
	}
	d0, _ := decisions[0].(map[string]any)
	if d0["reason"] != "up-signal" || d0["result"] != "scaled" || !strings.HasPrefix(d0["message"].(string), "from 1 to 2 because") {
		t.Errorf("decision = %v", d0)
	}

	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		"tidepool_autoscaler_pool_size 2",
		`tidepool_autoscaler_decisions_total{direction="up",result="scaled"} 1`,
		`tidepool_autoscaler_webhooks_total{endpoint="/up",result="recorded"} 1`,
		`tidepool_autoscaler_webhooks_total{endpoint="/webhook",result="malformed"} 1`,
		`tidepool_autoscaler_pending_signals{direction="down"} 1`,
		"tidepool_autoscaler_last_scale_timestamp_seconds 1.764072e+09",
		`tidepool_autoscaler_cloud_errors_total{operation="scale-instance-pool"} 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}

// BenchmarkSignal measures POST /up ("answer 200 quickly"), with and without
// the state file written after every signal.
func BenchmarkSignal(b *testing.B) {
	for _, withState := range []bool{false, true} {
		b.Run(map[bool]string{false: "memory", true: "state-file"}[withState], func(b *testing.B) {
			cfg := Config{Cloud: &v3.Client{}, PoolID: "7b6c1a1e-0000-4000-8000-000000000001"}
			if withState {
				cfg.StateFile = filepath.Join(b.TempDir(), "state.json")
			}
			a, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			h := a.Handler()
			req := httptest.NewRequest(http.MethodPost, "/up", nil)
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("POST /up = %d", rec.Code)
				}
			}
		})
	}
}
