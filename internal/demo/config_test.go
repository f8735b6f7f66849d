package demo

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tidepool/internal/autoscaler/policy"
	"tidepool/internal/loadgen"
)

func TestConfigValidate(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(root, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(root)
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"zero value", Config{}, ""},
		{"seed profile", Config{Profile: "seed", OutDir: "runs/1"}, ""},
		{"unknown profile", Config{Profile: "slow"}, "slow"},
		{"out under a file", Config{OutDir: "file/out"}, "is not a directory"},
		{"bounds", Config{MinSize: 3, MaxSize: 2}, "bad pool bounds"},
		{"negative work", Config{Work: -time.Second}, "must be positive"},
		{"negative settle", Config{Settle: -time.Second}, "must not be negative"},
		{"bad stage", Config{Stages: []loadgen.Stage{{Kind: loadgen.KindHold, From: -1, Duration: time.Second}}}, "load:"},
		{"bad policy", Config{Policy: policy.TargetTracking{Limits: policy.Limits{Min: 1, Max: 5}, Target: 2}}, "policy:"},
		{"live page off", Config{LiveAddr: LiveOff}, ""},
		{"live page on any port", Config{LiveAddr: "127.0.0.1:0"}, ""},
		{"live page without host", Config{LiveAddr: "8088"}, `live page address "8088"`},
		{"live page port", Config{LiveAddr: "127.0.0.1:99999"}, `live page address "127.0.0.1:99999"`},
		{"predictive", Config{Policy: policy.Predictive{Limits: policy.Limits{Min: 1, Max: 5}}}, ""},
		{"bad predictive", Config{Policy: policy.Predictive{Limits: policy.Limits{Min: 1, Max: 5}, Seasons: -1}}, "policy: seasons -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Validate() = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
	// Validating creates nothing; the default output is under the working
	// directory.
	for _, d := range []string{DefaultOutDir, "runs"} {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("Validate created %s", d)
		}
	}
	cfg, _, err := Config{}.withDefaults()
	if err != nil || cfg.OutDir != filepath.Join(root, DefaultOutDir) {
		t.Errorf("default OutDir = %q, %v; want %q", cfg.OutDir, err, filepath.Join(root, DefaultOutDir))
	}
}

func TestCheckBinaries(t *testing.T) {
	found := func() (string, error) { return "/usr/bin/x", nil }
	missing := func() (string, error) { return "", errors.New("not installed") }
	tests := []struct {
		name    string
		bins    []binary
		wantErr string
	}{
		{"all there", []binary{{"prometheus", found}, {"prometheus-alertmanager", found}}, ""},
		{"one missing", []binary{{"prometheus", found}, {"prometheus-alertmanager", missing}}, "package(s) prometheus-alertmanager, not installed: run `make deps`"},
		{"both missing", []binary{{"prometheus", missing}, {"prometheus-alertmanager", missing}}, "apt-get install -y --no-install-recommends prometheus prometheus-alertmanager"},
	}
	for _, tt := range tests {
		err := checkBinaries(tt.bins)
		if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%s: checkBinaries = %v, want error containing %q", tt.name, err, tt.wantErr)
		}
	}
}
