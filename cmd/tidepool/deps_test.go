package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// harnesses are the packages only tests may import.
var harnesses = []string{"tidepool/internal/buildbin", "tidepool/internal/cloud/apispec", "tidepool/internal/cloud/cloudtest", "tidepool/internal/deploytest", "tidepool/internal/live/browsertest"}

// allowedDeps lists, for the packages with a rule, every tidepool package
// they may depend on (directly or not); the package doc comments say why.
// A package without a rule is only kept from the test harnesses.
var allowedDeps = map[string][]string{
	"tidepool/internal/app":               nil,
	"tidepool/internal/atomicfile":        nil,
	"tidepool/internal/backoff":           nil,
	"tidepool/internal/envflag":           nil,
	"tidepool/internal/exoclient":         nil,
	"tidepool/internal/loopback":          nil,
	"tidepool/internal/outpath":           nil,
	"tidepool/internal/cloud/apispec":     nil,
	"tidepool/internal/promquery":         nil,
	"tidepool/internal/provision":         nil,
	"tidepool/internal/supervise":         nil,
	"tidepool/internal/cloud/cgroup":      nil,
	"tidepool/internal/cloud/nlb":         {"tidepool/internal/ratelog"},
	"tidepool/internal/httpbody":          nil,
	"tidepool/internal/ratelog":           nil,
	"tidepool/internal/autoscaler/policy": nil,
	"tidepool/internal/cloud/member":      {"tidepool/internal/cloud/cgroup", "tidepool/internal/supervise"},
	"tidepool/internal/bench/haproxy":     {"tidepool/internal/loopback", "tidepool/internal/supervise"},
	"tidepool/internal/loadgen":           {"tidepool/internal/atomicfile"},
	"tidepool/internal/monitoring":        {"tidepool/internal/atomicfile"},
	"tidepool/internal/report":            {"tidepool/internal/atomicfile"},
	"tidepool/internal/live":              {"tidepool/internal/atomicfile", "tidepool/internal/report"},
	"tidepool/internal/discover":          {"tidepool/internal/atomicfile", "tidepool/internal/backoff"},
	"tidepool/internal/autoscaler": {"tidepool/internal/atomicfile", "tidepool/internal/autoscaler/policy",
		"tidepool/internal/backoff", "tidepool/internal/httpbody", "tidepool/internal/monitoring", "tidepool/internal/promquery"},
	"tidepool/internal/simulate": {"tidepool/internal/atomicfile", "tidepool/internal/autoscaler/policy",
		"tidepool/internal/loadgen", "tidepool/internal/monitoring", "tidepool/internal/report"},
	"tidepool/internal/promrun": {"tidepool/internal/loopback", "tidepool/internal/supervise"},
}

// TestDependencyRules keeps the import graph as the package docs describe
// it: production code never depends on a test harness, and each package
// with a rule depends only on the tidepool packages the rule allows.
func TestDependencyRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Deps \" \"}}", "tidepool/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg, deps := f[0], f[1:]
		seen[pkg] = true
		var own []string
		for _, d := range deps {
			if strings.HasPrefix(d, "tidepool/") {
				own = append(own, d)
			}
		}
		if !slices.Contains(harnesses, pkg) {
			for _, h := range harnesses {
				if slices.Contains(own, h) {
					t.Errorf("%s depends on the test harness %s", pkg, h)
				}
			}
		}
		allowed, ok := allowedDeps[pkg]
		if !ok {
			continue
		}
		for _, d := range own {
			if !slices.Contains(allowed, d) {
				t.Errorf("%s depends on %s; allowed: %v", pkg, d, allowed)
			}
		}
	}
	for pkg := range allowedDeps {
		if !seen[pkg] {
			t.Errorf("rule for %s, which go list does not know", pkg)
		}
	}
}
