package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tidepool/internal/monitoring"
)

func TestMonitoringRender(t *testing.T) {
	for _, profile := range []string{"seed", "fast"} {
		t.Run(profile, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "monitoring")
			var stdout, stderr bytes.Buffer
			args := []string{"monitoring", "render", "--profile", profile, "--out", out,
				"--autoscaler-url", "http://10.0.0.9:18090", "--cloud-metrics", "10.0.0.9:18081,10.0.0.9:18082",
				"--autoscaler-token-file", "/run/secrets/autoscaler-token"}
			if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
				t.Fatalf("run(%q) = %d, stderr %q", args, code, stderr.String())
			}
			if got, want := strings.Count(stdout.String(), "\n"), len(monitoring.FileNames()); got != want {
				t.Errorf("stdout lists %d files, want %d:\n%s", got, want, stdout.String())
			}
			prof, err := monitoring.ProfileByName(profile)
			if err != nil {
				t.Fatal(err)
			}
			want, err := monitoring.RenderFiles(prof, monitoring.Params{
				AutoscalerURL: "http://10.0.0.9:18090", CloudTargets: []string{"10.0.0.9:18081", "10.0.0.9:18082"},
				AutoscalerTokenFile: "/run/secrets/autoscaler-token"})
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range monitoring.FileNames() {
				got, err := os.ReadFile(filepath.Join(out, name))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want[name]) {
					t.Errorf("%s differs from RenderFiles with the same params", name)
				}
			}
		})
	}
}

func TestMonitoringRenderUsage(t *testing.T) {
	tests := []struct {
		args     []string
		wantCode int
		wantErr  string
	}{
		{[]string{"monitoring"}, 2, "usage: tidepool monitoring render"},
		{[]string{"monitoring", "bogus"}, 2, `unknown subcommand "bogus"`},
		{[]string{"monitoring", "render"}, 2, "--out is required"},
		{[]string{"monitoring", "render", "--out", "x", "--profile", "slow"}, 2, `unknown monitoring profile "slow"`},
		{[]string{"monitoring", "render", "--out", "x", "--app-port", "0x"}, 2, "invalid value"},
		{[]string{"monitoring", "render", "--out", "x", "--app-port", "70000"}, 2, "app port 70000"},
		{[]string{"monitoring", "render", "--out", "x", "--autoscaler-token-file", "token"}, 2, "autoscaler token file"},
		{[]string{"monitoring", "render", "--out", "x", "--scale-up-above", "0.1"}, 2, "thresholds"},
		{[]string{"monitoring", "render", "--out", "x", "extra"}, 2, "unexpected arguments"},
		{[]string{"monitoring", "render", "--out", "x", "--file-sd", "demo-out/file_sd/targets.json"}, 2, "must be absolute: Prometheus resolves"},
		{[]string{"monitoring", "render", "--out", "x", "--grafana-dashboards-dir", "dashboards"}, 2, "must be absolute"},
		{[]string{"monitoring", "render", "-h"}, 0, "-autoscaler-url"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tt.args, &stdout, &stderr)
		if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantErr) {
			t.Errorf("run(%q) = %d, stderr %q; want %d containing %q", tt.args, code, stderr.String(), tt.wantCode, tt.wantErr)
		}
	}
}

func TestMonitoringRenderFileError(t *testing.T) {
	// --out below a regular file cannot be created: a usage error found
	// before anything is written.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"monitoring", "render", "--out", filepath.Join(file, "out")}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "is not a directory") {
		t.Errorf("exit code %d, stderr %q; want 2 and \"is not a directory\"", code, stderr.String())
	}
}
