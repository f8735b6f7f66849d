package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"tidepool/internal/atomicfile"
)

// Report is the result of one Run. It is written as JSON by WriteJSON
// (latencies in milliseconds, rates in requests per second) and as text
// tables by WriteTable.
type Report struct {
	Started  time.Time `json:"started"`
	ElapsedS float64   `json:"elapsed_s"`
	Host     Host      `json:"host"`
	Settings Settings  `json:"settings"`
	// Processes are the helper processes Run started, all stopped (killed
	// by PID and reaped) before Run returned.
	Processes []Process       `json:"processes"`
	Proxy     ProxyReport     `json:"proxy"`
	Generator GeneratorReport `json:"generator"`
	Goals     []Goal          `json:"goals"`
}

// Host describes the machine the figures come from.
type Host struct {
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go_version"`
	HAProxy   string `json:"haproxy"`
	// LoadAvgStart and LoadAvgEnd are the 1-minute load averages before and
	// after the run: other work on a shared machine disturbs the figures.
	LoadAvgStart float64 `json:"load_avg_start"`
	LoadAvgEnd   float64 `json:"load_avg_end"`
}

// Settings are the effective (defaulted) parameters of the run.
type Settings struct {
	Rates            []float64 `json:"rates"`
	DurationS        float64   `json:"duration_s"`
	WindowS          float64   `json:"window_s"`
	Conns            []string  `json:"conns"`
	Backends         int       `json:"backends"`
	CheckIntervalS   float64   `json:"check_interval_s"`
	SearchStart      float64   `json:"search_start"`
	SearchMax        float64   `json:"search_max"`
	SearchDurationS  float64   `json:"search_duration_s"`
	SearchTrials     int       `json:"search_trials"`
	SearchPrecision  float64   `json:"search_precision"`
	SearchP99LimitMS float64   `json:"search_p99_limit_ms"`
	StallRate        float64   `json:"stall_rate"`
	StallMS          float64   `json:"stall_ms"`
	StallWorkers     int       `json:"stall_workers"`
}

// Process is one helper process started by Run.
type Process struct {
	Name    string `json:"name"`
	PID     int    `json:"pid"`
	Stopped bool   `json:"stopped"`
}

// ProxyReport compares the local NLB with HAProxy and a direct connection:
// fixed rates per connection mode, and the rate search (first mode only;
// nil when skipped).
type ProxyReport struct {
	Modes   []ModeReport   `json:"modes"`
	MaxRate *MaxRateReport `json:"max_rate"`
}

// ModeReport is the fixed-rate comparison in one connection mode (ConnNew
// or ConnReuse).
type ModeReport struct {
	Conn  string           `json:"conn"`
	Rates []RateComparison `json:"rates"`
}

// RateComparison is one fixed rate. Added latency is the target's latency
// minus the direct connection's, per percentile; Ratio* is NLB added over
// HAProxy added (null when HAProxy added nothing measurable, <= 0).
type RateComparison struct {
	Rate              float64      `json:"rate"`
	Direct            TargetResult `json:"direct"`
	NLB               TargetResult `json:"nlb"`
	HAProxy           TargetResult `json:"haproxy"`
	NLBAddedP50MS     float64      `json:"nlb_added_p50_ms"`
	NLBAddedP99MS     float64      `json:"nlb_added_p99_ms"`
	HAProxyAddedP50MS float64      `json:"haproxy_added_p50_ms"`
	HAProxyAddedP99MS float64      `json:"haproxy_added_p99_ms"`
	RatioP50          *float64     `json:"ratio_p50"`
	RatioP99          *float64     `json:"ratio_p99"`
	// ExcessP50 and ExcessP99 check the overhead goal at this rate, with
	// how sure the run can be of it (see Excess).
	ExcessP50 Excess `json:"excess_p50"`
	ExcessP99 Excess `json:"excess_p99"`
}

