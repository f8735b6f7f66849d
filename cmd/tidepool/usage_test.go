package main

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestUsageErrors: every bad flag or value of every command is a usage
// error (exit 2) found before anything starts: it says what is wrong once,
// takes well under a second and leaves nothing in the working directory.
func TestUsageErrors(t *testing.T) {
	const uuid = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
	// Valid arguments of discover and autoscaler, for cases to add to.
	disc := []string{"discover", "-key", "k", "-secret", "s", "-pool-id", uuid, "-output", "sd/config.json", "-http-sd-listen", "127.0.0.1:0"}
	auto := []string{"autoscaler", "-key", "k", "-secret", "s", "-pool", uuid, "-endpoint", "http://127.0.0.1:1/v2", "-listen", "127.0.0.1:0"}
	with := func(base []string, more ...string) []string { return slices.Concat(base, more) }
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"app unknown flag", []string{"app", "-bogus"}, nil, "flag provided but not defined: -bogus"},
		{"app listen port", []string{"app", "-listen", ":99999"}, nil, `port "99999"`},
		{"app duration without unit", []string{"app", "-drain", "5"}, nil, "did you mean 5s?"},
		{"cloud overlapping ranges", []string{"cloud", "-member-net", "127.78.0.0/24"}, nil, "overlaps"},
		{"cloud listen port", []string{"cloud", "-listen", "127.0.0.1:99999"}, nil, `port "99999"`},
		{"cloud state dir under a file", []string{"cloud", "-state-dir", "file/state"}, nil, "is not a directory"},
		{"cloud missing member program", []string{"cloud", "-app-binary", "./no-such-tidepool"}, nil, "member program"},
		{"discover unknown flag", []string{"discover", "-bogus"}, nil, "flag provided but not defined: -bogus"},
		{"discover duration without unit", with(disc, "-interval", "5"), nil, "did you mean 5s?"},
		{"discover duration in env", disc, map[string]string{"TIDEPOOL_DISCOVER_INTERVAL": "10"}, "TIDEPOOL_DISCOVER_INTERVAL: a duration needs a unit: did you mean 10s?"},
		{"discover endpoint", with(disc, "-endpoint", "ftp://x/v2"), nil, "absolute http:// or https:// URL"},
		{"discover endpoint without scheme", with(disc, "-endpoint", "127.0.0.1:8580/v2"), nil, "absolute http:// or https:// URL"},
		{"discover listen port", with(disc, "-http-sd-listen", ":99999"), nil, `port "99999"`},
		{"discover output under a file", with(disc, "-output", "file/config.json"), nil, "is not a directory"},
		{"discover pool not a UUID", []string{"discover", "-key", "k", "-secret", "s", "-pool-id", "x"}, nil, "not a UUID"},
		{"autoscaler pool not a UUID", []string{"autoscaler", "-key", "k", "-secret", "s", "-pool", "not-a-uuid"}, nil, "not a UUID"},
		{"autoscaler NLB ID not a UUID", with(auto, "-nlb-id", "x", "-nlb-service-id", uuid), nil, "not a UUID"},
		{"autoscaler bare port", with(auto, "-listen", "99999"), nil, `port "99999"`},
		{"autoscaler LISTEN_PORT", auto[:len(auto)-2], map[string]string{"LISTEN_PORT": "99999"}, `port "99999"`},
		{"autoscaler endpoint", with(auto, "-endpoint", "localhost:8580"), nil, "absolute http:// or https:// URL"},
		{"autoscaler tick without unit", with(auto, "-tick", "60"), nil, "did you mean 60s?"},
		{"autoscaler state file under a file", with(auto, "-state-file", "file/as.json"), nil, "is not a directory"},
		{"autoscaler prometheus URL", with(auto, "-prometheus-url", "127.0.0.1:9090"), nil, "absolute http:// or https:// URL"},
		{"autoscaler predictive without prometheus", with(auto, "-policy", "predictive"), nil, "-policy predictive needs -prometheus-url"},
		{"autoscaler predictive target", with(auto, "-policy", "predictive", "-prometheus-url", "http://127.0.0.1:1", "-target-utilisation", "1.5"), nil, "target utilisation 1.5: want 0 < target <= 1"},
		{"autoscaler predictive burst", with(auto, "-policy", "predictive", "-prometheus-url", "http://127.0.0.1:1", "-burst", "-1"), nil, "burst margin -1: must not be negative"},
		{"autoscaler load step", with(auto, "-policy", "predictive", "-prometheus-url", "http://127.0.0.1:1", "-load-step", "0s"), nil, "-load-step 0s must be positive"},
		{"autoscaler policy", with(auto, "-policy", "reactive"), nil, `-policy "reactive": want webhook, target-tracking or predictive`},
		{"load target", []string{"load", "-target", "127.0.0.1:8000", "-stage", "hold:1:1s"}, nil, "absolute http:// or https:// URL"},
		{"load output under a file", []string{"load", "-target", "http://127.0.0.1:1/", "-stage", "hold:1:1s", "-out-csv", "file/x.csv"}, nil, "is not a directory"},
		{"demo profile", []string{"demo", "-profile", "slow"}, nil, "slow"},
		{"demo output under a file", []string{"demo", "-out", "file/out"}, nil, "is not a directory"},
		{"demo settle without unit", []string{"demo", "-settle", "90"}, nil, "did you mean 90s?"},
		{"demo bounds", []string{"demo", "-min", "3", "-max", "2"}, nil, "max 2 is below min 3"},
		{"demo live address without host", []string{"demo", "-live", "8088"}, nil, `live page address "8088": want HOST:PORT`},
		{"demo live port", []string{"demo", "-live", "127.0.0.1:99999"}, nil, `live page address "127.0.0.1:99999"`},
		{"demo live address in env", []string{"demo"}, map[string]string{"TIDEPOOL_DEMO_LIVE": "nonsense"}, `live page address "nonsense"`},
		{"demo predictive seasons", []string{"demo", "-policy", "predictive", "-seasons", "-1"}, nil, "seasons -1: must not be negative"},
		{"demo predictive history", []string{"demo", "-policy", "predictive", "-forecast-history", "-1h"}, nil, "-forecast-history -1h0m0s must not be negative"},
		{"demo predictive target in env", []string{"demo", "-policy", "predictive"}, map[string]string{"TIDEPOOL_DEMO_TARGET_UTILISATION": "0"}, "-target-utilisation 0: want 0 < target <= 1"},
		{"simulate output under a file", []string{"simulate", "-out", "file/sim"}, nil, "is not a directory"},
		{"simulate validation output under a file", []string{"simulate", "-validate", "-out", "file/sim"}, nil, "is not a directory"},
		{"simulate validation policy", []string{"simulate", "-validate", "-validate-policy", "reactive"}, nil, `-validate-policy "reactive": want webhook, target-tracking, predictive, both or all`},
		{"bench duration without unit", []string{"bench", "-duration", "10"}, nil, "did you mean 10s?"},
		{"monitoring relative file_sd", []string{"monitoring", "render", "--out", "mon", "--file-sd", "demo-out/file_sd/targets.json"}, nil, "must be absolute: Prometheus resolves"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir)
			if err := os.WriteFile("file", nil, 0o644); err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			start := time.Now()
			code := run(context.Background(), tt.args, &stdout, &stderr)
			if d := time.Since(start); d > time.Second {
				t.Errorf("took %v, want under a second", d)
			}
			if code != 2 || !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("tidepool %q = %d, stderr:\n%s\nwant 2 and %q", tt.args, code, stderr.String(), tt.want)
			}
			if n := strings.Count(stderr.String(), tt.want); n != 1 {
				t.Errorf("%q printed %d times, want once:\n%s", tt.want, n, stderr.String())
			}
			ents, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(ents) != 1 {
				var names []string
				for _, e := range ents {
					names = append(names, e.Name())
				}
				t.Errorf("working directory holds %v after a usage error, want only the test's file", names)
			}
		})
	}
}
