package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRunDispatch(t *testing.T) {
	tests := []struct {
		args     []string
		wantCode int
		wantErr  string
	}{
		{nil, 2, "usage: tidepool"},
		{[]string{"help"}, 0, "commands:"},
		{[]string{"bogus"}, 2, `unknown command "bogus"`},
		{[]string{"app", "-work", "xyz"}, 2, "invalid value"},
		{[]string{"app", "extra"}, 2, "unexpected arguments"},
		{[]string{"app", "-h"}, 0, "-drain"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tt.args, &stdout, &stderr)
		if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantErr) {
			t.Errorf("run(%q) = %d, stderr %q; want %d containing %q", tt.args, code, stderr.String(), tt.wantCode, tt.wantErr)
		}
	}
}
