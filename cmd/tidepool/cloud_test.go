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

// TestCloudNLBFlags checks the load balancer flags (--nlb-datapath,
// --nlb-idle-timeout, --nlb-max-conns) and their environment fallbacks: a
// valid value starts the cloud (it stops at once: ctx is cancelled), an
// invalid one is a usage error (exit 2) naming the flag. For the limits a
// negative value means none and 0 is invalid.
func TestCloudNLBFlags(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantCode int
		wantErr  string
	}{
		{"portable", []string{"--nlb-datapath", "portable"}, nil, 0, ""},
		{"auto from env", nil, map[string]string{"TIDEPOOL_CLOUD_NLB_DATAPATH": "auto"}, 0, ""},
		{"unknown", []string{"--nlb-datapath", "io_uring"}, nil, 2, `-nlb-datapath: data path "io_uring": want auto, epoll or portable`},
		{"unknown from env", nil, map[string]string{"TIDEPOOL_CLOUD_NLB_DATAPATH": "goroutines"}, 2, `-nlb-datapath: data path "goroutines"`},
		{"limits", []string{"--nlb-idle-timeout", "30s", "--nlb-max-conns", "100"}, nil, 0, ""},
		{"no limits", []string{"--nlb-idle-timeout", "-1s", "--nlb-max-conns", "-1"}, nil, 0, ""},
		{"limits from env", nil, map[string]string{"TIDEPOOL_CLOUD_NLB_IDLE_TIMEOUT": "1m", "TIDEPOOL_CLOUD_NLB_MAX_CONNS": "10"}, 0, ""},
		{"zero cap", []string{"--nlb-max-conns", "0"}, nil, 2, "-nlb-max-conns must not be 0"},
		{"zero timeout from env", nil, map[string]string{"TIDEPOOL_CLOUD_NLB_IDLE_TIMEOUT": "0s"}, 2, "-nlb-idle-timeout"},
		{"bad cap", []string{"--nlb-max-conns", "many"}, nil, 2, "nlb-max-conns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"TIDEPOOL_CLOUD_NLB_DATAPATH", "TIDEPOOL_CLOUD_NLB_IDLE_TIMEOUT", "TIDEPOOL_CLOUD_NLB_MAX_CONNS"} {
				t.Setenv(k, tt.env[k])
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			args := append([]string{"--listen", "127.0.0.1:0"}, tt.args...)
			var stdout, stderr bytes.Buffer
			code := runCloud(ctx, args, &stdout, &stderr)
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("runCloud(%q) with env %v = %d, stderr %q; want %d and %q", args, tt.env, code, stderr.String(), tt.wantCode, tt.wantErr)
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
