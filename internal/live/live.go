// Package live serves the live page of `tidepool demo`: the report's charts
// (internal/report), drawn in the browser while the demo runs and updated at
// least every second over Server-Sent Events, with the current pool, CPU,
// latency and alert states, every scaling decision with its reason, links to
// the live Prometheus and Alertmanager, and at the end the final report.
//
// The page draws exactly what the report draws: the server sends the
// report's panel specification (report.Panels) and each report.Sample
// converted by report.PlotPoint, and the demo publishes the same samples and
// events it writes the report from. Every asset (page, script, the uPlot
// chart library) is embedded in the binary; the page fetches nothing from
// anywhere else (its Content-Security-Policy forbids it).
package live

import (
	"bytes"
	"cmp"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"tidepool/internal/report"
)

//go:embed assets
var assetFS embed.FS

// DefaultInterval is the longest time between two updates sent to a page.
const DefaultInterval = time.Second

// Config configures a Server. The zero value works.
type Config struct {
	// Title heads the page; "" means "tidepool demo".
	Title string
	// CPUHigh and CPULow are the CPU thresholds drawn on the CPU panel, as
	// report.Data's (0 means the report's default, negative hides one).
	CPUHigh, CPULow float64
	// Interval is the longest time between two updates sent to a page,
	// also when nothing changed; 0 means DefaultInterval.
	Interval time.Duration
	// Logger receives connection errors; nil discards them.
	Logger *slog.Logger
}

// Link is a link shown on the page.
type Link struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

// Server holds the state the page shows and serves it. Create it with New;
// its methods are safe for concurrent use.
type Server struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	seq     uint64        // bumped on every change
	changed chan struct{} // closed and replaced on every change
	samples map[float64]*sampleEntry
	events  []byte // JSON of all events
	evSeq   uint64 // seq of the last change of events
	links   []Link
	meta    metaJSON // load level, instance order
	metaSeq uint64
	started bool // a first Publish happened
	done    bool
	report  []byte        // final report HTML, once done
	streams int           // event streams being served
	idle    chan struct{} // closed when streams drops to 0 after done
}

type sampleEntry struct {
	json []byte
	seq  uint64
}

// New returns a Server with no data.
func New(cfg Config) *Server {
	if cfg.Title == "" {
		cfg.Title = "tidepool demo"
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, log: cfg.Logger, changed: make(chan struct{}), samples: map[float64]*sampleEntry{}, events: []byte("[]")}
}

// bump records a change; the caller holds s.mu.
func (s *Server) bump() uint64 {
	s.seq++
	close(s.changed)
	s.changed = make(chan struct{})
	return s.seq
}

// SetLinks replaces the links shown on the page (Prometheus, Alertmanager,
// the autoscaler's status page).
func (s *Server) SetLinks(links ...Link) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.links = slices.Clone(links)
	s.metaSeq = s.bump()
}

// Publish gives the page the record so far (the demo's recorder snapshot):
// samples are keyed by their time T, and one whose time is absent from
// samples keeps what was published for it before (the record only grows);
// events replace the events. Only the samples that changed since the last
// Publish, and the events if they changed, are sent to the pages. It does
// not block on pages. Publishing after Finish does nothing.
func (s *Server) Publish(samples []report.Sample, events []report.Event) {
	enc := make(map[float64][]byte, len(samples))
	for _, smp := range samples {
		b, err := json.Marshal(wireSample(smp))
		if err != nil { // cannot happen: every float is made finite or null
			s.log.Error("encode sample", "err", err)
			continue
		}
		enc[smp.T.Seconds()] = b
	}
	evs := make([]eventJSON, 0, len(events))
	sorted := slices.Clone(events)
	slices.SortStableFunc(sorted, func(a, b report.Event) int { return cmp.Compare(a.T, b.T) })
	for _, ev := range sorted {
		evs = append(evs, wireEvent(ev))
	}
	evJSON, err := json.Marshal(evs)
	if err != nil {
		s.log.Error("encode events", "err", err)
		return
	}
	sum := report.Summarize(report.Data{Samples: samples, Events: events})
	meta := metaJSON{Level: num(math.NaN()), Instances: report.InstanceOrder(samples)}
	if sum.LoadLevel > 0 {
		meta.Level, meta.LevelName = num(sum.LoadLevel), report.LoadLevelName(sum)
	}
	if meta.Instances == nil {
		meta.Instances = []string{}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	var seq uint64
	next := func() uint64 {
		if seq == 0 {
			seq = s.bump()
		}
		return seq
	}
	for t, b := range enc {
		if e, ok := s.samples[t]; ok && bytes.Equal(e.json, b) {
			continue
		}
		s.samples[t] = &sampleEntry{json: b, seq: next()}
	}
	if !bytes.Equal(s.events, evJSON) {
		s.events, s.evSeq = evJSON, next()
	}
	if !s.started || !metaEqual(s.meta, meta) {
		s.meta, s.metaSeq = meta, next()
	}
	s.started = true
}

// Finish ends the run on every page: it sends the final report (reportHTML,
// a self-contained page shown in a sandboxed frame; nil shows none) and
// closes their event streams. It blocks until every page connected at that
// moment has been sent it, or ctx is done (then it returns ctx's error).
// Later visitors get the final state at once. Finish may be called once;
// later calls return at once.
func (s *Server) Finish(ctx context.Context, reportHTML []byte) error {
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		return nil
	}
	s.done, s.report = true, slices.Clone(reportHTML)
	s.bump()
	idle := make(chan struct{})
	if s.streams == 0 {
		close(idle)
	}
	s.idle = idle
	s.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Handler serves the page:
//
//   - GET / : the page; GET /assets/... : its script, styles and uPlot.
//   - GET /events : the Server-Sent Events stream, an "init" event with the
//     chart specification and everything so far, then an "update" event
//     with the changes at least every Interval; the update that carries the
//     final report ends the stream.
//   - GET /report.html : the final report once Finish was called (404
//     before).
//   - GET /state.json : the "init" message, for scripts and tests.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	sub, err := fs.Sub(assetFS, "assets")
	if err != nil {
		panic(err) // the embedded tree always has assets/
	}
	files := http.FileServerFS(sub)
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", files))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		b, err := assetFS.ReadFile("assets/index.html")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(b)
	})
	mux.HandleFunc("GET /events", s.serveEvents)
	mux.HandleFunc("GET /state.json", func(w http.ResponseWriter, r *http.Request) {
		msg, _, _, _ := s.initMessage()
		w.Header().Set("Content-Type", "application/json")
		w.Write(msg)
	})
	mux.HandleFunc("GET /report.html", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		b, done := s.report, s.done
		s.mu.Unlock()
		if !done || b == nil {
			http.Error(w, "the run has not finished yet", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(b)
	})
	return secure(mux)
}

