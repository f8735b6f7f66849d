package cloud

import (
	"testing"
	"time"

	"tidepool/internal/app"
)

func TestConfigBootDelay(t *testing.T) {
	tests := []struct {
		name string
		in   *time.Duration
		want time.Duration
	}{
		{"unset", nil, DefaultBootDelay},
		{"zero means none", new(time.Duration(0)), 0},
		{"negative means none", new(-time.Second), 0},
		{"set", new(500 * time.Millisecond), 500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Config{BootDelay: tt.in, AppCommand: []string{"/bin/true"}}.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			if got := *cfg.BootDelay; got != tt.want {
				t.Errorf("boot delay = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestShutdownGraceCoversAppDrain: by default, stopping the cloud lets the
// members drain instead of SIGKILLing them.
func TestShutdownGraceCoversAppDrain(t *testing.T) {
	if DefaultShutdownGrace <= app.DefaultDrain {
		t.Errorf("DefaultShutdownGrace %v <= app.DefaultDrain %v: stopping the cloud would SIGKILL draining members", DefaultShutdownGrace, app.DefaultDrain)
	}
}

func TestConfigRejectsUnknownZone(t *testing.T) {
	if _, err := (Config{Zone: "xx-nowhere-1", AppCommand: []string{"/bin/true"}}).withDefaults(); err == nil {
		t.Error("zone xx-nowhere-1 accepted, want an error")
	}
}
