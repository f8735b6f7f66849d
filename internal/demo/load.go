package demo

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"tidepool/internal/loadgen"
	"tidepool/internal/report"
)

// loadResult is what the load phase measured.
type loadResult struct {
	// start is when the load began (zero: it never did); end is its
	// length.
	start    time.Time
	end      time.Duration
	summary  loadgen.Summary
	timeline []loadgen.Second
	// queries are the Grafana expressions checked right after the load.
	queries []QueryCheck
}

// runLoad is the load phase, the one that ends the demo: it samples the
// pool, CPU and autoscaler every second and prints progress, sends the load
// scenario through the load balancer, checks the Grafana expressions
// against the live Prometheus, and waits up to Settle for the pool to be
// back at MinSize. Cancelling ctx cuts the load short and skips the wait.
func (s *session) runLoad(ctx context.Context, ready func()) error {
	ready()
	start := time.Now()
	s.load.start = start
	s.rec.addEvent(report.Event{T: 0, Kind: report.KindLoadStart, Reason: "load scenario started"})
	sampleCtx, stopSampling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		sample(sampleCtx, start, s.client, s.poolID, s.promURL, s.scaler, s.rec, s.log)
	}()
	go func() {
		defer wg.Done()
		progress(sampleCtx, s.cfg.Out, s.cfg.ProgressEvery, start, s.rec)
	}()
	defer func() { stopSampling(); wg.Wait() }()

	s.say("load: %s through %s", describeStages(s.cfg.Stages), s.svc.Addr)
	sum, timeline, err := loadgen.Run(ctx, loadgen.Config{
		Target:           "http://" + s.svc.Addr + "/",
		Stages:           s.cfg.Stages,
		Timeout:          30 * time.Second,
		DisableKeepAlive: true,
		Logger:           s.log.With("component", "load"),
	}, func(sec loadgen.Second) { s.rec.addLoad(start, sec) })
	if err != nil {
		return err
	}
	s.load.end = time.Since(start)
	s.load.summary, s.load.timeline = sum, timeline
	s.rec.addEvent(report.Event{T: s.load.end, Kind: report.KindLoadEnd, Reason: "load scenario ended"})
	s.load.queries = checkQueries(ctx, s.monDir, s.promURL)
	if ctx.Err() == nil {
		s.say("load done after %s; waiting up to %s for the pool to shrink back to %d", s.load.end.Round(time.Second), s.cfg.Settle, s.cfg.MinSize)
		waitSettled(ctx, s.cfg.Settle, s.cfg.MinSize, s.rec)
	}
	return nil
}

// waitSettled returns once the pool has been at min members, all running,
// for 5 s (so the report shows the end state), or after settle, or when ctx
// ends.
func waitSettled(ctx context.Context, settle time.Duration, min int, rec *recorder) {
	deadline := time.NewTimer(settle)
	defer deadline.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	stable := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-tick.C:
		}
		size, running := rec.lastPool()
		if size == min && running == min {
			stable++
		} else {
			stable = 0
		}
		if stable >= 5 {
			return
		}
	}
}

func describeStages(stages []loadgen.Stage) string {
	var total time.Duration
	peak := 0.0
	for _, s := range stages {
		total += s.Duration
		peak = math.Max(peak, math.Max(s.From, s.To+s.Amplitude))
	}
	return fmt.Sprintf("%d stages over %s, peak %.0f req/s", len(stages), total, peak)
}
