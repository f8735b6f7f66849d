package main

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tidepool/internal/simulate"
)

func TestSimulateCommand(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(dir, "mine.csv")
	if err := os.WriteFile(trace, []byte("seconds,rps\n0,5\n600,60\n1200,5\n1800,5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"simulate", "-trace", "step", "-trace", trace, "-stage", "hold:20:10m", "-out", out}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, stderr.String())
	}
	for _, want := range []string{"trace step:", "trace mine:", "trace stages:", "seed-webhook", "target-tracking", "hpa-like", "aws-like", "predictive", "oracle", "θU (members)", "3 traces simulated"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
	for _, name := range []string{"step.png", "mine.png", "stages.png"} {
		f, err := os.Open(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(f); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		f.Close()
	}
	md, err := os.ReadFile(filepath.Join(out, "results.md"))
	if err != nil || !strings.Contains(string(md), "| seed-webhook |") || !strings.Contains(string(md), "![mine](mine.png)") {
		t.Errorf("results.md: %v\n%s", err, md)
	}
	csv, err := os.ReadFile(filepath.Join(out, "results.csv"))
	if err != nil || strings.Count(string(csv), "\n") != 1+3*6 {
		t.Errorf("results.csv: %v, want a header and 18 rows:\n%s", err, csv)
	}
}

func TestSimulateCommandPolicies(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"simulate", "-trace", "spike", "-policies", "oracle,target-tracking", "-profile", "fast", "-out", ""}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, stderr.String())
	}
	if s := stdout.String(); !strings.Contains(s, "target-tracking") || !strings.Contains(s, "oracle") || strings.Contains(s, "seed-webhook") {
		t.Errorf("output, want only target-tracking and oracle:\n%s", s)
	}
}

func TestSimulateCommandUsage(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte("seconds,rps\n0,x\n1,2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"unknown trace", []string{"-trace", "nope"}, `-trace "nope" is neither a shipped trace`},
		{"bad trace file", []string{"-trace", bad}, `bad rate "x"`},
		{"unknown policy", []string{"-policies", "magic"}, `unknown policy "magic"`},
		{"unknown profile", []string{"-profile", "slow"}, "unknown monitoring profile"},
		{"bad target", []string{"-target-cpu", "0"}, "-target-cpu 0"},
		{"bad bounds", []string{"-min", "5", "-max", "2"}, "max 2"},
		{"bad slo", []string{"-slo", "2"}, "SLO utilisation 2"},
		{"stage and scenario", []string{"-stage", "hold:1:1s", "-scenario", bad}, "not both"},
		{"bad stage", []string{"-stage", "hold:1"}, "invalid value"},
		{"bad validate policy", []string{"-validate", "-validate-policy", "x"}, `-validate-policy "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"simulate", "-out", ""}, tt.args...), &stdout, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want 2 containing %q", code, stderr.String(), tt.wantErr)
			}
		})
	}
}

func TestSimulateWriteTraces(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"simulate", "-write-traces", dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, name := range simulate.BuiltinNames() {
		tr, err := simulate.LoadCSV(filepath.Join(dir, name+".csv"))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := simulate.Builtin(name)
		if len(tr.Rate) != len(want.Rate) || tr.End != want.End {
			t.Errorf("%s: written %d rows to %s, shipped %d to %s", name, len(tr.Rate), tr.End, len(want.Rate), want.End)
		}
	}
}

func TestPolicyFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"-key", "k", "-secret", "s", "-pool", "7b6c1a1e-0000-4000-8000-000000000001", "-policy", "target-tracking"}, "needs -prometheus-url"},
		{[]string{"-key", "k", "-secret", "s", "-pool", "7b6c1a1e-0000-4000-8000-000000000001", "-policy", "target-tracking", "-prometheus-url", "ftp://x"}, "want an absolute http:// or https:// URL"},
		{[]string{"-key", "k", "-secret", "s", "-pool", "7b6c1a1e-0000-4000-8000-000000000001", "-policy", "target-tracking", "-prometheus-url", "http://127.0.0.1:9090", "-tolerance", "1.5"}, "tolerance 1.5"},
		{[]string{"-key", "k", "-secret", "s", "-pool", "7b6c1a1e-0000-4000-8000-000000000001", "-policy", "neither"}, `-policy "neither"`},
		{[]string{"-key", "k", "-secret", "s", "-pool", "7b6c1a1e-0000-4000-8000-000000000001", "-policy", "target-tracking", "-prometheus-url", "http://127.0.0.1:9090", "-max-step", "-1"}, "max step -1"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append([]string{"autoscaler"}, tt.args...), &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), tt.wantErr) {
			t.Errorf("autoscaler %q = %d, stderr %q; want 2 containing %q", tt.args, code, stderr.String(), tt.wantErr)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"demo", "-policy", "target-tracking", "-target-cpu", "1.2"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "target CPU 1.2") {
		t.Errorf("demo with a bad target = %d, stderr %q; want 2", code, stderr.String())
	}
}
