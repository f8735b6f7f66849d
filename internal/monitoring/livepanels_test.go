package monitoring

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"tidepool/internal/report"
)

// TestDashboardHasLivePanels checks that the Grafana dashboard shows the
// panels of the demo's live page and report (internal/report.Panels), plus
// the alert states and the scaling decisions the live page lists, and that
// the alert panel names every alerting rule of rules.yml.
func TestDashboardHasLivePanels(t *testing.T) {
	dir := renderTo(t, Seed(), Params{})
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr         string `json:"expr"`
				LegendFormat string `json:"legendFormat"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(mustRead(t, filepath.Join(dir, FileGrafanaDashboard)), &d); err != nil {
		t.Fatal(err)
	}
	legends := map[string][]string{}
	exprs := map[string]string{}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			legends[p.Title] = append(legends[p.Title], tg.LegendFormat)
			exprs[p.Title] += tg.Expr + "\n"
		}
	}
	// The live page's panel -> its Grafana panel and the series it must show
	// (by legend), where Prometheus has them.
	want := map[string]struct {
		title  string
		series []string
	}{
		"load":    {"Load: answered", []string{"answered {{code}}"}},
		"pool":    {"Pool size", []string{"members (any state)", "running", "starting", "draining"}},
		"cpu":     {"CPU utilisation", []string{"pool average", "{{instance}}"}},
		"latency": {"Latency (at the app)", []string{"p50", "p95", "p99"}},
		"errors":  {"Failed requests", []string{"failed"}},
	}
	for _, p := range report.Panels() {
		w, ok := want[p.ID]
		if !ok {
			t.Errorf("live panel %q (%s) has no Grafana counterpart in this test", p.ID, p.Title)
			continue
		}
		if got := legends[w.title]; !slices.Equal(got, w.series) {
			t.Errorf("Grafana panel %q shows %q, want %q", w.title, got, w.series)
		}
	}
	for _, title := range []string{"Alerts", "Scaling decisions"} {
		if _, ok := legends[title]; !ok {
			t.Errorf("no Grafana panel %q", title)
		}
	}
	rules := string(mustRead(t, filepath.Join(dir, FileRules)))
	for _, line := range strings.Split(rules, "\n") {
		if name, ok := strings.CutPrefix(strings.TrimSpace(line), "- alert: "); ok && strings.Count(exprs["Alerts"], name) < 3 {
			t.Errorf("the Alerts panel does not cover alert %s (firing, pending and inactive)", name)
		}
	}
}
