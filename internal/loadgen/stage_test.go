package loadgen

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseStage(t *testing.T) {
	tests := []struct {
		in   string
		want Stage
	}{
		{"ramp:0-100:30s", Stage{Kind: KindRamp, Duration: 30 * time.Second, From: 0, To: 100}},
		{"ramp:100-0.5:1m30s", Stage{Kind: KindRamp, Duration: 90 * time.Second, From: 100, To: 0.5}},
		{"  HOLD:100:1m ", Stage{Kind: KindHold, Duration: time.Minute, From: 100}},
		{"hold:0:5s", Stage{Kind: KindHold, Duration: 5 * time.Second}},
		{"spike:20-200/5s:30s", Stage{Kind: KindSpike, Duration: 30 * time.Second, From: 20, To: 200, Period: 5 * time.Second}},
		{"spike:0-50/10s:10s", Stage{Kind: KindSpike, Duration: 10 * time.Second, To: 50, Period: 10 * time.Second}},
		{"sine:50±30/20s:60s", Stage{Kind: KindSine, Duration: time.Minute, From: 50, Amplitude: 30, Period: 20 * time.Second}},
		{"sine:50+-50/20s:60s", Stage{Kind: KindSine, Duration: time.Minute, From: 50, Amplitude: 50, Period: 20 * time.Second}},
		{"sine: 5 ± 1 / 2s : 4s", Stage{Kind: KindSine, Duration: 4 * time.Second, From: 5, Amplitude: 1, Period: 2 * time.Second}},
	}
	for _, tt := range tests {
		got, err := ParseStage(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseStage(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			continue
		}
		// The canonical form parses back to the same stage.
		back, err := ParseStage(got.String())
		if err != nil || back != got {
			t.Errorf("ParseStage(%q.String() = %q) = %+v, %v; want %+v", tt.in, got.String(), back, err, got)
		}
	}
}

func TestParseStageErrors(t *testing.T) {
	tests := []struct {
		in      string
		wantErr string
	}{
		{"", "unknown kind"},
		{"warp:1:1s", `unknown kind "warp"`},
		{"ramp", "missing parameters"},
		{"ramp:0-100", "missing parameters or duration"},
		{"ramp:0-100:30", "bad duration"},
		{"ramp:100:30s", `missing "-"`},
		{"ramp:a-100:30s", "bad from"},
		{"ramp:-5-100:30s", "bad from"},
		{"ramp:0-100:0s", "duration must be > 0"},
		{"ramp:0-100:-1s", "duration must be > 0"},
		{"hold:-5:10s", "must be between 0"},
		{"hold:inf:10s", "bad rate"},
		{"hold:NaN:10s", "bad rate"},
		{"hold:2e6:10s", "must be between 0"},
		{"hold:10-20:10s", "bad rate"},
		{"spike:20-200:30s", "missing /WIDTH"},
		{"spike:20-200/x:30s", "bad width"},
		{"spike:20-200/40s:30s", "width (period) must be > 0 and <= duration"},
		{"sine:50±30:60s", "missing /PERIOD"},
		{"sine:50/20s:60s", `missing "+-"`},
		{"sine:10±20/5s:10s", "must not exceed the mean"},
		{"sine:10±5/0s:10s", "period must be > 0"},
	}
	for _, tt := range tests {
		got, err := ParseStage(tt.in)
		if err == nil {
			t.Errorf("ParseStage(%q) = %+v, nil; want error containing %q", tt.in, got, tt.wantErr)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, tt.wantErr) || !strings.Contains(msg, "want") || !strings.Contains(msg, tt.in) {
			t.Errorf("ParseStage(%q) error = %q; want it to contain %q, the input and the expected syntax", tt.in, msg, tt.wantErr)
		}
	}
}

func TestStageValidateUnusedFields(t *testing.T) {
	tests := []struct {
		st      Stage
		wantErr string // "" means valid
	}{
		{Stage{Kind: KindHold, Duration: time.Second, From: 5}, ""},
		{Stage{Kind: KindHold, Duration: time.Second, To: 5}, "field to is not used"},
		{Stage{Kind: KindRamp, Duration: time.Second, To: 5, Period: time.Second}, "field period is not used"},
		{Stage{Kind: KindSine, Duration: time.Second, From: 5, Amplitude: 1, Period: time.Second, To: 3}, "field to is not used"},
		{Stage{Kind: KindSpike, Duration: time.Second, From: 1, To: 5, Period: time.Second, Amplitude: 1}, "field amplitude is not used"},
		{Stage{}, "unknown stage kind"},
		{Stage{Kind: KindHold, From: 5}, "duration must be > 0"},
	}
	for _, tt := range tests {
		err := tt.st.Validate()
		if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%+v.Validate() = %v; want error containing %q", tt.st, err, tt.wantErr)
		}
	}
}

