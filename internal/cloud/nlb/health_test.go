package nlb

import (
	"testing"
	"time"
)

func TestNextHealth(t *testing.T) {
	tests := []struct {
		name        string
		cur         healthState
		passed      bool
		retries     int
		want        healthState
		wantFlipped bool
	}{
		{"new member passes, retries 1", healthState{}, true, 1, healthState{Healthy: true}, true},
		{"new member passes, retries 3", healthState{}, true, 3, healthState{Streak: 1}, false},
		{"second pass of 3", healthState{Streak: 1}, true, 3, healthState{Streak: 2}, false},
		{"third pass of 3 flips", healthState{Streak: 2}, true, 3, healthState{Healthy: true}, true},
		{"fail resets a pass streak", healthState{Streak: 2}, false, 3, healthState{}, false},
		{"healthy keeps passing", healthState{Healthy: true}, true, 2, healthState{Healthy: true}, false},
		{"first fail of 2", healthState{Healthy: true}, false, 2, healthState{Healthy: true, Streak: 1}, false},
		{"second fail of 2 flips", healthState{Healthy: true, Streak: 1}, false, 2, healthState{}, true},
		{"pass resets a fail streak", healthState{Healthy: true, Streak: 1}, true, 2, healthState{Healthy: true}, false},
		{"unhealthy keeps failing", healthState{}, false, 1, healthState{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, flipped := nextHealth(tt.cur, tt.passed, tt.retries)
			if got != tt.want || flipped != tt.wantFlipped {
				t.Errorf("nextHealth(%+v, %v, %d) = %+v, %v; want %+v, %v",
					tt.cur, tt.passed, tt.retries, got, flipped, tt.want, tt.wantFlipped)
			}
		})
	}
}

func TestHealthCheckValidate(t *testing.T) {
	tests := []struct {
		name    string
		hc      HealthCheck
		wantErr bool
	}{
		{"zero", HealthCheck{}, false},
		{"tcp", HealthCheck{Mode: "tcp", Port: 22}, false},
		{"http", HealthCheck{Mode: "http", URI: "/health", Interval: time.Second, Timeout: time.Second, Retries: 3}, false},
		{"https", HealthCheck{Mode: "https", TLSSNI: "example.com"}, false},
		{"unknown mode", HealthCheck{Mode: "udp"}, true},
		{"upper case mode", HealthCheck{Mode: "HTTP"}, true},
		{"negative interval", HealthCheck{Interval: -time.Second}, true},
		{"negative timeout", HealthCheck{Timeout: -time.Second}, true},
		{"negative retries", HealthCheck{Retries: -1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.hc.Validate()
			if (err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestHealthCheckDefaults(t *testing.T) {
	tests := []struct {
		name string
		hc   HealthCheck
		want HealthCheck
	}{
		{"zero", HealthCheck{}, HealthCheck{Mode: "tcp", Port: 8080, URI: "/", Interval: 10 * time.Second, Timeout: 5 * time.Second, Retries: 1}},
		{"set fields kept", HealthCheck{Mode: "http", Port: 9, URI: "/h", Interval: time.Second, Timeout: 2 * time.Second, Retries: 4},
			HealthCheck{Mode: "http", Port: 9, URI: "/h", Interval: time.Second, Timeout: 2 * time.Second, Retries: 4}},
		{"uri without slash", HealthCheck{Mode: "http", URI: "status"}, HealthCheck{Mode: "http", Port: 8080, URI: "/status", Interval: 10 * time.Second, Timeout: 5 * time.Second, Retries: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.hc.withDefaults(8080); got != tt.want {
				t.Errorf("withDefaults(8080) = %+v, want %+v", got, tt.want)
			}
		})
	}
}
