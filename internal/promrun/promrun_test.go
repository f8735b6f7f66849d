package promrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"tidepool/internal/loopback"
	"tidepool/internal/promquery"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestPrometheusAndAlertmanager starts the real binaries, queries Prometheus
// scraping itself, and checks Stop leaves no process behind.
func TestPrometheusAndAlertmanager(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	ap, err := loopback.FreePort(netip.AddrFrom4([4]byte{127, 0, 0, 1}))
	if err != nil {
		t.Fatal(err)
	}
	listen := ap.String()
	promCfg := filepath.Join(dir, "prometheus.yml")
	writeFile(t, promCfg, fmt.Sprintf("global: {scrape_interval: 1s, evaluation_interval: 1s}\nrule_files: [rules.yml]\nscrape_configs:\n- job_name: self\n  static_configs: [{targets: ['%s']}]\n", listen))
	writeFile(t, filepath.Join(dir, "rules.yml"), `groups:
- name: g
  rules:
  - {alert: Always, expr: vector(1) > 0}
  - {alert: Waiting, expr: vector(1) > 0, for: 1h}
  - {alert: Never, expr: vector(0) > 1}
  - {record: not_an_alert, expr: vector(1)}
`)
	mustMkdir(t, filepath.Join(dir, "tsdb"))
	prom, err := StartPrometheus(ctx, Config{ConfigFile: promCfg, DataDir: filepath.Join(dir, "tsdb"), Listen: listen})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prom.Stop)

	var got []promquery.Sample
	deadline := time.Now().Add(30 * time.Second)
	for len(got) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("up{job=\"self\"} never returned data")
		}
		time.Sleep(200 * time.Millisecond)
		if got, err = promquery.Instant(ctx, prom.URL, `up{job="self"} == 1`); err != nil {
			t.Fatal(err)
		}
	}
	if got[0].Value != 1 || got[0].Labels["job"] != "self" {
		t.Errorf("up = %+v, want 1 with job=self", got[0])
	}
	if _, err := promquery.Instant(ctx, prom.URL, `sum(`); err == nil {
		t.Error("bad PromQL: want an error")
	}
	sc, err := promquery.Instant(ctx, prom.URL, `scalar(vector(2))`)
	if err != nil || len(sc) != 1 || sc[0].Value != 2 {
		t.Errorf("scalar query = %v, %v; want one sample of 2", sc, err)
	}

	want := map[string]string{"Always": "firing", "Waiting": "pending", "Never": "inactive"}
	var states map[string]string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if states, err = promquery.AlertStates(ctx, prom.URL); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(states) == fmt.Sprint(want) || time.Now().After(deadline) {
			break
		}
	}
	if fmt.Sprint(states) != fmt.Sprint(want) {
		t.Errorf("AlertStates = %v, want %v", states, want)
	}

	amCfg := filepath.Join(dir, "alertmanager.yml")
	writeFile(t, amCfg, "route: {receiver: none}\nreceivers: [{name: none}]\n")
	mustMkdir(t, filepath.Join(dir, "am"))
	am, err := StartAlertmanager(ctx, Config{ConfigFile: amCfg, DataDir: filepath.Join(dir, "am")})
	if err != nil {
		t.Fatal(err)
	}
	pids := []int{prom.PID(), am.PID()}
	am.Stop()
	prom.Stop()
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still exists after Stop (kill 0: %v)", pid, err)
		}
	}
}

func TestAlertStatesErrors(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"error status", `{"status":"error","error":"boom"}`, "boom"},
		{"not JSON", `<html>`, "decode"},
		{"unknown state", `{"status":"success","data":{"groups":[{"rules":[{"name":"A","type":"alerting","state":"odd"}]}]}}`, "unknown state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			if _, err := promquery.AlertStates(context.Background(), srv.URL); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("AlertStates error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestFindBinaryMissing(t *testing.T) {
	_, err := FindBinary("some-package", "no-such-binary-tidepool")
	if !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("err = %v, want ErrNotInstalled", err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustMkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
}
