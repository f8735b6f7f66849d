package simulate

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"tidepool/internal/loadgen"
)

// Trace is a demand trace: the offered request rate over time, a step
// function. Rate[i] requests per second hold from Start[i] until Start[i+1]
// (the last until End).
type Trace struct {
	// Name identifies the trace in tables and file names.
	Name string
	// Start holds the start of each step: Start[0] is 0 and the values
	// strictly increase.
	Start []time.Duration
	// Rate is the request rate of each step in requests per second
	// (finite, >= 0); len(Rate) == len(Start).
	Rate []float64
	// End is the length of the trace, after the last Start.
	End time.Duration
}

// Validate reports a malformed trace.
func (t Trace) Validate() error {
	switch {
	case len(t.Start) == 0:
		return fmt.Errorf("trace %q: no steps", t.Name)
	case len(t.Start) != len(t.Rate):
		return fmt.Errorf("trace %q: %d starts but %d rates", t.Name, len(t.Start), len(t.Rate))
	case t.Start[0] != 0:
		return fmt.Errorf("trace %q: starts at %s, want 0", t.Name, t.Start[0])
	}
	for i, r := range t.Rate {
		if math.IsNaN(r) || math.IsInf(r, 0) || r < 0 {
			return fmt.Errorf("trace %q: step %d: rate %v is not a finite rate >= 0", t.Name, i, r)
		}
		if i > 0 && t.Start[i] <= t.Start[i-1] {
			return fmt.Errorf("trace %q: step %d starts at %s, not after step %d at %s", t.Name, i, t.Start[i], i-1, t.Start[i-1])
		}
	}
	if last := t.Start[len(t.Start)-1]; t.End <= last {
		return fmt.Errorf("trace %q: ends at %s, not after its last step at %s", t.Name, t.End, last)
	}
	return nil
}

// RateAt returns the rate at offset d (0 outside [0, End)).
func (t Trace) RateAt(d time.Duration) float64 {
	if d < 0 || d >= t.End {
		return 0
	}
	i, found := slices.BinarySearch(t.Start, d)
	if !found {
		i--
	}
	return t.Rate[i]
}

// Peak is the largest rate of the trace.
func (t Trace) Peak() float64 {
	p := 0.0
	for _, r := range t.Rate {
		p = max(p, r)
	}
	return p
}

// Requests is the number of requests the trace offers.
func (t Trace) Requests() float64 {
	n := 0.0
	for i, r := range t.Rate {
		n += r * (t.stepEnd(i) - t.Start[i]).Seconds()
	}
	return n
}

func (t Trace) stepEnd(i int) time.Duration {
	if i+1 < len(t.Start) {
		return t.Start[i+1]
	}
	return t.End
}

// CSV format. A trace file is CSV with a header row naming the time column
// "seconds" and the rate column "rps" (other columns are ignored, so a
// demo's load.csv with "offset_s" and "offered" is read too). Each row's rate
// holds until the next row; the last row's rate holds as long as the
// interval before it, so a trace sampled every second ends one second after
// its last row. Lines starting with # are comments.
const (
	csvTime = "seconds"
	csvRate = "rps"
)

// ReadCSV reads a trace in the CSV format above and names it name.
func ReadCSV(r io.Reader, name string) (Trace, error) {
	cr := csv.NewReader(bufio.NewReader(r))
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return Trace{}, fmt.Errorf("trace %q: read header: %w", name, err)
	}
	ti, ri := -1, -1
	for i, h := range header {
		switch strings.ToLower(strings.TrimSpace(h)) {
		case csvTime, "offset_s":
			ti = i
		case csvRate, "offered":
			ri = i
		}
	}
	if ti < 0 || ri < 0 {
		return Trace{}, fmt.Errorf("trace %q: header %v: want columns %q and %q", name, header, csvTime, csvRate)
	}
	tr := Trace{Name: name}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Trace{}, fmt.Errorf("trace %q: %w", name, err)
		}
		if len(rec) <= max(ti, ri) {
			return Trace{}, fmt.Errorf("trace %q: row %d has %d fields, want at least %d", name, line, len(rec), max(ti, ri)+1)
		}
		sec, err := strconv.ParseFloat(strings.TrimSpace(rec[ti]), 64)
		if err != nil || math.IsNaN(sec) || math.IsInf(sec, 0) || sec < 0 || sec > 1e9 {
			return Trace{}, fmt.Errorf("trace %q: row %d: bad time %q", name, line, rec[ti])
		}
		rate, err := strconv.ParseFloat(strings.TrimSpace(rec[ri]), 64)
		if err != nil {
			return Trace{}, fmt.Errorf("trace %q: row %d: bad rate %q", name, line, rec[ri])
		}
		tr.Start = append(tr.Start, time.Duration(math.Round(sec*1e9)))
		tr.Rate = append(tr.Rate, rate)
	}
	if n := len(tr.Start); n < 2 {
		return Trace{}, fmt.Errorf("trace %q: %d rows, want at least 2", name, n)
	}
	n := len(tr.Start)
	tr.End = tr.Start[n-1] + (tr.Start[n-1] - tr.Start[n-2])
	if err := tr.Validate(); err != nil {
		return Trace{}, err
	}
	return tr, nil
}

