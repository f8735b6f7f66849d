package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"tidepool/internal/loadgen"
)

func TestLoadCommandUsage(t *testing.T) {
	dir := t.TempDir()
	badScenario := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badScenario, []byte("- ramp:5:1s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no target", []string{"-stage", "hold:1:1s"}, "-target is required"},
		{"no schedule", []string{"-target", "http://127.0.0.1:1/"}, "no schedule"},
		{"bad stage", []string{"-target", "http://127.0.0.1:1/", "-stage", "ramp:5:1s"}, `invalid value "ramp:5:1s" for flag -stage`},
		{"unknown kind", []string{"-target", "http://127.0.0.1:1/", "-stage", "wave:5:1s"}, "unknown kind"},
		{"both", []string{"-target", "http://127.0.0.1:1/", "-stage", "hold:1:1s", "-scenario", badScenario}, "not both"},
		{"bad scenario", []string{"-target", "http://127.0.0.1:1/", "-scenario", badScenario}, "stage 1 (line 1)"},
		{"missing scenario", []string{"-target", "http://127.0.0.1:1/", "-scenario", filepath.Join(dir, "nope.yaml")}, "no such file"},
		{"bad target", []string{"-target", "ftp://127.0.0.1/", "-stage", "hold:1:1s"}, "absolute http:// or https:// URL"},
		{"relative target", []string{"-target", "127.0.0.1:8000/", "-stage", "hold:1:1s"}, "absolute http:// or https:// URL"},
		{"zero workers", []string{"-target", "http://127.0.0.1:1/", "-stage", "hold:1:1s", "-workers", "0"}, "-workers must be > 0"},
		{"output under a file", []string{"-target", "http://127.0.0.1:1/", "-stage", "hold:1:1s", "-out-csv", filepath.Join(badScenario, "x.csv")}, "is not a directory"},
		{"output is a directory", []string{"-target", "http://127.0.0.1:1/", "-stage", "hold:1:1s", "-out-json", dir}, "is a directory"},
		{"positional", []string{"-target", "http://127.0.0.1:1/", "-stage", "hold:1:1s", "extra"}, "unexpected arguments"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := runLoad(context.Background(), tt.args, &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), tt.wantErr) {
			t.Errorf("%s: runLoad(%q) = %d, stderr %q; want 2 and %q", tt.name, tt.args, code, stderr.String(), tt.wantErr)
		}
	}
}

func TestLoadCommandRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	scenario := filepath.Join(dir, "s.yaml")
	if err := os.WriteFile(scenario, []byte("stages:\n  - ramp:10-30:1s\n  - {kind: hold, from: 20, duration: 1s}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Relative outputs land under the working directory, their missing
	// directory created.
	t.Chdir(dir)
	csvPath, jsonPath := filepath.Join(dir, "res", "tl.csv"), filepath.Join(dir, "res", "run.json")
	var stdout, stderr bytes.Buffer
	code := runLoad(context.Background(), []string{"-target", srv.URL, "-scenario", "s.yaml",
		"-out-csv", "res/tl.csv", "-out-json", "res/run.json", "-timeout", "5s", "-workers", "50"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("runLoad = %d; stderr:\n%s", code, stderr.String())
	}
	for _, want := range []string{"load: 0s offered=20.0 ", "load: 1s offered=20.0 "} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks progress line %q:\n%s", want, stderr.String())
		}
	}
	if !strings.Contains(stdout.String(), "planned 40 sent 40") || !strings.Contains(stdout.String(), "completed") {
		t.Errorf("summary on stdout lacks the counts:\n%s", stdout.String())
	}
	f, err := os.Open(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tl, sum, err := loadgen.ReadJSON(f)
	if err != nil || len(tl) != 2 || sum.Planned != 40 || len(sum.Stages) != 2 {
		t.Errorf("json: %d seconds, planned %d, %d stages, %v; want 2, 40, 2", len(tl), sum.Planned, len(sum.Stages), err)
	}
	data, err := os.ReadFile(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil || len(rows) != 3 || rows[0][0] != "offset_s" {
		t.Errorf("csv: %q, %v; want a header and 2 rows", rows, err)
	}
}

// TestLoadCommandInterrupt cancels the command's context (as SIGINT does)
// mid-run: it must still write the files and the summary and exit 0.
func TestLoadCommandInterrupt(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if n.Add(1) == 30 {
			cancel() // interrupt after 30 requests, about 1.5s into a 60s run
		}
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	csvPath, jsonPath := filepath.Join(dir, "tl.csv"), filepath.Join(dir, "run.json")
	var stdout, stderr bytes.Buffer
	code := runLoad(ctx, []string{"-target", srv.URL, "-stage", "hold:20:60s", "-out-csv", csvPath, "-out-json", jsonPath, "-quiet"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("runLoad = %d; want 0 after an interrupt; stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "interrupted") || !strings.Contains(stdout.String(), "cancelled at") {
		t.Errorf("want an interrupt note on stderr and a cancelled summary; stderr:\n%s\nstdout:\n%s", stderr.String(), stdout.String())
	}
	if strings.Contains(stderr.String(), "load: 0s") {
		t.Errorf("-quiet printed progress lines:\n%s", stderr.String())
	}
	f, err := os.Open(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tl, sum, err := loadgen.ReadJSON(f)
	if err != nil || !sum.Cancelled || sum.Sent < 30 || len(tl) == 0 || len(tl) > 10 {
		t.Errorf("json: %d seconds, sent %d, cancelled %v, %v; want a partial run of >= 30 requests", len(tl), sum.Sent, sum.Cancelled, err)
	}
	if _, err := os.Stat(csvPath); err != nil {
		t.Errorf("csv not written: %v", err)
	}
}