func TestLoadScenario(t *testing.T) {
	want := []Stage{
		{Kind: KindRamp, Duration: 30 * time.Second, To: 100},
		{Kind: KindHold, Duration: time.Minute, From: 100},
		{Kind: KindSine, Duration: time.Minute, From: 50, Amplitude: 30, Period: 20 * time.Second},
		{Kind: KindSpike, Duration: 30 * time.Second, From: 20, To: 200, Period: 5 * time.Second},
	}
	tests := []struct {
		name, content string
	}{
		{"list.yaml", "- ramp:0-100:30s\n- hold:100:60s\n- sine:50±30/20s:60s\n- spike:20-200/5s:30s\n"},
		{"mapping.yaml", `stages:
  - {kind: ramp, from: 0, to: 100, duration: 30s}
  - kind: hold
    from: 100
    duration: 1m
  - sine:50+-30/20s:1m
  - {kind: SPIKE, from: 20, to: 200, period: 5s, duration: 30s}
`},
		{"scenario.json", `{"stages": [
  {"kind": "ramp", "to": 100, "duration": "30s"},
  "hold:100:60s",
  {"kind": "sine", "from": 50, "amplitude": 30, "period": "20s", "duration": "60s"},
  "spike:20-200/5s:30s"
]}`},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		path := filepath.Join(dir, tt.name)
		if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := LoadScenario(path)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("LoadScenario(%s) = %+v, %v; want %+v", tt.name, got, err, want)
		}
	}
}

func TestLoadScenarioErrors(t *testing.T) {
	tests := []struct {
		name, content, wantErr string
	}{
		{"empty", "", "empty document"},
		{"no stages", "stages: []\n", "no stages"},
		{"empty list", "[]\n", "no stages"},
		{"scalar", "hold:1:1s\n", "want a list of stages"},
		{"unknown top key", "stage:\n  - hold:1:1s\n", `unknown key "stage"`},
		{"unknown stage key", "- {kind: hold, rate: 5, duration: 1s}\n", `stage 1 (line 1): unknown key "rate"`},
		{"bad flag syntax", "- hold:1:1s\n- ramp:5:1s\n", "stage 2 (line 2)"},
		{"bad duration", "- {kind: hold, from: 5, duration: 10}\n", `bad duration "10"`},
		{"invalid stage", "- {kind: sine, from: 5, amplitude: 9, period: 1s, duration: 1s}\n", "must not exceed the mean"},
		{"broken yaml", "- [unclosed\n", "parse"},
		{"broken json", `{"stages": [`, "parse"},
		{"nested list", "- [hold:1:1s]\n", "want a string"},
	}
	dir := t.TempDir()
	for i, tt := range tests {
		path := filepath.Join(dir, "s"+string(rune('a'+i))+".yaml")
		if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := LoadScenario(path)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: LoadScenario = %+v, %v; want error naming the file and containing %q", tt.name, got, err, tt.wantErr)
		}
	}
	if _, err := LoadScenario(filepath.Join(dir, "missing.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadScenario(missing) = %v; want a not-exist error", err)
	}
}
