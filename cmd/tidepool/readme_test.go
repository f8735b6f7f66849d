package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// readmeFlags returns, per command ("demo", "monitoring render", ...), the
// flags the README mentions: the first column of each configuration table
// under "### tidepool CMD", every flag after "tidepool CMD" in its text, and
// DEMO_FLAGS / BENCH_FLAGS values for `make demo` and `make bench`.
func readmeFlags(t *testing.T, readme string) map[string][]string {
	t.Helper()
	flagRe := regexp.MustCompile(`(?:^|[\s"=\x60])(--?[a-z][a-z0-9-]*)`)
	out := map[string][]string{}
	subshell := regexp.MustCompile(`\$\([^)]*\)`) // another program's flags
	add := func(cmd, text string) {
		for _, m := range flagRe.FindAllStringSubmatch(subshell.ReplaceAllString(text, ""), -1) {
			if f := strings.TrimLeft(m[1], "-"); !slices.Contains(out[cmd], f) {
				out[cmd] = append(out[cmd], f)
			}
		}
	}
	names := strings.Join(commandNames(), "|")
	// Tables of the configuration reference.
	section := ""
	for line := range strings.Lines(readme) {
		if m := regexp.MustCompile(`^### tidepool (` + names + `)\b`).FindStringSubmatch(line); m != nil {
			section = m[1]
			if section == "monitoring" {
				section = "monitoring render"
			}
			continue
		}
		if strings.HasPrefix(line, "#") {
			section = ""
		}
		if section != "" && strings.HasPrefix(line, "| `-") {
			add(section, strings.Split(line, "|")[1])
		}
	}
	// Commands in the text and in code blocks, up to the end of the code
	// span, table cell or line.
	cmdRe := regexp.MustCompile(`tidepool (` + names + `)((?: render)?)([^\x60|\n]*)`)
	for _, m := range cmdRe.FindAllStringSubmatch(readme, -1) {
		add(strings.TrimSpace(m[1]+m[2]), m[3])
	}
	for _, m := range regexp.MustCompile(`(DEMO|BENCH)_FLAGS="?([^"\x60\n]*)`).FindAllStringSubmatch(readme, -1) {
		add(strings.ToLower(m[1]), m[2])
	}
	return out
}

func commandNames() []string {
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// readmeProblems lists every command flag the README mentions that
// `tidepool CMD -h` does not list, and every `make TARGET` the Makefile
// lacks.
func readmeProblems(t *testing.T, readme, makefile string) []string {
	t.Helper()
	var problems []string
	for cmd, fs := range readmeFlags(t, readme) {
		var stdout, stderr bytes.Buffer
		args := append(strings.Fields(cmd), "-h")
		if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
			problems = append(problems, "tidepool "+cmd+" -h failed: "+stderr.String())
			continue
		}
		for _, f := range fs {
			if !regexp.MustCompile(`(?m)^  -` + regexp.QuoteMeta(f) + `(\s|$)`).MatchString(stderr.String()) {
				problems = append(problems, "tidepool "+cmd+" -"+f)
			}
		}
	}
	targets := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([a-z][a-z-]*):`).FindAllStringSubmatch(makefile, -1) {
		targets[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`\bmake ([a-z][a-z-]*)`).FindAllStringSubmatch(readme, -1) {
		if !targets[m[1]] {
			problems = append(problems, "make "+m[1])
		}
	}
	slices.Sort(problems)
	return problems
}

// TestReadmeCommandsAndFlagsExist: every command and flag the README's quick
// start, command lines and configuration tables mention is listed by
// `tidepool CMD -h`, and every `make TARGET` it mentions is a Makefile
// target.
func TestReadmeCommandsAndFlagsExist(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	makefile, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	flags := readmeFlags(t, string(readme))
	for _, cmd := range []string{"app", "cloud", "discover", "autoscaler", "load", "demo", "monitoring render", "simulate", "bench"} {
		if len(flags[cmd]) < 5 {
			t.Errorf("found %d flags of tidepool %s in the README, want its table's: %v", len(flags[cmd]), cmd, flags[cmd])
		}
	}
	for _, p := range readmeProblems(t, string(readme), string(makefile)) {
		t.Errorf("the README mentions %s, which does not exist", p)
	}
}

// TestReadmeProblemsFindsMissing: the check above can fail, on a table
// flag, a flag in a command line, a DEMO_FLAGS value and a make target.
func TestReadmeProblemsFindsMissing(t *testing.T) {
	readme := "### tidepool app\n\n| `--listen`, `--nope` | env | x |\n\n" +
		"Run `tidepool load --target \"$(terraform output -raw url)\" --fast`.\n" +
		"`make demo DEMO_FLAGS=\"--policy target-tracking --colour\"` and `make deploy`\n"
	got := readmeProblems(t, readme, "demo: build\n")
	want := []string{"make deploy", "tidepool app -nope", "tidepool demo -colour", "tidepool load -fast"}
	if !slices.Equal(got, want) {
		t.Errorf("readmeProblems = %q, want %q", got, want)
	}
}
