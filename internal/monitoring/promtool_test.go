package monitoring

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tidepool/internal/promrun"
)

// runTool runs a checker in dir and returns its combined output and error.
func runTool(t *testing.T, dir, tool string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestPromtoolAndAmtoolAcceptRenderedConfig(t *testing.T) {
	promtool := requireTool(t, promrun.PromtoolBinary)
	amtool := requireTool(t, promrun.AmtoolBinary)
	for _, p := range Profiles() {
		dir := renderTo(t, p, Params{})
		checks := []struct {
			tool string
			args []string
		}{
			{promtool, []string{"check", "config", FilePrometheus}},
			{promtool, []string{"check", "rules", FileRules}},
			{promtool, []string{"test", "rules", FileRulesTest}},
			{amtool, []string{"check-config", FileAlertmanager}},
		}
		for _, c := range checks {
			t.Run(p.Name+"/"+filepath.Base(c.tool)+" "+strings.Join(c.args, " "), func(t *testing.T) {
				out, err := runTool(t, dir, c.tool, c.args...)
				if err != nil {
					t.Errorf("%s %s: %v\n%s", c.tool, strings.Join(c.args, " "), err, out)
				}
			})
		}
	}
}

// TestRuleUnitTestsCanFail shows that rules_test.yml really checks the
// thresholds: rendered with thresholds the test cases' CPU levels (93%, 12%,
// 50%) no longer cross, promtool reports each broken expectation.
func TestRuleUnitTestsCanFail(t *testing.T) {
	promtool := requireTool(t, promrun.PromtoolBinary)
	tests := []struct {
		name   string
		params Params
		mutate func(t *testing.T, dir string) // edits the rendered files; may be nil
		want   string                         // in promtool's failure output
	}{
		{"scale-up threshold above the high case", Params{ScaleUpAbove: 0.95}, nil, "alertname: TidepoolPoolCPUHigh"},
		{"scale-down threshold below the low case", Params{ScaleDownBelow: 0.1}, nil, "alertname: TidepoolPoolCPULow"},
		{"in-between case crosses scale-up", Params{ScaleUpAbove: 0.4, ScaleDownBelow: 0.3}, nil, "alertname: TidepoolPoolCPUHigh"},
		{"alerts without for fire while they should be pending", Params{}, dropFor, "alertname: TidepoolPoolCPU"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := renderTo(t, Fast(), tt.params)
			if tt.mutate != nil {
				tt.mutate(t, dir)
			}
			out, err := runTool(t, dir, promtool, "test", "rules", FileRulesTest)
			if err == nil {
				t.Fatalf("promtool test rules passed, want failure:\n%s", out)
			}
			if !strings.Contains(out, tt.want) {
				t.Errorf("promtool output lacks %q:\n%s", tt.want, out)
			}
		})
	}
}

// TestGrafanaQueriesArePromQL checks that every dashboard and Grafana alert
// query parses as PromQL, by handing them to promtool as recording rules.
func TestGrafanaQueriesArePromQL(t *testing.T) {
	promtool := requireTool(t, promrun.PromtoolBinary)
	for _, p := range Profiles() {
		t.Run(p.Name, func(t *testing.T) {
			qs, err := Queries(renderTo(t, p, Params{}))
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			b.WriteString("groups:\n  - name: grafana-queries\n    rules:\n")
			for i, q := range qs {
				fmt.Fprintf(&b, "      - record: tidepool:grafana_query_%d\n        expr: %s\n", i, quote(q.Expr))
			}
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "queries.yml"), []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := runTool(t, dir, promtool, "check", "rules", "queries.yml")
			if err != nil {
				t.Errorf("promtool rejects a Grafana query: %v\n%s", err, out)
			}
			if want := fmt.Sprintf("SUCCESS: %d rules found", len(qs)); !strings.Contains(out, want) {
				t.Errorf("promtool output lacks %q:\n%s", want, out)
			}
		})
	}
}

// dropFor deletes the `for:` lines from the rendered rules.yml.
func dropFor(t *testing.T, dir string) {
	path := filepath.Join(dir, FileRules)
	var kept []string
	for _, line := range strings.Split(string(mustRead(t, path)), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "for:") {
			kept = append(kept, line)
		}
	}
	if err := os.WriteFile(path, []byte(strings.Join(kept, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
}