// csp allows the page its own scripts and styles (and the report's inline
// style in the frame), its own event stream, and nothing from elsewhere.
const csp = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; " +
	"connect-src 'self'; frame-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"

func secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", csp)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	s.mu.Lock()
	s.streams++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.streams--
		if s.streams == 0 && s.idle != nil {
			select {
			case <-s.idle:
			default:
				close(s.idle)
			}
		}
	}()
	send := func(event string, data []byte) bool {
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data); err != nil {
			return false
		}
		if err := rc.Flush(); err != nil {
			s.log.Debug("event stream flush", "err", err)
			return false
		}
		return true
	}
	msg, seq, changed, done := s.initMessage()
	if !send("init", msg) || done {
		return
	}
	tick := time.NewTicker(s.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-changed:
		case <-tick.C:
		}
		msg, seq, changed, done = s.updateMessage(seq)
		if !send("update", msg) || done {
			return
		}
		tick.Reset(s.cfg.Interval)
	}
}

// Messages. Times are seconds since the demo start.

type specJSON struct {
	Title          string                     `json:"title"`
	Panels         []report.PanelSpec         `json:"panels"`
	Marks          map[string]report.MarkSpec `json:"marks"`
	InstanceColors []string                   `json:"instanceColors"`
	InstanceWidth  float64                    `json:"instanceWidth"`
	Thresholds     []report.Threshold         `json:"thresholds"`
	ThresholdLine  report.LineSpec            `json:"thresholdLine"`
	LevelLine      report.LineSpec            `json:"levelLine"`
	Interval       float64                    `json:"interval"`
}

type metaJSON struct {
	// Level is the load panel's rise/drop level (req/s), null before the
	// load rose.
	Level     num      `json:"level"`
	LevelName string   `json:"levelName,omitempty"`
	Instances []string `json:"instances"`
}

func metaEqual(a, b metaJSON) bool {
	return (a.Level == b.Level || (math.IsNaN(float64(a.Level)) && math.IsNaN(float64(b.Level)))) &&
		a.LevelName == b.LevelName && slices.Equal(a.Instances, b.Instances)
}

type message struct {
	Seq  uint64    `json:"seq"`
	Spec *specJSON `json:"spec,omitempty"` // init only
	// Samples are the samples that changed (all of them in init), by time.
	Samples []json.RawMessage `json:"samples"`
	// Events, when present, replace all events.
	Events json.RawMessage `json:"events,omitempty"`
	Links  []Link          `json:"links,omitempty"`
	Meta   *metaJSON       `json:"meta,omitempty"`
	// Finished is set once the run ended; Report is then the final report
	// HTML (only in the message that ends the stream).
	Finished bool   `json:"finished"`
	Report   string `json:"report,omitempty"`
}

