package envflag

import (
	"bytes"
	"flag"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		wantPort int
		wantWait time.Duration
		wantErr  string
	}{
		{name: "defaults", wantPort: 8080, wantWait: time.Second},
		{name: "env", env: map[string]string{"LISTEN_PORT": "9000"}, wantPort: 9000, wantWait: time.Second},
		{name: "second variable", env: map[string]string{"APP_PORT": "9001"}, wantPort: 9001, wantWait: time.Second},
		{name: "first variable wins", env: map[string]string{"LISTEN_PORT": "1", "APP_PORT": "2"}, wantPort: 1, wantWait: time.Second},
		{name: "empty variable ignored", env: map[string]string{"LISTEN_PORT": ""}, wantPort: 8080, wantWait: time.Second},
		{name: "flag beats env", env: map[string]string{"LISTEN_PORT": "9000"}, args: []string{"-port", "7000"}, wantPort: 7000, wantWait: time.Second},
		{name: "bad env", env: map[string]string{"WAIT": "soon"}, wantErr: "environment variable WAIT"},
		{name: "bad flag", args: []string{"-port", "x"}, wantErr: "invalid value"},
		{name: "duration without unit", args: []string{"-wait", "5"}, wantErr: "did you mean 5s?"},
		{name: "duration without unit in env", env: map[string]string{"WAIT": "2.5"}, wantErr: "WAIT: a duration needs a unit: did you mean 2.5s?"},
		{name: "bad duration", args: []string{"-wait", "soon"}, wantErr: "want a duration such as"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			var out bytes.Buffer
			fs.SetOutput(&out)
			port := fs.Int("port", 8080, "port")
			wait := fs.Duration("wait", time.Second, "wait")
			lookup := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			err := Parse(fs, tt.args, map[string][]string{"port": {"LISTEN_PORT", "APP_PORT"}, "wait": {"WAIT"}}, lookup)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				if !strings.Contains(out.String(), "[env LISTEN_PORT, APP_PORT]") {
					t.Errorf("usage does not list env variables:\n%s", out.String())
				}
				if !strings.Contains(out.String(), "-wait duration") {
					t.Errorf("usage does not name the duration type:\n%s", out.String())
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if *port != tt.wantPort || *wait != tt.wantWait {
				t.Errorf("got port %d wait %s, want %d %s", *port, *wait, tt.wantPort, tt.wantWait)
			}
		})
	}
}

func TestParseUnknownFlagName(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	if err := Parse(fs, nil, map[string][]string{"nope": {"X"}}, nil); err == nil {
		t.Fatal("want error for a mapping to a flag that does not exist")
	}
}

// listValue appends on every Set, like a repeatable flag.
type listValue []string

func (l *listValue) String() string     { return strings.Join(*l, ",") }
func (l *listValue) Set(v string) error { *l = append(*l, v); return nil }

func TestFlagReplacesEnvironmentList(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var l listValue
	fs.Var(&l, "target", "targets")
	env := map[string]string{"TARGETS": "from-env"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if err := Parse(fs, []string{"-target", "a", "-target", "b"}, map[string][]string{"target": {"TARGETS"}}, lookup); err != nil {
		t.Fatal(err)
	}
	if got := l.String(); got != "a,b" {
		t.Errorf("targets = %q, want the command line's a,b only", got)
	}
}
