package demo

import (
	"fmt"
	"path/filepath"

	"tidepool/internal/loadgen"
	"tidepool/internal/report"
)

// report is the last phase: it builds the Result from what was recorded,
// writes report.html and report.png (and the load timeline as CSV and JSON)
// into OutDir and prints the summary. It runs once (session.result) after
// every component phase has stopped, also after an interruption: in the
// live page phase, the last to stop, or else after the phases.
func (s *session) report() (Result, error) {
	cfg, prof, ld := s.cfg, s.prof, s.load
	samples, events := s.rec.snapshot()
	okQueries := 0
	for _, q := range ld.queries {
		if q.Err == "" && q.Series > 0 {
			okQueries++
		}
	}
	data := report.Data{
		Title:   "tidepool demo: autoscaling under load (" + prof.Name + " profile)",
		Started: ld.start, Profile: prof.Name,
		Samples: samples, Events: events,
		Totals: &report.Totals{
			Requests: ld.summary.Sent, OK: ld.summary.OK, Failed: ld.summary.Sent - ld.summary.OK, Late: ld.summary.Late,
			P50: ld.summary.P50, P95: ld.summary.P95, P99: ld.summary.P99,
		},
		Notes: []string{
			fmt.Sprintf("Members: standard.micro with %.2f core each, %s of CPU per request; pool %d..%d.", cfg.CPUPerVCPU, cfg.Work, cfg.MinSize, cfg.MaxSize),
			fmt.Sprintf("Monitoring: scrape %s, rate window %s, alert for %s, autoscaler tick %s.", prof.ScrapeInterval, prof.RateWindow, prof.AlertFor, AutoscalerTick(cfg.Policy, prof)),
			"Latency is measured from each request's planned send time (open workload model).",
			fmt.Sprintf("Grafana dashboard and alert expressions checked against the live Prometheus: %d of %d returned data.", okQueries, len(ld.queries)),
		},
	}
	res := Result{Load: ld.summary, Samples: samples, Events: events, Queries: ld.queries, Summary: report.Summarize(data)}
	for _, smp := range samples {
		res.PeakPool = max(res.PeakPool, smp.PoolSize)
		if smp.PoolSize >= 0 {
			res.FinalPool = smp.PoolSize
		}
	}
	var err error
	if res.HTMLPath, res.PNGPath, err = report.WriteFiles(cfg.OutDir, data); err != nil {
		return res, fmt.Errorf("write report: %w", err)
	}
	if err := writeTimeline(cfg.OutDir, ld.timeline, ld.summary); err != nil {
		s.log.Error("write load timeline", "err", err)
	}
	s.say("%s", res.Summary.Text())
	s.say("report: %s and %s", res.HTMLPath, res.PNGPath)
	return res, nil
}

// writeTimeline saves the load generator's per-second timeline as CSV and
// JSON next to the report.
func writeTimeline(dir string, tl []loadgen.Second, sum loadgen.Summary) error {
	if err := loadgen.SaveCSV(filepath.Join(dir, "load.csv"), tl); err != nil {
		return err
	}
	return loadgen.SaveJSON(filepath.Join(dir, "load.json"), tl, sum)
}
