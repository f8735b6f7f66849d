package monitoring

import (
	"errors"
	"fmt"
	"time"
)

// Profile holds every timing of the monitoring stack. One set of templates is
// rendered with a Profile: "seed" is the faithful course setup, "fast" the
// same stack shrunk to seconds for demos and tests.
type Profile struct {
	// Name identifies the profile ("seed", "fast"); it is written into the
	// header comment of every rendered file.
	Name string

	// ScrapeInterval is Prometheus's global scrape_interval (and the file_sd
	// refresh fallback). The scrape timeout is min(ScrapeInterval, 10s).
	ScrapeInterval time.Duration
	// EvaluationInterval is how often Prometheus evaluates the recording and
	// alerting rules.
	EvaluationInterval time.Duration
	// RateWindow is the range of every rate() in rules and dashboard; it must
	// hold at least two scrapes.
	RateWindow time.Duration
	// AlertFor is the `for` of the Prometheus scale-up and scale-down alerts.
	AlertFor time.Duration

	// AutoscalerTick is how often the autoscaler acts; Alertmanager re-sends a
	// still-firing alert once per tick.
	AutoscalerTick time.Duration
	// AlertmanagerGroupWait delays the first notification of a new alert group.
	AlertmanagerGroupWait time.Duration
	// AlertmanagerGroupInterval is how often a group is flushed; it equals
	// AutoscalerTick.
	AlertmanagerGroupInterval time.Duration
	// AlertmanagerRepeatInterval is shorter than AlertmanagerGroupInterval so
	// that every flush of a still-firing group re-sends it (see
	// alertmanager.yml for why).
	AlertmanagerRepeatInterval time.Duration

	// GrafanaEvalInterval is the evaluation interval of the Grafana alert rule
	// group; Grafana requires a multiple of 10s.
	GrafanaEvalInterval time.Duration
	// GrafanaFor is the `for` of the Grafana alert rules.
	GrafanaFor time.Duration
	// GrafanaGroupWait and GrafanaGroupInterval time the Grafana notification
	// policy; GrafanaRepeatInterval is how often a still-firing Grafana alert
	// is re-sent (at the first group flush once it has elapsed).
	GrafanaGroupWait      time.Duration
	GrafanaGroupInterval  time.Duration
	GrafanaRepeatInterval time.Duration

	// DashboardRefresh is the dashboard's auto-refresh; DashboardRange the
	// time range it shows (now-DashboardRange to now).
	DashboardRefresh time.Duration
	DashboardRange   time.Duration
}

// Seed is the faithful profile: a 60s autoscaler tick, 1m rate windows and
// `for: 1m`, Grafana re-sending every 5m. A 15s scrape puts four samples in
// every 1m rate window.
func Seed() Profile {
	return Profile{
		Name:                       "seed",
		ScrapeInterval:             15 * time.Second,
		EvaluationInterval:         15 * time.Second,
		RateWindow:                 time.Minute,
		AlertFor:                   time.Minute,
		AutoscalerTick:             time.Minute,
		AlertmanagerGroupWait:      10 * time.Second,
		AlertmanagerGroupInterval:  time.Minute,
		AlertmanagerRepeatInterval: 30 * time.Second,
		GrafanaEvalInterval:        time.Minute,
		GrafanaFor:                 time.Minute,
		GrafanaGroupWait:           30 * time.Second,
		GrafanaGroupInterval:       time.Minute,
		GrafanaRepeatInterval:      5 * time.Minute,
		DashboardRefresh:           30 * time.Second,
		DashboardRange:             30 * time.Minute,
	}
}

// Fast is the seed profile in seconds, for demos and tests: 1s scrape and
// evaluation, 5s rate window, `for: 3s`, Alertmanager re-sending every 5s
// autoscaler tick. Grafana cannot evaluate faster than every 10s.
func Fast() Profile {
	return Profile{
		Name:                       "fast",
		ScrapeInterval:             time.Second,
		EvaluationInterval:         time.Second,
		RateWindow:                 5 * time.Second,
		AlertFor:                   3 * time.Second,
		AutoscalerTick:             5 * time.Second,
		AlertmanagerGroupWait:      time.Second,
		AlertmanagerGroupInterval:  5 * time.Second,
		AlertmanagerRepeatInterval: 2 * time.Second,
		GrafanaEvalInterval:        10 * time.Second,
		GrafanaFor:                 10 * time.Second,
		GrafanaGroupWait:           time.Second,
		GrafanaGroupInterval:       10 * time.Second,
		GrafanaRepeatInterval:      10 * time.Second,
		DashboardRefresh:           5 * time.Second,
		DashboardRange:             5 * time.Minute,
	}
}

