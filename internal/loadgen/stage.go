package loadgen

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Stage kinds. Each kind uses only some fields of Stage; the others must be
// zero (Validate reports a field that is set but unused, so a typo such as
// Stage{Kind: "hold", To: 100} is an error rather than a silent 0 rps).
const (
	// KindRamp changes the rate linearly from From to To req/s over Duration.
	// Flag syntax: ramp:FROM-TO:DURATION, e.g. ramp:0-100:30s.
	KindRamp = "ramp"
	// KindHold keeps the rate at From req/s for Duration.
	// Flag syntax: hold:RATE:DURATION, e.g. hold:100:60s.
	KindHold = "hold"
	// KindSpike jumps from the base rate From to the peak rate To for the
	// first Period of the stage, then falls back to From for the rest of
	// Duration (0 < Period <= Duration).
	// Flag syntax: spike:BASE-PEAK/WIDTH:DURATION, e.g. spike:20-200/5s:30s.
	KindSpike = "spike"
	// KindSine follows From + Amplitude*sin(2π t/Period), t from the start of
	// the stage: it starts at the mean From and rises first. Amplitude <= From
	// so the rate never goes below zero.
	// Flag syntax: sine:MEAN±AMPLITUDE/PERIOD:DURATION, e.g. sine:50±30/20s:60s
	// ("+-" may be written instead of "±").
	KindSine = "sine"
)

// MaxRate is the largest rate, in requests per second, a stage may ask for.
const MaxRate = 1e6

// Stage is one segment of a load schedule. Rates are in requests per second,
// durations are wall-clock lengths. Which fields a kind uses:
//
//	kind   From        To         Amplitude  Period       Duration
//	ramp   start rate  end rate   -          -            stage length
//	hold   rate        -          -          -            stage length
//	spike  base rate   peak rate  -          peak width   stage length
//	sine   mean rate   -          amplitude  wave period  stage length
//
// Unused fields must be zero. The zero Stage is invalid (no kind).
type Stage struct {
	Kind      string
	Duration  time.Duration
	From, To  float64
	Amplitude float64
	Period    time.Duration
}

var stageSyntax = map[string]string{
	KindRamp:  "ramp:FROM-TO:DURATION, e.g. ramp:0-100:30s",
	KindHold:  "hold:RATE:DURATION, e.g. hold:100:60s",
	KindSpike: "spike:BASE-PEAK/WIDTH:DURATION, e.g. spike:20-200/5s:30s",
	KindSine:  "sine:MEAN±AMPLITUDE/PERIOD:DURATION, e.g. sine:50±30/20s:60s",
}

const anySyntax = "ramp:FROM-TO:DURATION, hold:RATE:DURATION, spike:BASE-PEAK/WIDTH:DURATION or sine:MEAN±AMPLITUDE/PERIOD:DURATION"

// Validate reports the first problem with st: unknown kind, non-positive
// Duration, a negative, infinite or too large (> MaxRate) rate, a field the
// kind does not use being set, or a kind-specific constraint (spike width,
// sine amplitude and period).
func (st Stage) Validate() error {
	if _, ok := stageSyntax[st.Kind]; !ok {
		return fmt.Errorf("unknown stage kind %q (want ramp, hold, spike or sine)", st.Kind)
	}
	if st.Duration <= 0 {
		return fmt.Errorf("%s: duration must be > 0, got %s", st.Kind, st.Duration)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"from", st.From}, {"to", st.To}, {"amplitude", st.Amplitude}} {
		if math.IsNaN(f.v) || f.v < 0 || f.v > MaxRate {
			return fmt.Errorf("%s: %s must be between 0 and %g req/s, got %g", st.Kind, f.name, float64(MaxRate), f.v)
		}
	}
	if st.Period < 0 {
		return fmt.Errorf("%s: period must not be negative, got %s", st.Kind, st.Period)
	}
	unused := func(name string, set bool) error {
		if set {
			return fmt.Errorf("%s: field %s is not used by this kind and must be zero", st.Kind, name)
		}
		return nil
	}
	switch st.Kind {
	case KindRamp:
		return errors.Join(unused("amplitude", st.Amplitude != 0), unused("period", st.Period != 0))
	case KindHold:
		return errors.Join(unused("to", st.To != 0), unused("amplitude", st.Amplitude != 0), unused("period", st.Period != 0))
	case KindSpike:
		if st.Period <= 0 || st.Period > st.Duration {
			return fmt.Errorf("spike: width (period) must be > 0 and <= duration %s, got %s", st.Duration, st.Period)
		}
		return unused("amplitude", st.Amplitude != 0)
	case KindSine:
		if st.Period <= 0 {
			return fmt.Errorf("sine: period must be > 0, got %s", st.Period)
		}
		if st.Amplitude > st.From {
			return fmt.Errorf("sine: amplitude %g must not exceed the mean %g (the rate would go below zero)", st.Amplitude, st.From)
		}
		return unused("to", st.To != 0)
	}
	return nil
}

