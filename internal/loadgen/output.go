package loadgen

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"tidepool/internal/atomicfile"
)

// CSVHeader is the header row written by WriteCSV. Latencies are in
// milliseconds with microsecond resolution; offset_s is whole seconds.
var CSVHeader = func() []string {
	h := []string{"offset_s", "offered", "sent", "missed", "answered", "ok", "late"}
	for _, k := range ErrorKinds {
		h = append(h, "err_"+k)
	}
	return append(h, "p50_ms", "p95_ms", "p99_ms", "max_ms")
}()

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fromMS(v float64) time.Duration { return time.Duration(math.Round(v * float64(time.Millisecond))) }

func fmtMS(d time.Duration) string { return strconv.FormatFloat(ms(d), 'f', 3, 64) }

// WriteCSV writes the timeline as CSV: the CSVHeader row, then one row per
// second, one err_<kind> column for every kind in ErrorKinds (0 when none).
// It does not close w.
func WriteCSV(w io.Writer, tl []Second) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	row := make([]string, 0, len(CSVHeader))
	for _, s := range tl {
		row = append(row[:0],
			strconv.FormatInt(int64(s.Offset/time.Second), 10),
			strconv.FormatFloat(s.Offered, 'f', 3, 64),
			strconv.Itoa(s.Sent), strconv.Itoa(s.Missed), strconv.Itoa(s.Answered),
			strconv.Itoa(s.OK), strconv.Itoa(s.Late))
		for _, k := range ErrorKinds {
			row = append(row, strconv.Itoa(s.Errors[k]))
		}
		row = append(row, fmtMS(s.P50), fmtMS(s.P95), fmtMS(s.P99), fmtMS(s.Max))
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("write csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

// jsonSecond is the JSON form of Second: offsets in seconds, latencies in
// milliseconds.
type jsonSecond struct {
	OffsetS  int64          `json:"offset_s"`
	Offered  float64        `json:"offered"`
	Sent     int            `json:"sent"`
	Missed   int            `json:"missed"`
	Answered int            `json:"answered"`
	OK       int            `json:"ok"`
	Late     int            `json:"late"`
	Errors   map[string]int `json:"errors,omitempty"`
	P50MS    float64        `json:"p50_ms"`
	P95MS    float64        `json:"p95_ms"`
	P99MS    float64        `json:"p99_ms"`
	MaxMS    float64        `json:"max_ms"`
}

// MarshalJSON encodes s with offset_s in seconds and *_ms latencies in
// milliseconds.
func (s Second) MarshalJSON() ([]byte, error) {
	return json.Marshal(jsonSecond{
		OffsetS: int64(s.Offset / time.Second), Offered: s.Offered,
		Sent: s.Sent, Missed: s.Missed, Answered: s.Answered, OK: s.OK, Late: s.Late, Errors: s.Errors,
		P50MS: ms(s.P50), P95MS: ms(s.P95), P99MS: ms(s.P99), MaxMS: ms(s.Max),
	})
}

// UnmarshalJSON decodes the form written by MarshalJSON.
func (s *Second) UnmarshalJSON(data []byte) error {
	var j jsonSecond
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	*s = Second{
		Offset: time.Duration(j.OffsetS) * time.Second, Offered: j.Offered,
		Sent: j.Sent, Missed: j.Missed, Answered: j.Answered, OK: j.OK, Late: j.Late, Errors: j.Errors,
		P50: fromMS(j.P50MS), P95: fromMS(j.P95MS), P99: fromMS(j.P99MS), Max: fromMS(j.MaxMS),
	}
	return nil
}

// jsonSummary is the JSON form of Summary: stages in flag syntax, durations
// in seconds (elapsed_s, ...) or milliseconds (latencies).
type jsonSummary struct {
	Target     string         `json:"target"`
	Method     string         `json:"method"`
	Stages     []string       `json:"stages"`
	Started    time.Time      `json:"started"`
	ElapsedS   float64        `json:"elapsed_s"`
	ScheduledS float64        `json:"scheduled_s"`
	StoppedS   float64        `json:"stopped_s"`
	Cancelled  bool           `json:"cancelled"`
	Offered    float64        `json:"offered"`
	Planned    int            `json:"planned"`
	Sent       int            `json:"sent"`
	Missed     int            `json:"missed"`
	Answered   int            `json:"answered"`
	OK         int            `json:"ok"`
	Late       int            `json:"late"`
	Errors     map[string]int `json:"errors,omitempty"`
	Workers    int            `json:"workers"`
	MeanMS     float64        `json:"mean_ms"`
	MinMS      float64        `json:"min_ms"`
	P50MS      float64        `json:"p50_ms"`
	P90MS      float64        `json:"p90_ms"`
	P95MS      float64        `json:"p95_ms"`
	P99MS      float64        `json:"p99_ms"`
	P999MS     float64        `json:"p999_ms"`
	MaxMS      float64        `json:"max_ms"`
}

func secs(d time.Duration) float64 { return d.Seconds() }

func fromSecs(v float64) time.Duration { return time.Duration(math.Round(v * float64(time.Second))) }

// MarshalJSON encodes s with stages in ParseStage syntax and durations as
// seconds (*_s) or milliseconds (*_ms).
func (s Summary) MarshalJSON() ([]byte, error) {
	stages := make([]string, len(s.Stages))
	for i, st := range s.Stages {
		stages[i] = st.String()
	}
	return json.Marshal(jsonSummary{
		Target: s.Target, Method: s.Method, Stages: stages, Started: s.Started,
		ElapsedS: secs(s.Elapsed), ScheduledS: secs(s.Scheduled), StoppedS: secs(s.Stopped), Cancelled: s.Cancelled,
		Offered: s.Offered, Planned: s.Planned, Sent: s.Sent, Missed: s.Missed, Answered: s.Answered,
		OK: s.OK, Late: s.Late, Errors: s.Errors, Workers: s.Workers,
		MeanMS: ms(s.Mean), MinMS: ms(s.Min), P50MS: ms(s.P50), P90MS: ms(s.P90), P95MS: ms(s.P95),
		P99MS: ms(s.P99), P999MS: ms(s.P999), MaxMS: ms(s.Max),
	})
}

// UnmarshalJSON decodes the form written by MarshalJSON.
func (s *Summary) UnmarshalJSON(data []byte) error {
	var j jsonSummary
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	stages := make([]Stage, len(j.Stages))
	for i, text := range j.Stages {
		st, err := ParseStage(text)
		if err != nil {
			return fmt.Errorf("summary stage %d: %w", i+1, err)
		}
		stages[i] = st
	}
	*s = Summary{
		Target: j.Target, Method: j.Method, Stages: stages, Started: j.Started,
		Elapsed: fromSecs(j.ElapsedS), Scheduled: fromSecs(j.ScheduledS), Stopped: fromSecs(j.StoppedS), Cancelled: j.Cancelled,
		Offered: j.Offered, Planned: j.Planned, Sent: j.Sent, Missed: j.Missed, Answered: j.Answered,
		OK: j.OK, Late: j.Late, Errors: j.Errors, Workers: j.Workers,
		Mean: fromMS(j.MeanMS), Min: fromMS(j.MinMS), P50: fromMS(j.P50MS), P90: fromMS(j.P90MS), P95: fromMS(j.P95MS),
		P99: fromMS(j.P99MS), P999: fromMS(j.P999MS), Max: fromMS(j.MaxMS),
	}
	return nil
}

// report is the document written by WriteJSON.
type report struct {
	Summary  Summary  `json:"summary"`
	Timeline []Second `json:"timeline"`
}

// WriteJSON writes {"summary": s, "timeline": [...]} (indented) to w, in the
// forms of Summary.MarshalJSON and Second.MarshalJSON. It does not close w.
func WriteJSON(w io.Writer, tl []Second, s Summary) error {
	if tl == nil {
		tl = []Second{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(report{Summary: s, Timeline: tl}); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

// ReadJSON reads a document written by WriteJSON.
func ReadJSON(r io.Reader) ([]Second, Summary, error) {
	var rep report
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		return nil, Summary{}, fmt.Errorf("read json: %w", err)
	}
	return rep.Timeline, rep.Summary, nil
}

// WriteSummary writes s as a few lines of human-readable text.
func WriteSummary(w io.Writer, s Summary) error {
	var b strings.Builder
	stages := make([]string, len(s.Stages))
	for i, st := range s.Stages {
		stages[i] = st.String()
	}
	fmt.Fprintf(&b, "target     %s %s\n", s.Method, s.Target)
	fmt.Fprintf(&b, "schedule   %s (%s)\n", strings.Join(stages, " "), s.Scheduled)
	status := "completed"
	if s.Cancelled {
		status = fmt.Sprintf("cancelled at %s", s.Stopped.Round(time.Millisecond))
	}
	fmt.Fprintf(&b, "elapsed    %s, %s, up to %d workers\n", s.Elapsed.Round(time.Millisecond), status, s.Workers)
	fmt.Fprintf(&b, "requests   offered %.0f planned %d sent %d answered %d ok %d late %d missed %d\n",
		s.Offered, s.Planned, s.Sent, s.Answered, s.OK, s.Late, s.Missed)
	fmt.Fprintf(&b, "errors     %s\n", formatErrors(s.Errors))
	fmt.Fprintf(&b, "latency    mean %s min %s p50 %s p90 %s p95 %s p99 %s p99.9 %s max %s (from planned send time)\n",
		roundLatency(s.Mean), roundLatency(s.Min), roundLatency(s.P50), roundLatency(s.P90),
		roundLatency(s.P95), roundLatency(s.P99), roundLatency(s.P999), roundLatency(s.Max))
	_, err := io.WriteString(w, b.String())
	return err
}

// formatErrors renders counts as "kind=n ..." in ErrorKinds order, or "none".
func formatErrors(errs map[string]int) string {
	var parts []string
	for _, k := range ErrorKinds {
		if n := errs[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, n))
		}
	}
	// Kinds not in ErrorKinds (from a foreign file) last, sorted.
	var extra []string
	for k, n := range errs {
		if n > 0 && !slices.Contains(ErrorKinds, k) {
			extra = append(extra, fmt.Sprintf("%s=%d", k, n))
		}
	}
	slices.Sort(extra)
	parts = append(parts, extra...)
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// roundLatency rounds d for display to about three significant digits.
func roundLatency(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

// FormatSecond renders s as one progress line, e.g.
// "12s offered=100.0 sent=100 ok=100 late=0 missed=0 errors=none p50=1.2ms ...".
func FormatSecond(s Second) string {
	return fmt.Sprintf("%s offered=%.1f sent=%d ok=%d late=%d missed=%d errors=%s p50=%s p95=%s p99=%s max=%s",
		s.Offset, s.Offered, s.Sent, s.OK, s.Late, s.Missed, formatErrors(s.Errors),
		roundLatency(s.P50), roundLatency(s.P95), roundLatency(s.P99), roundLatency(s.Max))
}

// SaveCSV writes the timeline as CSV to path, published atomically (a
// reader never sees a partial file).
func SaveCSV(path string, tl []Second) error {
	return save(path, func(w io.Writer) error { return WriteCSV(w, tl) })
}

// SaveJSON writes the timeline and summary as JSON to path, published
// atomically.
func SaveJSON(path string, tl []Second, s Summary) error {
	return save(path, func(w io.Writer) error { return WriteJSON(w, tl, s) })
}

// Save publishes a finished run as `tidepool load` does: the timeline as
// CSV to csvPath and with the summary as JSON to jsonPath (each atomically;
// "" skips it), then the summary to w. It tries all three and joins their
// errors.
func Save(w io.Writer, csvPath, jsonPath string, tl []Second, s Summary) error {
	var errs []error
	if csvPath != "" {
		if err := SaveCSV(csvPath, tl); err != nil {
			errs = append(errs, fmt.Errorf("write timeline %s: %w", csvPath, err))
		}
	}
	if jsonPath != "" {
		if err := SaveJSON(jsonPath, tl, s); err != nil {
			errs = append(errs, fmt.Errorf("write report %s: %w", jsonPath, err))
		}
	}
	if err := WriteSummary(w, s); err != nil {
		errs = append(errs, fmt.Errorf("write summary: %w", err))
	}
	return errors.Join(errs...)
}

func save(path string, write func(io.Writer) error) error {
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		return err
	}
	return atomicfile.Write(path, buf.Bytes(), 0o644)
}
