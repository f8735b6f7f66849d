package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestBenchCommandUsage: bad flags are rejected before anything starts.
func TestBenchCommandUsage(t *testing.T) {
	dir := t.TempDir()
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
		{"missing out dir", []string{"-out", filepath.Join(dir, "no", "b.json")}, 2, "does not exist"},
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
	tests := []struct {
		out, want, wantErr string
	}{
		{dir, filepath.Join(dir, "bench.json"), ""},
		{filepath.Join(dir, "x.json"), filepath.Join(dir, "x.json"), ""},
		{filepath.Join(dir, "nope", "x.json"), "", "does not exist"},
		{"", "", "must not be empty"},
	}
	for _, tt := range tests {
		got, err := benchOutPath(tt.out)
		if got != tt.want || (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("benchOutPath(%q) = %q, %v; want %q, error containing %q", tt.out, got, err, tt.want, tt.wantErr)
		}
	}
}