func (s *Server) spec() *specJSON {
	return &specJSON{
		Title:          s.cfg.Title,
		Panels:         report.Panels(),
		Marks:          report.Marks(),
		InstanceColors: report.InstanceColors(),
		InstanceWidth:  report.InstanceWidth(),
		Thresholds:     report.CPUThresholds(report.Data{CPUHigh: s.cfg.CPUHigh, CPULow: s.cfg.CPULow}),
		ThresholdLine:  report.ThresholdLine(),
		LevelLine:      report.LevelLine(),
		Interval:       s.cfg.Interval.Seconds(),
	}
}

// initMessage is everything so far; it also returns the sequence number it
// covers, the channel closed on the next change, and whether the run has
// finished.
func (s *Server) initMessage() ([]byte, uint64, <-chan struct{}, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.messageSince(0)
	m.Spec = s.spec()
	b, err := json.Marshal(m)
	if err != nil {
		panic(fmt.Errorf("live: encode init: %w", err)) // every part is plain data
	}
	return b, s.seq, s.changed, s.done
}

// updateMessage is the changes after since, with the same results as
// initMessage.
func (s *Server) updateMessage(since uint64) ([]byte, uint64, <-chan struct{}, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := json.Marshal(s.messageSince(since))
	if err != nil {
		panic(fmt.Errorf("live: encode update: %w", err))
	}
	return b, s.seq, s.changed, s.done
}

// messageSince builds the changes after since; the caller holds s.mu.
func (s *Server) messageSince(since uint64) message {
	m := message{Seq: s.seq, Samples: []json.RawMessage{}, Finished: s.done}
	ts := make([]float64, 0, len(s.samples))
	for t, e := range s.samples {
		if e.seq > since || since == 0 {
			ts = append(ts, t)
		}
	}
	slices.Sort(ts)
	for _, t := range ts {
		m.Samples = append(m.Samples, s.samples[t].json)
	}
	if since == 0 || s.evSeq > since {
		m.Events = s.events
	}
	if since == 0 || s.metaSeq > since {
		meta := s.meta
		if meta.Instances == nil {
			meta = metaJSON{Level: num(math.NaN()), Instances: []string{}}
		}
		m.Meta, m.Links = &meta, slices.Clone(s.links)
		if m.Links == nil {
			m.Links = []Link{}
		}
	}
	if s.done {
		m.Report = string(s.report)
	}
	return m
}

// SamplesJSON returns samples as the page receives them (sorted by time):
// a JSON array of {"t": seconds, "v": {series key: value or null},
// "cpu": {instance: percent or null}, "alerts": {name: state}}, values as
// report.PlotPoint gives them. Tests compare it with what a page holds.
func SamplesJSON(samples []report.Sample) ([]byte, error) {
	sorted := slices.Clone(samples)
	slices.SortStableFunc(sorted, func(a, b report.Sample) int { return cmp.Compare(a.T, b.T) })
	out := make([]sampleJSON, len(sorted))
	for i, s := range sorted {
		out[i] = wireSample(s)
	}
	return json.Marshal(out)
}

type sampleJSON struct {
	T      float64           `json:"t"`
	V      map[string]num    `json:"v"`
	CPU    map[string]num    `json:"cpu,omitempty"`
	Alerts map[string]string `json:"alerts,omitempty"`
}

func wireSample(smp report.Sample) sampleJSON {
	p := report.PlotPoint(smp)
	out := sampleJSON{T: p.T, V: make(map[string]num, len(p.Values)), Alerts: smp.Alerts}
	for k, v := range p.Values {
		out.V[k] = num(v)
	}
	if len(p.CPU) > 0 {
		out.CPU = make(map[string]num, len(p.CPU))
		for k, v := range p.CPU {
			out.CPU[k] = num(v)
		}
	}
	return out
}

type eventJSON struct {
	T      float64 `json:"t"`
	Kind   string  `json:"kind"`
	From   int     `json:"from"`
	To     int     `json:"to"`
	Label  string  `json:"label"`
	Clock  string  `json:"clock"`
	Reason string  `json:"reason"`
}

func wireEvent(ev report.Event) eventJSON {
	return eventJSON{T: ev.T.Seconds(), Kind: ev.Kind, From: ev.From, To: ev.To, Label: ev.Label(), Clock: report.ClockLabel(ev.T), Reason: ev.Reason}
}

// num is a float that encodes NaN and infinities as JSON null (a gap).
type num float64

func (n num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
}

// Listen listens on the TCP address addr. When addr names a port that is
// in use, it listens on a free port of the same host instead and reports
// fellBack; a port of 0 always picks a free port.
func Listen(addr string) (ln net.Listener, fellBack bool, err error) {
	ln, err = net.Listen("tcp", addr)
	if err == nil {
		return ln, false, nil
	}
	host, port, splitErr := net.SplitHostPort(addr)
	if splitErr != nil || port == "0" || !errors.Is(err, syscall.EADDRINUSE) {
		return nil, false, fmt.Errorf("live view: %w", err)
	}
	ln, err2 := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err2 != nil {
		return nil, false, fmt.Errorf("live view: %w (and no free port: %w)", err, err2)
	}
	return ln, true, nil
}
