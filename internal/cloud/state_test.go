package cloud_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tidepool/internal/cloud"
)

// TestNewRejectsBadStateFile checks that a corrupt or foreign state file
// stops New with an error naming the file, and is left untouched.
func TestNewRejectsBadStateFile(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"not JSON", "{pools: ", "cloud-state.json"},
		{"other version", `{"version": 99}`, "version 99"},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		path := filepath.Join(dir, cloud.StateFile)
		if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := cloud.New(cloud.Config{StateDir: dir, AppCommand: []string{"/bin/true"}})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: New = %v, want an error containing %q", tt.name, err, tt.want)
		}
		if b, _ := os.ReadFile(path); string(b) != tt.content {
			t.Errorf("%s: state file changed to %q", tt.name, b)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	net := func(s string) cloud.Config {
		c := cloud.Config{AppCommand: []string{"/bin/true"}}
		c.MemberNet = mustPrefix(t, s)
		return c
	}
	tests := []struct {
		name string
		cfg  cloud.Config
		want string
	}{
		{"member net not loopback", net("10.0.0.0/24"), "loopback"},
		{"member net too small", net("127.5.5.0/31"), "/30"},
		{"nets overlap", net("127.78.0.0/16"), "overlaps"},
		{"same ports", cloud.Config{AppCommand: []string{"/bin/true"}, AppPort: 9100}, "both 9100"},
		{"missing program", cloud.Config{AppCommand: []string{"/nonexistent/tidepool"}}, "nonexistent"},
	}
	for _, tt := range tests {
		if _, err := cloud.New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: New = %v, want an error containing %q", tt.name, err, tt.want)
		}
		if err := tt.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
	if err := (cloud.Config{AppCommand: []string{"/bin/true"}}).Validate(); err != nil {
		t.Errorf("Validate(defaults) = %v, want nil", err)
	}
}

func TestRunTwice(t *testing.T) {
	c, err := cloud.New(cloud.Config{AppCommand: []string{"/bin/true"}, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	for range 2 {
		go func() { done <- c.Run(ctx) }()
	}
	// One call fails at once; the other runs until ctx is cancelled.
	if err := <-done; err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("first Run to return: %v, want the Run-twice error", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("the running Run returned %v after cancel, want nil", err)
	}
}
