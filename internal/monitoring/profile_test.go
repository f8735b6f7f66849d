package monitoring

import (
	"strings"
	"testing"
	"time"
)

func TestProfilesValid(t *testing.T) {
	for _, p := range Profiles() {
		if err := p.Validate(); err != nil {
			t.Errorf("built-in profile %s: %v", p.Name, err)
		}
	}
}

func TestSeedIsFaithful(t *testing.T) {
	p := Seed()
	checks := []struct {
		name      string
		got, want time.Duration
	}{
		{"AutoscalerTick", p.AutoscalerTick, 60 * time.Second},
		{"RateWindow", p.RateWindow, time.Minute},
		{"AlertFor", p.AlertFor, time.Minute},
		{"GrafanaRepeatInterval", p.GrafanaRepeatInterval, 5 * time.Minute},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("seed %s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestProfileByName(t *testing.T) {
	for _, name := range []string{"seed", "fast"} {
		p, err := ProfileByName(name)
		if err != nil || p.Name != name {
			t.Errorf("ProfileByName(%q) = %q, %v; want %q, nil", name, p.Name, err, name)
		}
	}
	if _, err := ProfileByName("slow"); err == nil || !strings.Contains(err.Error(), `"seed"`) {
		t.Errorf("ProfileByName(slow) error = %v, want one listing the valid names", err)
	}
}

func TestProfileValidateRejects(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Profile)
		want   string
	}{
		{"empty name", func(p *Profile) { p.Name = "" }, "empty name"},
		{"zero scrape", func(p *Profile) { p.ScrapeInterval = 0 }, "ScrapeInterval must be positive"},
		{"sub-millisecond", func(p *Profile) { p.AlertFor = time.Second + time.Microsecond }, "whole milliseconds"},
		{"rate window one scrape", func(p *Profile) { p.RateWindow = p.ScrapeInterval }, "fewer than two scrapes"},
		{"group interval not tick", func(p *Profile) { p.AlertmanagerGroupInterval = 2 * p.AutoscalerTick }, "must equal AutoscalerTick"},
		{"repeat equals group interval", func(p *Profile) { p.AlertmanagerRepeatInterval = p.AlertmanagerGroupInterval }, "flushes are skipped"},
		{"grafana 5s", func(p *Profile) { p.GrafanaEvalInterval = 5 * time.Second }, "multiple of 10s"},
		{"grafana repeat < group", func(p *Profile) { p.GrafanaRepeatInterval = p.GrafanaGroupInterval / 2 }, "GrafanaRepeatInterval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Seed()
			tt.change(&p)
			err := p.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{time.Second, "1s"},
		{15 * time.Second, "15s"},
		{time.Minute, "1m"},
		{90 * time.Second, "90s"},
		{5 * time.Minute, "5m"},
		{2 * time.Hour, "2h"},
		{2500 * time.Millisecond, "2500ms"},
	}
	for _, tt := range tests {
		if got := formatDuration(tt.d); got != tt.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestScrapeTimeout(t *testing.T) {
	if got := Seed().ScrapeTimeout(); got != 10*time.Second {
		t.Errorf("seed ScrapeTimeout = %v, want 10s", got)
	}
	if got := Fast().ScrapeTimeout(); got != time.Second {
		t.Errorf("fast ScrapeTimeout = %v, want 1s", got)
	}
}
