package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBenchCommandUsage: bad flags are rejected before anything starts.
func TestBenchCommandUsage(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"help", []string{"-h"}, 0, "-search-trials"},
		{"bad rate", []string{"-rates", "500,x"}, 2, `rate "x"`},
		{"zero rate", []string{"-rates", "0"}, 2, "positive number"},
		{"zero duration", []string{"-duration", "0s"}, 2, "must be > 0"},
		{"negative stall", []string{"-stall", "-1s"}, 2, "must not be negative"},
		{"bad conns", []string{"-conns", "new,pipelined"}, 2, `"pipelined" is not new or reuse`},
		{"out under a file", []string{"-out", filepath.Join(file, "b.json")}, 2, "is not a directory"},
		{"positional", []string{"extra"}, 2, "unexpected arguments"},
		{"helper role without flags", []string{"_nlb", "-backends", "x"}, 1, `backend "x"`},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := runBench(context.Background(), tt.args, &stdout, &stderr)
		if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantErr) {
			t.Errorf("%s: runBench(%q) = %d, stderr %q; want %d containing %q", tt.name, tt.args, code, stderr.String(), tt.wantCode, tt.wantErr)
		}
	}
}

func TestBenchOutPath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	tests := []struct {
		out, want, wantErr string
	}{
		{dir, filepath.Join(dir, "bench.json"), ""},
		{".", filepath.Join(dir, "bench.json"), ""},
		{filepath.Join(dir, "x.json"), filepath.Join(dir, "x.json"), ""},
		{"results/x.json", filepath.Join(dir, "results", "x.json"), ""},
		{"", "", "empty path"},
	}
	for _, tt := range tests {
		got, err := benchOutPath(tt.out)
		if got != tt.want || (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("benchOutPath(%q) = %q, %v; want %q, error containing %q", tt.out, got, err, tt.want, tt.wantErr)
		}
	}
}
