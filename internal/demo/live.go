package demo

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"tidepool/internal/live"
	"tidepool/internal/report"
)

// DefaultLiveAddr is where the live page is served when Config.LiveAddr is
// empty (a busy port falls back to a free one).
const DefaultLiveAddr = "127.0.0.1:8088"

// LiveOff as Config.LiveAddr serves no live page.
const LiveOff = "off"

// liveView is the live page of a run (internal/live), fed from the
// recorder. The methods of a nil *liveView (no live page) do nothing.
type liveView struct {
	srv *live.Server
	url string
}

// startLive serves the live page on cfg.LiveAddr until st stops, prints its
// address next to the report's path, and returns nil when the page is
// switched off. When the address's port is busy it serves on a free port of
// the same host and says so.
func startLive(st *stack, cfg Config, say func(string, ...any)) (*liveView, error) {
	addr := cfg.LiveAddr
	switch addr {
	case LiveOff:
		return nil, nil
	case "":
		addr = DefaultLiveAddr
	}
	ln, fellBack, err := live.Listen(addr)
	if err != nil {
		return nil, err
	}
	srv := live.New(live.Config{Title: "tidepool demo (" + cfg.Profile + " profile)"})
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	st.add(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if hs.Shutdown(ctx) != nil {
			hs.Close()
		}
	})
	v := &liveView{srv: srv, url: "http://" + ln.Addr().String() + "/"}
	if fellBack {
		say("note: %s is in use; the live page is on another port", addr)
	}
	say("live page: %s (the report will be %s)", v.url, filepath.Join(cfg.OutDir, report.HTMLFile))
	return v, nil
}

// setLinks shows links to the live Prometheus and Alertmanager and to the
// autoscaler's status page.
func (v *liveView) setLinks(promURL, amURL, autoscalerURL string) {
	if v == nil {
		return
	}
	v.srv.SetLinks(
		live.Link{Name: "Prometheus", URL: promURL + "/alerts"},
		live.Link{Name: "Alertmanager", URL: amURL + "/"},
		live.Link{Name: "autoscaler status", URL: autoscalerURL + "/"},
	)
}

// feed publishes the recorder's snapshot at once and then every second until
// ctx ends; the returned func waits for the last publish.
func (v *liveView) feed(ctx context.Context, rec *recorder) (wait func()) {
	if v == nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			v.srv.Publish(rec.snapshot())
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() { <-done }
}

// finish publishes the record the report was drawn from and the report
// itself, and waits at most 5 s for the open pages to receive them (also
// after ctx was cancelled: the report of an interrupted run is shown too).
func (v *liveView) finish(ctx context.Context, samples []report.Sample, events []report.Event, htmlPath string) error {
	if v == nil {
		return nil
	}
	v.srv.Publish(samples, events)
	html, err := os.ReadFile(htmlPath)
	if err != nil {
		html = nil // the page still ends, without the report
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if ferr := v.srv.Finish(fctx, html); ferr != nil {
		return fmt.Errorf("live page: %w", ferr)
	}
	if err != nil {
		return fmt.Errorf("live page: read the report: %w", err)
	}
	return nil
}