// Profiles returns the built-in profiles, seed first.
func Profiles() []Profile { return []Profile{Seed(), Fast()} }

// ProfileByName returns the built-in profile called name, or an error listing
// the valid names.
func ProfileByName(name string) (Profile, error) {
	var names []string
	for _, p := range Profiles() {
		if p.Name == name {
			return p, nil
		}
		names = append(names, p.Name)
	}
	return Profile{}, fmt.Errorf("unknown monitoring profile %q (want one of %q)", name, names)
}

// ArrivalWindow is the range of the irate() of the pool's arrival rate
// (RuleArrivalRate), which uses the last two samples in it: three scrapes,
// so that a member whose latest scrape is late or failed still has two
// (with two scrapes it would drop out of the sum), while the rate stays one
// scrape interval of arrivals and leads the CPU's RateWindow.
func (p Profile) ArrivalWindow() time.Duration {
	return 3 * p.ScrapeInterval
}

// ScrapeTimeout is the scrape_timeout rendered for p: min(ScrapeInterval, 10s).
func (p Profile) ScrapeTimeout() time.Duration {
	return min(p.ScrapeInterval, 10*time.Second)
}

// Validate reports the first inconsistency in p: a missing duration, a rate
// window too short for two scrapes, an Alertmanager repeat interval that would
// skip ticks, or a Grafana interval Grafana cannot schedule.
func (p Profile) Validate() error {
	if p.Name == "" {
		return errors.New("profile: empty name")
	}
	durations := []struct {
		name string
		d    time.Duration
	}{
		{"ScrapeInterval", p.ScrapeInterval}, {"EvaluationInterval", p.EvaluationInterval},
		{"RateWindow", p.RateWindow}, {"AlertFor", p.AlertFor}, {"AutoscalerTick", p.AutoscalerTick},
		{"AlertmanagerGroupWait", p.AlertmanagerGroupWait}, {"AlertmanagerGroupInterval", p.AlertmanagerGroupInterval},
		{"AlertmanagerRepeatInterval", p.AlertmanagerRepeatInterval}, {"GrafanaEvalInterval", p.GrafanaEvalInterval},
		{"GrafanaFor", p.GrafanaFor}, {"GrafanaGroupWait", p.GrafanaGroupWait},
		{"GrafanaGroupInterval", p.GrafanaGroupInterval}, {"GrafanaRepeatInterval", p.GrafanaRepeatInterval},
		{"DashboardRefresh", p.DashboardRefresh}, {"DashboardRange", p.DashboardRange},
	}
	for _, d := range durations {
		if d.d <= 0 {
			return fmt.Errorf("profile %s: %s must be positive, got %v", p.Name, d.name, d.d)
		}
		if d.d%time.Millisecond != 0 {
			return fmt.Errorf("profile %s: %s must be whole milliseconds, got %v", p.Name, d.name, d.d)
		}
	}
	if p.RateWindow < 2*p.ScrapeInterval {
		return fmt.Errorf("profile %s: RateWindow %v holds fewer than two scrapes of %v", p.Name, p.RateWindow, p.ScrapeInterval)
	}
	if p.AlertmanagerGroupInterval != p.AutoscalerTick {
		return fmt.Errorf("profile %s: AlertmanagerGroupInterval %v must equal AutoscalerTick %v", p.Name, p.AlertmanagerGroupInterval, p.AutoscalerTick)
	}
	if p.AlertmanagerRepeatInterval >= p.AlertmanagerGroupInterval {
		return fmt.Errorf("profile %s: AlertmanagerRepeatInterval %v must be shorter than AlertmanagerGroupInterval %v or flushes are skipped",
			p.Name, p.AlertmanagerRepeatInterval, p.AlertmanagerGroupInterval)
	}
	if p.GrafanaEvalInterval%(10*time.Second) != 0 {
		return fmt.Errorf("profile %s: GrafanaEvalInterval %v is not a multiple of 10s", p.Name, p.GrafanaEvalInterval)
	}
	if p.GrafanaRepeatInterval < p.GrafanaGroupInterval {
		return fmt.Errorf("profile %s: GrafanaRepeatInterval %v is shorter than GrafanaGroupInterval %v", p.Name, p.GrafanaRepeatInterval, p.GrafanaGroupInterval)
	}
	return nil
}

// formatDuration writes d the way Prometheus, Alertmanager and Grafana all
// parse it: one integer with the largest unit that divides it exactly
// ("1m", "15s", "2500ms", "2h").
func formatDuration(d time.Duration) string {
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}}
	for _, u := range units {
		if d%u.unit == 0 {
			return fmt.Sprintf("%d%s", d/u.unit, u.suffix)
		}
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}