// TargetResult is one target at one rate over all its windows. P50MS and
// P99MS are the medians of the windows' percentiles (robust against one
// window disturbed by other work on the machine); WorstP99MS is the largest.
type TargetResult struct {
	P50MS      float64 `json:"p50_ms"`
	P99MS      float64 `json:"p99_ms"`
	WorstP99MS float64 `json:"worst_p99_ms"`
	Sent       int     `json:"sent"`
	OK         int     `json:"ok"`
	Errors     int     `json:"errors"`
	Missed     int     `json:"missed"`
	Late       int     `json:"late"`
	// CPUUSPerReq is the proxy process's CPU time (user+system) per
	// request in microseconds; 0 for the direct connection.
	CPUUSPerReq float64        `json:"cpu_us_per_req,omitempty"`
	Windows     []WindowResult `json:"windows"`
}

// WindowResult is one window (one loadgen run) of a target at a rate.
type WindowResult struct {
	P50MS float64 `json:"p50_ms"`
	P99MS float64 `json:"p99_ms"`
	MaxMS float64 `json:"max_ms"`
	Sent  int     `json:"sent"`
	OK    int     `json:"ok"`
}

// MaxRateReport is the highest sustained rate per target and the ratios to
// HAProxy's (0 when HAProxy sustained nothing).
type MaxRateReport struct {
	Conn        string       `json:"conn"`
	Direct      SearchResult `json:"direct"`
	NLB         SearchResult `json:"nlb"`
	HAProxy     SearchResult `json:"haproxy"`
	NLBRatio    float64      `json:"nlb_ratio"`
	DirectRatio float64      `json:"direct_ratio"`
}

// SearchResult is one target's rate search.
type SearchResult struct {
	// MaxRate is the highest rate that passed (0 if none); LowestFail the
	// lowest that failed (0 if none: the search reached its cap).
	MaxRate    float64 `json:"max_rate"`
	LowestFail float64 `json:"lowest_fail"`
	Trials     []Trial `json:"trials"`
}

// Trial is one search step.
type Trial struct {
	Rate     float64 `json:"rate"`
	Pass     bool    `json:"pass"`
	Reason   string  `json:"reason"`
	Sent     int     `json:"sent"`
	OK       int     `json:"ok"`
	Missed   int     `json:"missed"`
	ErrorPct float64 `json:"error_pct"`
	P99MS    float64 `json:"p99_ms"`
}

// GeneratorReport is the load generator's accuracy against an instant
// server, and the stall test.
type GeneratorReport struct {
	Rates []Accuracy    `json:"rates"`
	Stall []StallResult `json:"stall"`
}

// Accuracy is one constant-rate run of the generator. Achieved, ErrorPct,
// WorstSecondPct and the timing figures are measured at the server (see
// arrivalStats); Late, Missed and the latency figures are the generator's
// own report.
type Accuracy struct {
	Conn           string  `json:"conn"`
	Requested      float64 `json:"requested"`
	Planned        int     `json:"planned"`
	Arrivals       int     `json:"arrivals"`
	Achieved       float64 `json:"achieved"`
	ErrorPct       float64 `json:"error_pct"`
	WorstSecondPct float64 `json:"worst_second_pct"`
	TimingP50MS    float64 `json:"timing_p50_ms"`
	TimingP99MS    float64 `json:"timing_p99_ms"`
	TimingMaxMS    float64 `json:"timing_max_ms"`
	Late           int     `json:"late"`
	Missed         int     `json:"missed"`
	Errors         int     `json:"errors"`
	LatencyP50MS   float64 `json:"latency_p50_ms"`
	LatencyP99MS   float64 `json:"latency_p99_ms"`
	// CPUUSPerReq is the generator's (this process's) CPU time per request.
	CPUUSPerReq float64 `json:"cpu_us_per_req"`
}

// StallResult is one stall test: the server holds every request arriving
// during StallMS; Expected* follow from the rate, run length and stall (see
// stallQuantile). Shows is true when the stall is visible in the measured
// percentiles (p99 >= 80% and max >= 90% of what is expected).
type StallResult struct {
	Conn          string  `json:"conn"`
	Rate          float64 `json:"rate"`
	DurationS     float64 `json:"duration_s"`
	StallMS       float64 `json:"stall_ms"`
	Workers       int     `json:"workers"`
	Sent          int     `json:"sent"`
	OK            int     `json:"ok"`
	Late          int     `json:"late"`
	Missed        int     `json:"missed"`
	P50MS         float64 `json:"p50_ms"`
	P90MS         float64 `json:"p90_ms"`
	P99MS         float64 `json:"p99_ms"`
	MaxMS         float64 `json:"max_ms"`
	ExpectedP90MS float64 `json:"expected_p90_ms"`
	ExpectedP99MS float64 `json:"expected_p99_ms"`
	ExpectedMaxMS float64 `json:"expected_max_ms"`
	Shows         bool    `json:"shows"`
}

