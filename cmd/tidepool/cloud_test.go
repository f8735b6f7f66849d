package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tidepool/internal/cloud"
)

// TestCloudNLBDataPath checks --nlb-datapath and its environment fallback:
// a known value starts the cloud (it stops at once: ctx is cancelled), an
// unknown one is a usage error (exit 2) naming the flag.
func TestCloudNLBDataPath(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      string // TIDEPOOL_CLOUD_NLB_DATAPATH
		wantCode int
		wantErr  string
	}{
		{"portable", []string{"--nlb-datapath", "portable"}, "", 0, ""},
		{"auto from env", nil, "auto", 0, ""},
		{"unknown", []string{"--nlb-datapath", "io_uring"}, "", 2, `-nlb-datapath: data path "io_uring": want auto, epoll or portable`},
		{"unknown from env", nil, "goroutines", 2, `-nlb-datapath: data path "goroutines"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("TIDEPOOL_CLOUD_NLB_DATAPATH", tt.env)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			args := append([]string{"--listen", "127.0.0.1:0"}, tt.args...)
			var stdout, stderr bytes.Buffer
			code := runCloud(ctx, args, &stdout, &stderr)
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("runCloud(%q) with env %q = %d, stderr %q; want %d and %q", args, tt.env, code, stderr.String(), tt.wantCode, tt.wantErr)
			}
		})
	}
}

// TestCloudHTTPSProxyFlag checks --https-proxy: it needs a loopback address
// and --state-dir (usage errors, exit 2), and a cloud started with it writes
// the front's CA into the state directory.
func TestCloudHTTPSProxyFlag(t *testing.T) {
	stateDir := t.TempDir()
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"no state dir", []string{"--https-proxy", "127.0.0.1:0"}, 2, "-https-proxy needs -state-dir"},
		{"not loopback", []string{"--https-proxy", "0.0.0.0:0", "--state-dir", stateDir}, 2, "is not a loopback address"},
		{"not an address", []string{"--https-proxy", "8443", "--state-dir", stateDir}, 2, "-https-proxy"},
		{"started", []string{"--https-proxy", "127.0.0.1:0", "--state-dir", stateDir}, 0, "https front listening"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			args := append([]string{"--listen", "127.0.0.1:0"}, tt.args...)
			var stdout, stderr bytes.Buffer
			code := runCloud(ctx, args, &stdout, &stderr)
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("runCloud(%q) = %d, stderr %q; want %d and %q", args, code, stderr.String(), tt.wantCode, tt.wantErr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(stateDir, cloud.CAFile)); err != nil {
		t.Errorf("CA after a start with --https-proxy: %v", err)
	}
}
