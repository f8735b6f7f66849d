package exoclient

import (
	"strings"
	"testing"
)

func TestNewChecksConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"zone", Config{Key: "k", Secret: "s", Zone: "at-vie-1"}, ""},
		{"local endpoint", Config{Key: "k", Secret: "s", Endpoint: "http://127.0.0.1:8580/v2"}, ""},
		{"no secret", Config{Key: "k"}, "key and secret are required"},
		{"scheme", Config{Key: "k", Secret: "s", Endpoint: "ftp://x/v2"}, `endpoint "ftp://x/v2"`},
		{"no scheme", Config{Key: "k", Secret: "s", Endpoint: "127.0.0.1:8580/v2"}, "absolute http"},
		{"no host", Config{Key: "k", Secret: "s", Endpoint: "http:///v2"}, "absolute http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("New(%+v) = %v, want error containing %q", tt.cfg, err, tt.wantErr)
			}
		})
	}
}