// Goal statuses.
const (
	GoalMet    = "met"
	GoalNotMet = "not met"
	// GoalWithinNoise: nothing measured is clearly off the goal, but some
	// figure is too noisy to tell whether it is met.
	GoalWithinNoise = "within noise"
	GoalNotMeasured = "not measured"
)

// Goal is one target of the benchmark and whether this run met it.
type Goal struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail"`
}

// WriteJSON writes r as indented JSON. It does not close w.
func WriteJSON(w io.Writer, r *Report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: encode report: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("bench: write report: %w", err)
	}
	return nil
}

// SaveJSON writes r as JSON (WriteJSON) to path, published atomically: a
// reader never sees a partial report.
func SaveJSON(path string, r *Report) error {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, r); err != nil {
		return err
	}
	if err := atomicfile.Write(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("bench: save report: %w", err)
	}
	return nil
}

// WriteTable writes r as aligned text tables: the proxy comparison per
// connection mode, the rate search, the generator accuracy, the stall test
// and the goals. It does not close w.
func WriteTable(w io.Writer, r *Report) error {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "tidepool bench  %s  %d CPUs  %s  %s\nload average %.2f at start, %.2f at the end; %.0fs\n",
		r.Started.Format(time.RFC3339), r.Host.CPUs, r.Host.GoVersion, r.Host.HAProxy,
		r.Host.LoadAvgStart, r.Host.LoadAvgEnd, r.ElapsedS)
	var errs []error
	flush := func(tw *tabwriter.Writer) { errs = append(errs, tw.Flush()) }

	for _, m := range r.Proxy.Modes {
		fmt.Fprintf(&buf, "\nLoad balancer latency, %s (ms; median of %gs windows, %gs per target and rate; + = added over direct)\n",
			connTitle(m.Conn), r.Settings.WindowS, r.Settings.DurationS)
		tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "rate/s\tdirect p50\tp99\tnlb p50\tp99\thaproxy p50\tp99\t"+
			"nlb +p50\t+p99\thaproxy +p50\t+p99\tratio p50\tp99\tcpu µs/req nlb\thaproxy\terrors d/n/h\t")
		for _, c := range m.Rates {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d/%d/%d\t\n",
				rate(c.Rate), fms(c.Direct.P50MS), fms(c.Direct.P99MS), fms(c.NLB.P50MS), fms(c.NLB.P99MS),
				fms(c.HAProxy.P50MS), fms(c.HAProxy.P99MS), fms(c.NLBAddedP50MS), fms(c.NLBAddedP99MS),
				fms(c.HAProxyAddedP50MS), fms(c.HAProxyAddedP99MS), ratio(c.RatioP50), ratio(c.RatioP99),
				f1(c.NLB.CPUUSPerReq), f1(c.HAProxy.CPUUSPerReq),
				c.Direct.Errors+c.Direct.Missed, c.NLB.Errors+c.NLB.Missed, c.HAProxy.Errors+c.HAProxy.Missed)
		}
		flush(tw)
		if len(m.Rates) == 0 {
			continue
		}
		fmt.Fprintf(&buf, "Goal check: NLB added - %g x HAProxy added (ms; <= 0 meets the goal), with its %g%% interval over %d rounds of windows (at least %d to judge)\n",
			GoalOverheadRatio, ExcessLevel*100, m.Rates[0].ExcessP50.Rounds, ExcessMinRounds)
		tw = tabwriter.NewWriter(&buf, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "rate/s\tp50 excess\tinterval\tverdict\tp99 excess\tinterval\tverdict\t")
		for _, c := range m.Rates {
			fmt.Fprintf(tw, "%s\t%+.3f\t%+.3f to %+.3f\t%s\t%+.3f\t%+.3f to %+.3f\t%s\t\n", rate(c.Rate),
				c.ExcessP50.MS, c.ExcessP50.LowMS, c.ExcessP50.HighMS, c.ExcessP50.Verdict,
				c.ExcessP99.MS, c.ExcessP99.LowMS, c.ExcessP99.HighMS, c.ExcessP99.Verdict)
		}
		flush(tw)
	}

	if m := r.Proxy.MaxRate; m != nil {
		fmt.Fprintf(&buf, "\nHighest sustained rate, %s (req/s; < 1%% errors and p99 <= %gms from the planned time; %gs trials)\n",
			connTitle(m.Conn), r.Settings.SearchP99LimitMS, r.Settings.SearchDurationS)
		tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "target\tmax rate\tfirst fail\tratio to haproxy\ttrials\t")
		for _, t := range []struct {
			name  string
			s     SearchResult
			ratio float64
		}{{TargetDirect, m.Direct, m.DirectRatio}, {TargetNLB, m.NLB, m.NLBRatio}, {TargetHAProxy, m.HAProxy, 1}} {
			fail := "none"
			if t.s.LowestFail > 0 {
				fail = rate(t.s.LowestFail)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", t.name, rate(t.s.MaxRate), fail, f2(t.ratio), trialList(t.s.Trials))
		}
		flush(tw)
	}

	if len(r.Generator.Rates) > 0 {
		fmt.Fprintf(&buf, "\nLoad generator accuracy (instant server, direct; %gs per rate; rate and timing measured at the server)\n", r.Settings.DurationS)
		tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "conn\trequested/s\tachieved/s\terror %\tworst 1s %\tarrived/planned\ttiming p50 ms\tp99\tmax\tlate\tmissed\tlatency p50 ms\tp99\tcpu µs/req\t")
		for _, a := range r.Generator.Rates {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t\n",
				a.Conn, rate(a.Requested), f1(a.Achieved), signed(a.ErrorPct), f2(a.WorstSecondPct), a.Arrivals, a.Planned,
				fms(a.TimingP50MS), fms(a.TimingP99MS), fms(a.TimingMaxMS), a.Late, a.Missed,
				fms(a.LatencyP50MS), fms(a.LatencyP99MS), f1(a.CPUUSPerReq))
		}
		flush(tw)
	}

	if len(r.Generator.Stall) > 0 {
		buf.WriteString("\nStall test (the server holds every request arriving during the stall; latency from the planned send time)\n")
		tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "conn\trate/s\trun s\tstall ms\tworkers\tsent\tlate\tmissed\tp50 ms\tp90 (expected)\tp99 (expected)\tmax (expected)\tshows\t")
		for _, s := range r.Generator.Stall {
			fmt.Fprintf(tw, "%s\t%s\t%g\t%g\t%d\t%d\t%d\t%d\t%s\t%s (%s)\t%s (%s)\t%s (%s)\t%v\t\n",
				s.Conn, rate(s.Rate), s.DurationS, s.StallMS, s.Workers, s.Sent, s.Late, s.Missed, fms(s.P50MS),
				fms(s.P90MS), fms(s.ExpectedP90MS), fms(s.P99MS), fms(s.ExpectedP99MS), fms(s.MaxMS), fms(s.ExpectedMaxMS), s.Shows)
		}
		flush(tw)
	}

	if len(r.Goals) > 0 {
		buf.WriteString("\nGoals\n")
		for _, g := range r.Goals {
			fmt.Fprintf(&buf, "  [%s] %s: %s\n", g.Status, g.Name, g.Detail)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bench: write table: %w", err)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("bench: write table: %w", err)
	}
	return nil
}

func connTitle(conn string) string {
	if conn == ConnReuse {
		return "kept-alive connections"
	}
	return "a new connection per request"
}

func trialList(ts []Trial) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		mark := "ok"
		if !t.Pass {
			mark = "FAIL"
		}
		parts[i] = rate(t.Rate) + ":" + mark
	}
	return strings.Join(parts, " ")
}

// fms formats milliseconds with microsecond resolution.
func fms(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
func f1(v float64) string  { return strconv.FormatFloat(v, 'f', 1, 64) }
func f2(v float64) string  { return strconv.FormatFloat(v, 'f', 2, 64) }

func signed(v float64) string { return fmt.Sprintf("%+.2f", v) }

func rate(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func ratio(v *float64) string {
	if v == nil {
		return "n/a"
	}
	return f2(*v)
}

// msOf converts d to milliseconds rounded to the microsecond.
func msOf(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
