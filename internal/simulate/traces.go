package simulate

import (
	"bytes"
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"tidepool/internal/atomicfile"
	"tidepool/internal/loadgen"
)

// shipped holds the default trace set as CSV files (see ReadCSV), written by
// WriteBuiltins from BuiltinStages.
//
//go:embed traces/*.csv
var shipped embed.FS

// builtin is one shipped smooth trace: load stages sampled every step.
type builtin struct {
	name   string
	step   time.Duration
	stages []loadgen.Stage
	seed   uint64 // of its noisy Poisson version
}

// PoissonSuffix names the noisy version of a shipped trace.
const PoissonSuffix = "-poisson"

func hold(rate float64, d time.Duration) loadgen.Stage {
	return loadgen.Stage{Kind: loadgen.KindHold, From: rate, Duration: d}
}

func ramp(from, to float64, d time.Duration) loadgen.Stage {
	return loadgen.Stage{Kind: loadgen.KindRamp, From: from, To: to, Duration: d}
}

// builtins are the default trace set on the seed's time scale, for members
// serving 12.5 req/s at 100 % CPU (10 req/s at the 80 % SLO). Rates are
// chosen off the 10 req/s boundaries so that no policy sits exactly on a
// threshold.
var builtins = func() []builtin {
	min := time.Minute
	var square []loadgen.Stage
	for range 30 { // 115 <-> 35 req/s, 60 s each: the seed's tick
		square = append(square, hold(115, min), hold(35, min))
	}
	return []builtin{
		{name: "step", step: time.Second, seed: 1, stages: []loadgen.Stage{
			hold(25, 20*min), hold(145, 40*min), hold(25, 30*min)}},
		{name: "ramp", step: time.Second, seed: 2, stages: []loadgen.Stage{
			hold(15, 10*min), ramp(15, 195, 50*min), hold(195, 20*min), ramp(195, 15, 30*min), hold(15, 10*min)}},
		{name: "sine", step: 10 * time.Second, seed: 3, stages: []loadgen.Stage{
			{Kind: loadgen.KindSine, From: 105, Amplitude: 95, Period: 24 * time.Hour, Duration: 24 * time.Hour}}},
		{name: "spike", step: time.Second, seed: 4, stages: []loadgen.Stage{
			hold(35, 15*min), {Kind: loadgen.KindSpike, From: 35, To: 245, Period: 5 * min, Duration: 45 * min}}},
		{name: "square", step: time.Second, seed: 5, stages: square},
	}
}()

// BuiltinNames lists the shipped traces in table order: each smooth trace
// followed by its Poisson version.
func BuiltinNames() []string {
	var names []string
	for _, b := range builtins {
		names = append(names, b.name, b.name+PoissonSuffix)
	}
	return names
}

// Builtin returns the shipped trace called name.
func Builtin(name string) (Trace, error) {
	data, err := shipped.ReadFile("traces/" + name + ".csv")
	if err != nil {
		return Trace{}, fmt.Errorf("no shipped trace %q (have %v)", name, BuiltinNames())
	}
	return ReadCSV(bytes.NewReader(data), name)
}

// GenerateBuiltins builds the shipped traces from their definitions: the
// smooth ones from load stages (FromStages), the noisy ones with Poisson
// (fixed seeds), in BuiltinNames order.
func GenerateBuiltins() ([]Trace, error) {
	var out []Trace
	for _, b := range builtins {
		tr, err := FromStages(b.name, b.stages, b.step)
		if err != nil {
			return nil, err
		}
		out = append(out, tr, tr.Poisson(b.name+PoissonSuffix, b.seed))
	}
	return out, nil
}

// WriteBuiltins writes the generated shipped traces as dir/<name>.csv
// (each published atomically), e.g. to refresh internal/simulate/traces.
func WriteBuiltins(dir string) error {
	trs, err := GenerateBuiltins()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("trace directory: %w", err)
	}
	for _, tr := range trs {
		var b bytes.Buffer
		if err := WriteCSV(&b, tr); err != nil {
			return err
		}
		if err := atomicfile.Write(filepath.Join(dir, tr.Name+".csv"), b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write trace %s: %w", tr.Name, err)
		}
	}
	return nil
}
