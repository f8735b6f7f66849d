package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestAutoscalerClosedByDefault checks the flag side of issue 17's item 4:
// an address beyond loopback without webhook credentials, and the open
// contract together with credentials, are usage errors (exit 2).
func TestAutoscalerClosedByDefault(t *testing.T) {
	base := []string{"autoscaler", "-key", "k", "-secret", "s", "-pool", "7b6c1a1e-0000-4000-8000-000000000001"}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
	}{
		{"every interface without credentials", []string{"-listen", ":8090"}, nil, "beyond loopback"},
		{"0.0.0.0 without credentials", []string{"-listen", "0.0.0.0:8090"}, nil, "beyond loopback"},
		{"LISTEN_PORT as an address beyond loopback", nil, map[string]string{"LISTEN_PORT": "0.0.0.0:8090"}, "beyond loopback"},
		{"open contract with a token", []string{"-open-webhooks", "-auth-token", "t"}, nil, "needs no credentials"},
		{"open contract by environment with basic auth", []string{"-basic-auth", "a:b"}, map[string]string{"TIDEPOOL_AUTOSCALER_OPEN_WEBHOOKS": "true"}, "needs no credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append(append([]string(nil), base...), tt.args...), &stdout, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("autoscaler %q = %d, stderr %q; want 2 containing %q", tt.args, code, stderr.String(), tt.wantErr)
			}
		})
	}
}

func TestListenAddr(t *testing.T) {
	tests := []struct {
		in   string
		open bool
		want string
	}{
		{"8090", false, "127.0.0.1:8090"},
		{"8090", true, ":8090"},
		{"127.0.0.1:9000", false, "127.0.0.1:9000"},
		{":9000", true, ":9000"},
	}
	for _, tt := range tests {
		if got := listenAddr(tt.in, tt.open); got != tt.want {
			t.Errorf("listenAddr(%q, open %v) = %q, want %q", tt.in, tt.open, got, tt.want)
		}
	}
}