// LoadCSV reads the trace file at path, named after the file without its
// extension.
func LoadCSV(path string) (Trace, error) {
	f, err := os.Open(path)
	if err != nil {
		return Trace{}, fmt.Errorf("open trace: %w", err)
	}
	defer f.Close()
	return ReadCSV(f, strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)))
}

// WriteCSV writes t in the CSV format above. Only traces whose last step is
// as long as the one before it (as ReadCSV assumes) round-trip exactly;
// others are an error. It does not close w.
func WriteCSV(w io.Writer, t Trace) error {
	if err := t.Validate(); err != nil {
		return err
	}
	n := len(t.Start)
	if n < 2 || t.End-t.Start[n-1] != t.Start[n-1]-t.Start[n-2] {
		return fmt.Errorf("trace %q: the last step must be as long as the one before it to be written as CSV", t.Name)
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "# tidepool demand trace %q: offered requests per second, each row until the next\n%s,%s\n", t.Name, csvTime, csvRate)
	for i := range t.Start {
		fmt.Fprintf(bw, "%s,%s\n", strconv.FormatFloat(t.Start[i].Seconds(), 'f', -1, 64), strconv.FormatFloat(t.Rate[i], 'f', -1, 64))
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write trace: %w", err)
	}
	return nil
}

// FromStages samples load stages (internal/loadgen's vocabulary: ramp,
// hold, spike, sine) every step: each row is the exact mean rate of the
// stages over its step, rounded to 0.001 req/s. The stages' total length
// must be a multiple of step.
func FromStages(name string, stages []loadgen.Stage, step time.Duration) (Trace, error) {
	if step <= 0 {
		return Trace{}, fmt.Errorf("trace %q: step %s must be positive", name, step)
	}
	sched, err := loadgen.NewSchedule(stages)
	if err != nil {
		return Trace{}, fmt.Errorf("trace %q: %w", name, err)
	}
	end := sched.Duration()
	if end%step != 0 {
		return Trace{}, fmt.Errorf("trace %q: length %s is not a multiple of the step %s", name, end, step)
	}
	tr := Trace{Name: name, End: end}
	for t := time.Duration(0); t < end; t += step {
		mean := (sched.Expected(t+step) - sched.Expected(t)) / step.Seconds()
		tr.Start = append(tr.Start, t)
		tr.Rate = append(tr.Rate, math.Max(0, math.Round(mean*1000)/1000))
	}
	return tr, tr.Validate()
}

// Poisson returns a noisy version of t named name: the number of requests
// of each step is drawn from a Poisson distribution with the step's mean
// (rate × step length), and the step's rate is that count over the step's
// length. The same seed gives the same trace. Means above 50 use the normal
// approximation (rounded, never negative).
func (t Trace) Poisson(name string, seed uint64) Trace {
	rng := rand.New(rand.NewPCG(seed, 0x7469646570))
	out := Trace{Name: name, Start: slices.Clone(t.Start), Rate: make([]float64, len(t.Rate)), End: t.End}
	for i, r := range t.Rate {
		sec := (t.stepEnd(i) - t.Start[i]).Seconds()
		out.Rate[i] = float64(poisson(rng, r*sec)) / sec
	}
	return out
}

// poisson draws from a Poisson distribution with mean lambda.
func poisson(rng *rand.Rand, lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	if lambda > 50 {
		return max(0, int(math.Round(lambda+math.Sqrt(lambda)*rng.NormFloat64())))
	}
	// Knuth: multiply uniforms until the product drops below e^-lambda.
	limit, p, k := math.Exp(-lambda), 1.0, 0
	for {
		p *= rng.Float64()
		if p <= limit {
			return k
		}
		k++
	}
}
