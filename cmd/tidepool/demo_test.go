package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestDemoLiveFlag(t *testing.T) {
	for _, bad := range []string{"nonsense", "8088", ""} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{"demo", "-live", bad}, &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), "bad -live") {
			t.Errorf("demo -live %q = %d, stderr %q; want 2 and the flag named", bad, code, stderr.String())
		}
	}
}