// String formats st in the flag syntax accepted by ParseStage, so that
// ParseStage(st.String()) returns st for any valid st.
func (st Stage) String() string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	switch st.Kind {
	case KindRamp:
		return fmt.Sprintf("ramp:%s-%s:%s", f(st.From), f(st.To), st.Duration)
	case KindHold:
		return fmt.Sprintf("hold:%s:%s", f(st.From), st.Duration)
	case KindSpike:
		return fmt.Sprintf("spike:%s-%s/%s:%s", f(st.From), f(st.To), st.Period, st.Duration)
	case KindSine:
		return fmt.Sprintf("sine:%s±%s/%s:%s", f(st.From), f(st.Amplitude), st.Period, st.Duration)
	}
	return fmt.Sprintf("%s:?:%s", st.Kind, st.Duration)
}

// ParseStage parses one stage in the flag syntax KIND:PARAMS:DURATION:
//
//	ramp:FROM-TO:DURATION               ramp:0-100:30s
//	hold:RATE:DURATION                  hold:100:60s
//	spike:BASE-PEAK/WIDTH:DURATION      spike:20-200/5s:30s
//	sine:MEAN±AMPLITUDE/PERIOD:DURATION sine:50±30/20s:60s (or 50+-30)
//
// Rates are non-negative decimals in requests per second; durations use
// time.ParseDuration syntax. The stage is validated (see Stage.Validate); the
// error names the input and the expected syntax.
func ParseStage(s string) (Stage, error) {
	in := strings.TrimSpace(s)
	kind, rest, ok := strings.Cut(in, ":")
	kind = strings.ToLower(strings.TrimSpace(kind))
	syntax, known := stageSyntax[kind]
	if !known {
		return Stage{}, fmt.Errorf("stage %q: unknown kind %q (want %s)", s, kind, anySyntax)
	}
	bad := func(format string, args ...any) (Stage, error) {
		return Stage{}, fmt.Errorf("stage %q: %s (want %s)", s, fmt.Sprintf(format, args...), syntax)
	}
	i := strings.LastIndex(rest, ":")
	if !ok || i < 0 {
		return bad("missing parameters or duration")
	}
	params, durText := strings.TrimSpace(rest[:i]), strings.TrimSpace(rest[i+1:])
	dur, err := time.ParseDuration(durText)
	if err != nil {
		return bad("bad duration %q", durText)
	}
	st := Stage{Kind: kind, Duration: dur}
	rate := func(name, text string) (float64, error) {
		v, err := strconv.ParseFloat(strings.TrimSpace(text), 64)
		if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
			return 0, fmt.Errorf("bad %s %q", name, text)
		}
		return v, nil
	}
	pair := func(text, sep, a, b string) (x, y float64, err error) {
		l, r, ok := strings.Cut(text, sep)
		if !ok {
			return 0, 0, fmt.Errorf("missing %q between %s and %s", sep, a, b)
		}
		if x, err = rate(a, l); err != nil {
			return 0, 0, err
		}
		if y, err = rate(b, r); err != nil {
			return 0, 0, err
		}
		return x, y, nil
	}
	switch kind {
	case KindRamp:
		st.From, st.To, err = pair(params, "-", "from", "to")
	case KindHold:
		st.From, err = rate("rate", params)
	case KindSpike:
		rates, width, found := strings.Cut(params, "/")
		if !found {
			return bad("missing /WIDTH")
		}
		if st.Period, err = time.ParseDuration(strings.TrimSpace(width)); err != nil {
			return bad("bad width %q", width)
		}
		st.From, st.To, err = pair(rates, "-", "base", "peak")
	case KindSine:
		wave, period, found := strings.Cut(params, "/")
		if !found {
			return bad("missing /PERIOD")
		}
		if st.Period, err = time.ParseDuration(strings.TrimSpace(period)); err != nil {
			return bad("bad period %q", period)
		}
		sep := "±"
		if !strings.Contains(wave, sep) {
			sep = "+-"
		}
		st.From, st.Amplitude, err = pair(wave, sep, "mean", "amplitude")
	}
	if err != nil {
		return bad("%v", err)
	}
	if err := st.Validate(); err != nil {
		return bad("%v", err)
	}
	return st, nil
}

