// A study: what `tidepool simulate` runs, every trace under every setup, with
// its tables, charts and result files.

package simulate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"tidepool/internal/atomicfile"
	"tidepool/internal/loadgen"
)

// Study compares setups on traces: `tidepool simulate` builds one from its
// flags and runs it.
type Study struct {
	// Traces are simulated in order; required.
	Traces []Trace
	// Pool is the simulated pool (Pool.Validate must accept it).
	Pool Pool
	// Setups are the policies compared; required.
	Setups []Setup
	// Profile and Target are the monitoring profile's name and the CPU
	// target the setups were built with; they only label the results.
	Profile string
	Target  float64
	// OutDir receives <trace>.png, results.md and results.csv; it is
	// created if missing. "" means print only.
	OutDir string
}

// Run simulates every trace under every setup, prints one table per trace
// (and a summary over several traces) to w and writes the result files
// into OutDir, each atomically. It stops with an error at the first trace
// that fails, or when ctx is cancelled between traces; files already
// written stay.
func (s Study) Run(ctx context.Context, w io.Writer) error {
	if len(s.Traces) == 0 || len(s.Setups) == 0 {
		return errors.New("simulate: a study needs traces and setups")
	}
	p := s.Pool
	var md, csv bytes.Buffer
	fmt.Fprintf(&md, "# tidepool simulate results\n\nProfile %s; %d policies; capacity %g req/s per member, SLO utilisation %.0f%%, pool %d..%d, boot %s, drain %s, request timeout %s, target CPU %.0f%%.\n\n",
		s.Profile, len(s.Setups), p.Capacity, p.SLO*100, max(p.Min, 1), p.Max, p.BootDelay, p.DrainDelay, p.Timeout, s.Target*100)
	started := time.Now()
	var results []Result
	for i, tr := range s.Traces {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted: %w", ctx.Err())
		}
		r, err := Compare(tr, p, s.Setups)
		if err != nil {
			return err
		}
		results = append(results, r)
		if i > 0 {
			fmt.Fprintln(w)
		}
		if err := r.WriteTable(w); err != nil {
			return err
		}
		if s.OutDir == "" {
			continue
		}
		r.WriteMarkdown(&md)
		fmt.Fprintf(&md, "![%s](%s.png)\n\n", tr.Name, tr.Name)
		r.WriteCSV(&csv, i == 0)
		var png bytes.Buffer
		if err := r.WriteChart(&png); err != nil {
			return fmt.Errorf("chart of %s: %w", tr.Name, err)
		}
		if err := writeOut(s.OutDir, tr.Name+".png", png.Bytes()); err != nil {
			return err
		}
	}
	if len(results) > 1 {
		fmt.Fprintln(w)
		WriteSummary(w, results, false)
		WriteSummary(&md, results, true)
	}
	if s.OutDir == "" {
		return nil
	}
	for name, b := range map[string][]byte{"results.md": md.Bytes(), "results.csv": csv.Bytes()} {
		if err := writeOut(s.OutDir, name, b); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "\n%d traces simulated in %s; charts, results.md and results.csv in %s\n", len(s.Traces), time.Since(started).Round(time.Millisecond), s.OutDir)
	return nil
}

func writeOut(dir, name string, b []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(dir, name), b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// SetupNames lists the names of the Standard setups, in order.
func SetupNames() []string {
	var names []string
	for _, s := range Standard(Options{}) {
		names = append(names, s.Name)
	}
	return names
}

// LoadTraces returns the traces `tidepool simulate` names: each of names
// (a shipped trace, else a CSV file), then one trace of stages (named
// "stages") or of the scenario file's stages (named after the file), each
// sampled every second; every shipped trace when nothing is named. Giving
// both stages and a scenario is an error.
func LoadTraces(names []string, stages []loadgen.Stage, scenario string) ([]Trace, error) {
	if len(stages) > 0 && scenario != "" {
		return nil, errors.New("give either -stage or -scenario, not both")
	}
	var out []Trace
	for _, n := range names {
		if tr, err := Builtin(n); err == nil {
			out = append(out, tr)
			continue
		}
		if _, err := os.Stat(n); err != nil {
			return nil, fmt.Errorf("-trace %q is neither a shipped trace (%s) nor a readable file", n, strings.Join(BuiltinNames(), ", "))
		}
		tr, err := LoadCSV(n)
		if err != nil {
			return nil, err
		}
		out = append(out, tr)
	}
	name := "stages"
	if scenario != "" {
		st, err := loadgen.LoadScenario(scenario)
		if err != nil {
			return nil, err
		}
		stages, name = st, strings.TrimSuffix(filepath.Base(scenario), filepath.Ext(scenario))
	}
	if len(stages) > 0 {
		tr, err := FromStages(name, stages, time.Second)
		if err != nil {
			return nil, err
		}
		out = append(out, tr)
	}
	if len(out) == 0 {
		for _, n := range BuiltinNames() {
			tr, err := Builtin(n)
			if err != nil {
				return nil, err
			}
			out = append(out, tr)
		}
	}
	return out, nil
}
