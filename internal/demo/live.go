package demo

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"tidepool/internal/live"
	"tidepool/internal/report"
)

// DefaultLiveAddr is where the live page is served when Config.LiveAddr is
// empty (a busy port falls back to a free one).
const DefaultLiveAddr = "127.0.0.1:8088"

// LiveOff as Config.LiveAddr serves no live page.
const LiveOff = "off"

const (
	// livePublishEvery is the longest a recorded change waits before it
	// is sent to the open pages (they must update at least every second);
	// the changes in between go out together, as each Publish encodes the
	// whole record.
	livePublishEvery = 500 * time.Millisecond
	// liveFinishWait bounds the wait for open pages to receive the final
	// report, and then the server's shutdown.
	liveFinishWait = 5 * time.Second
)

// checkLiveAddr reports why addr is not a live page address: LiveOff or
// HOST:PORT (port 0-65535, 0 for any free port).
func checkLiveAddr(addr string) error {
	if addr == LiveOff {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		_, err = net.LookupPort("tcp", port)
	}
	if err != nil {
		return fmt.Errorf("live page address %q: want HOST:PORT (port 0: any free port) or %q", addr, LiveOff)
	}
	return nil
}

// runLive is the live page phase, the first of the run. It serves the page
// (internal/live) on LiveAddr, or on a free port of the same host when that
// port is busy, prints its address next to the report's path, and sends
// the page what the recorder tells its Observer (liveFeed), within
// livePublishEvery. The monitoring phase adds the links (linkLive).
//
// The group stops it last, once every other phase has returned: then it
// sends the whole record, has the report written (session.result) and
// shows it on the open pages, waiting at most liveFinishWait for them, and
// stops serving.
func (s *session) runLive(ctx context.Context, ready func()) error {
	ln, fellBack, err := live.Listen(s.cfg.LiveAddr)
	if err != nil {
		return err
	}
	srv := live.New(live.Config{
		Title:  "tidepool demo (" + s.prof.Name + " profile)",
		Logger: s.log.With("component", "live"),
	})
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), liveFinishWait)
		defer cancel()
		if hs.Shutdown(sctx) != nil {
			hs.Close()
		}
	}()
	if fellBack {
		s.say("note: %s is in use; the live page is on another port", s.cfg.LiveAddr)
	}
	s.say("live page: http://%s/ (the report will be %s)", ln.Addr(), filepath.Join(s.cfg.OutDir, report.HTMLFile))
	s.live = srv
	ready()

	tick := time.NewTicker(livePublishEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			s.finishLive(srv)
			return nil
		case err := <-served:
			return fmt.Errorf("serve: %w", err)
		case <-tick.C:
		}
		select {
		case <-s.feed.changed:
			srv.Publish(s.feed.record())
		default:
		}
	}
}

// finishLive ends the page once every other phase has stopped: it sends
// the record the report is drawn from and the report (when the load never
// started: the record so far and no report).
func (s *session) finishLive(srv *live.Server) {
	samples, events := s.feed.record()
	var html []byte
	if !s.load.start.IsZero() {
		res, err := s.result()
		samples, events = res.Samples, res.Events
		if err == nil {
			if html, err = os.ReadFile(res.HTMLPath); err != nil {
				s.log.Warn("live page: read the report", "err", err)
			}
		}
	}
	srv.Publish(samples, events)
	ctx, cancel := context.WithTimeout(context.Background(), liveFinishWait)
	defer cancel()
	if err := srv.Finish(ctx, html); err != nil {
		s.log.Warn("live page: not every open page received the report", "err", err)
	}
}

// linkLive shows the live page's links to the live Prometheus and
// Alertmanager and to the autoscaler's /status (its HTML status page needs
// the token the autoscaler phase gave it, which a link cannot carry); the
// monitoring phase calls it once they are up. Without a live page it does
// nothing.
func (s *session) linkLive(promURL string) {
	if s.live == nil {
		return
	}
	s.live.SetLinks(
		live.Link{Name: "Prometheus", URL: promURL + "/alerts"},
		live.Link{Name: "Alertmanager", URL: "http://" + s.addrs.alertmanager + "/"},
		live.Link{Name: "autoscaler /status", URL: "http://" + s.autoscalerAddr + "/status"},
	)
}

// liveFeed is the Observer that feeds the live page: it keeps the record as
// the recorder tells it (so the page draws what the report will) and
// signals each change to the live phase. Safe for concurrent use.
type liveFeed struct {
	mu      sync.Mutex
	samples map[time.Duration]report.Sample
	events  []report.Event
	// changed holds a value while a change has not been published.
	changed chan struct{}
}

var _ Observer = (*liveFeed)(nil)

func newLiveFeed() *liveFeed {
	return &liveFeed{samples: map[time.Duration]report.Sample{}, changed: make(chan struct{}, 1)}
}

// Sample keeps s, replacing the sample of the same second.
func (f *liveFeed) Sample(s report.Sample) {
	f.mu.Lock()
	f.samples[s.T] = s
	f.mu.Unlock()
	f.signal()
}

// Event keeps e.
func (f *liveFeed) Event(e report.Event) {
	f.mu.Lock()
	f.events = append(f.events, e)
	f.mu.Unlock()
	f.signal()
}

func (f *liveFeed) signal() {
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

// record returns the samples so far by time and the events in the order
// they were told (what live.Server.Publish takes).
func (f *liveFeed) record() ([]report.Sample, []report.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	samples := slices.SortedFunc(maps.Values(f.samples), func(a, b report.Sample) int { return cmp.Compare(a.T, b.T) })
	return samples, slices.Clone(f.events)
}

// observers tells each of its Observers in turn.
type observers []Observer

// joinObservers returns an Observer telling each non-nil one of obs, or nil
// if there is none.
func joinObservers(obs ...Observer) Observer {
	var out observers
	for _, o := range obs {
		if o != nil {
			out = append(out, o)
		}
	}
	switch len(out) {
	case 0:
		return nil
	case 1:
		return out[0]
	}
	return out
}

func (o observers) Sample(s report.Sample) {
	for _, x := range o {
		x.Sample(s)
	}
}

func (o observers) Event(e report.Event) {
	for _, x := range o {
		x.Event(e)
	}
}