// scenarioStage is the mapping form of a stage in a scenario file.
type scenarioStage struct {
	Kind      string  `yaml:"kind"`
	Duration  string  `yaml:"duration"`
	From      float64 `yaml:"from"`
	To        float64 `yaml:"to"`
	Amplitude float64 `yaml:"amplitude"`
	Period    string  `yaml:"period"`
}

// LoadScenario reads a scenario file: YAML or JSON (JSON is read as YAML).
// The document is either a list of stages or a mapping with one key "stages"
// holding that list. Each stage is either a string in ParseStage syntax or a
// mapping with the Stage fields kind, duration, from, to, amplitude, period
// (durations as strings such as "30s"). Unknown keys, an empty list and
// invalid stages are errors naming the file and the stage's position.
func LoadScenario(path string) ([]Stage, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read scenario: %w", err)
	}
	stages, err := parseScenario(data)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", path, err)
	}
	return stages, nil
}

func parseScenario(data []byte) ([]Stage, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, errors.New("empty document (want a list of stages)")
	}
	list := doc.Content[0]
	if list.Kind == yaml.MappingNode {
		var found *yaml.Node
		for i := 0; i+1 < len(list.Content); i += 2 {
			if k := list.Content[i].Value; k != "stages" {
				return nil, fmt.Errorf("line %d: unknown key %q (want stages)", list.Content[i].Line, k)
			}
			found = list.Content[i+1]
		}
		if found == nil {
			return nil, errors.New("missing key stages")
		}
		list = found
	}
	if list.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("line %d: want a list of stages", list.Line)
	}
	if len(list.Content) == 0 {
		return nil, errors.New("no stages")
	}
	stages := make([]Stage, 0, len(list.Content))
	for i, n := range list.Content {
		st, err := scenarioItem(n)
		if err != nil {
			return nil, fmt.Errorf("stage %d (line %d): %w", i+1, n.Line, err)
		}
		stages = append(stages, st)
	}
	return stages, nil
}

func scenarioItem(n *yaml.Node) (Stage, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		return ParseStage(n.Value)
	case yaml.MappingNode:
	default:
		return Stage{}, errors.New("want a string such as hold:100:60s or a mapping with kind, duration and the fields of that kind")
	}
	var raw scenarioStage
	// Reject unknown keys so a misspelt field is an error, not a silent zero.
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch n.Content[i].Value {
		case "kind", "duration", "from", "to", "amplitude", "period":
		default:
			return Stage{}, fmt.Errorf("unknown key %q (want kind, duration, from, to, amplitude, period)", n.Content[i].Value)
		}
	}
	if err := n.Decode(&raw); err != nil {
		return Stage{}, fmt.Errorf("decode: %w", err)
	}
	st := Stage{Kind: strings.ToLower(raw.Kind), From: raw.From, To: raw.To, Amplitude: raw.Amplitude}
	var err error
	if st.Duration, err = time.ParseDuration(raw.Duration); err != nil {
		return Stage{}, fmt.Errorf("bad duration %q: %w", raw.Duration, err)
	}
	if raw.Period != "" {
		if st.Period, err = time.ParseDuration(raw.Period); err != nil {
			return Stage{}, fmt.Errorf("bad period %q: %w", raw.Period, err)
		}
	}
	if err := st.Validate(); err != nil {
		return Stage{}, err
	}
	return st, nil
}
