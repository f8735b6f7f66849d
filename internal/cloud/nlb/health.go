package nlb

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults applied to a zero HealthCheck field.
const (
	DefaultCheckInterval = 10 * time.Second
	DefaultCheckTimeout  = 5 * time.Second
	DefaultCheckRetries  = 1
)

// HealthCheck configures how members are probed. It mirrors the Exoscale
// load-balancer-service-healthcheck object; the zero value is a TCP connect
// check on the target port every 10s.
type HealthCheck struct {
	Mode     string        // "tcp", "http" or "https" (Exoscale enum); "" means tcp
	Port     uint16        // port probed on the member IP; zero means the service's target port
	URI      string        // path for http(s) mode, e.g. "/health"; "" means "/"; success = HTTP 200
	Interval time.Duration // between probes; zero -> 10s
	Timeout  time.Duration // per probe; zero -> 5s
	Retries  int           // consecutive results needed to flip state; zero -> 1
	TLSSNI   string        // server name sent in https mode; the certificate is not verified
}

// Validate reports whether hc can be used: a known mode and no negative
// durations or retries. Zero fields are valid (defaults apply).
func (hc HealthCheck) Validate() error {
	switch hc.Mode {
	case "", "tcp", "http", "https":
	default:
		return fmt.Errorf("health check mode %q: want tcp, http or https", hc.Mode)
	}
	if hc.Interval < 0 || hc.Timeout < 0 {
		return fmt.Errorf("health check interval %v and timeout %v must not be negative", hc.Interval, hc.Timeout)
	}
	if hc.Retries < 0 {
		return fmt.Errorf("health check retries %d must not be negative", hc.Retries)
	}
	return nil
}

// withDefaults returns hc with every zero field replaced by its default; a
// zero Port becomes targetPort.
func (hc HealthCheck) withDefaults(targetPort uint16) HealthCheck {
	if hc.Mode == "" {
		hc.Mode = "tcp"
	}
	if hc.Port == 0 {
		hc.Port = targetPort
	}
	if hc.URI == "" {
		hc.URI = "/"
	} else if !strings.HasPrefix(hc.URI, "/") {
		hc.URI = "/" + hc.URI
	}
	if hc.Interval <= 0 {
		hc.Interval = DefaultCheckInterval
	}
	if hc.Timeout <= 0 {
		hc.Timeout = DefaultCheckTimeout
	}
	if hc.Retries <= 0 {
		hc.Retries = DefaultCheckRetries
	}
	return hc
}

// healthState is what the checker remembers about one member.
type healthState struct {
	Healthy bool
	Streak  int // consecutive probe results that disagree with Healthy
}

// nextHealth is the health decision: given the current state, the result of
// one probe and the number of consecutive disagreeing results needed to flip
// (retries >= 1), it returns the new state and whether Healthy flipped.
// A result that agrees with the current state resets the streak.
func nextHealth(cur healthState, passed bool, retries int) (next healthState, flipped bool) {
	if passed == cur.Healthy {
		return healthState{Healthy: cur.Healthy}, false
	}
	if cur.Streak+1 >= retries {
		return healthState{Healthy: passed}, true
	}
	return healthState{Healthy: cur.Healthy, Streak: cur.Streak + 1}, false
}

// prober runs one kind of probe against member IPs. It holds no goroutines
// or idle connections (keep-alives are off), so it needs no closing.
type prober struct {
	hc     HealthCheck // with defaults applied
	dialer net.Dialer
	client *http.Client // nil in tcp mode
}

func newProber(hc HealthCheck) *prober {
	p := &prober{hc: hc}
	if hc.Mode == "http" || hc.Mode == "https" {
		p.client = &http.Client{
			Transport: &http.Transport{
				DialContext:       p.dialer.DialContext,
				DisableKeepAlives: true,
				TLSClientConfig:   &tls.Config{ServerName: hc.TLSSNI, InsecureSkipVerify: true}, // like Exoscale: probes do not verify
			},
			// A redirect is not a 200: do not follow it.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return p
}

// probe checks ip once and returns nil when it passes. It blocks at most
// hc.Timeout (less if ctx ends first).
func (p *prober) probe(ctx context.Context, ip netip.Addr) error {
	ctx, cancel := context.WithTimeout(ctx, p.hc.Timeout)
	defer cancel()
	addr := netip.AddrPortFrom(ip, p.hc.Port).String()
	if p.client == nil {
		c, err := p.dialer.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("tcp probe: %w", err)
		}
		return c.Close()
	}
	url := p.hc.Mode + "://" + addr + p.hc.URI
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("%s probe: %w", p.hc.Mode, err)
	}
	req.Header.Set("User-Agent", "tidepool-nlb-healthcheck")
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s probe: %w", p.hc.Mode, err)
	}
	_, copyErr := io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	closeErr := resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s probe %s: status %d, want 200", p.hc.Mode, url, resp.StatusCode)
	}
	if err := errors.Join(copyErr, closeErr); err != nil {
		return fmt.Errorf("%s probe %s: reading body: %w", p.hc.Mode, url, err)
	}
	return nil
}

// superviseChecks keeps exactly one probe loop running per current member,
// with the current health check settings: it starts loops for new members
// (which probe at once), stops loops of removed members and restarts all
// loops when the health check changes. It blocks until ctx is done and all
// loops have returned.
func (s *Service) superviseChecks(ctx context.Context) {
	type loop struct {
		cancel context.CancelFunc
		gen    uint64
	}
	running := make(map[*member]loop)
	var wg sync.WaitGroup
	defer func() {
		for _, l := range running {
			l.cancel()
		}
		wg.Wait()
	}()
	for {
		s.mu.Lock()
		gen, p := s.gen, s.prober
		current := make(map[*member]bool, len(s.members))
		for _, m := range s.members {
			current[m] = true
		}
		s.mu.Unlock()

		for m, l := range running {
			if !current[m] || l.gen != gen {
				l.cancel()
				delete(running, m)
			}
		}
		for m := range current {
			if _, ok := running[m]; ok {
				continue
			}
			lctx, cancel := context.WithCancel(ctx)
			running[m] = loop{cancel: cancel, gen: gen}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.probeLoop(lctx, m, p, gen)
			}()
		}

		select {
		case <-ctx.Done():
			return
		case <-s.changed:
		}
	}
}

// probeLoop probes m at once and then every interval until ctx is done,
// feeding each result to the health decision.
func (s *Service) probeLoop(ctx context.Context, m *member, p *prober, gen uint64) {
	ticker := time.NewTicker(p.hc.Interval)
	defer ticker.Stop()
	var streak int
	for {
		err := p.probe(ctx, m.ip)
		if ctx.Err() != nil {
			return
		}
		if localExhaustion(err) {
			// This process, not the member, is out of descriptors or
			// memory: no verdict on the member, which keeps its health.
			if ok, suppressed := s.probeLog.Allow(time.Now()); ok {
				s.log.Warn("health probe skipped: this process is out of resources", "backend", m.id, "err", err, "suppressed", suppressed)
			}
		} else {
			s.record(m, gen, &streak, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// record applies one probe result (err == nil: passed) to m, unless the
// result is stale (m was removed or the health check changed since the probe
// started). streak belongs to the calling probe loop.
func (s *Service) record(m *member, gen uint64, streak *int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen || s.members[m.id] != m {
		return
	}
	m.probes++
	if err != nil {
		m.lastErr = err.Error()
	} else {
		m.lastErr = ""
	}
	next, flipped := nextHealth(healthState{Healthy: m.healthy, Streak: *streak}, err == nil, s.prober.hc.Retries)
	*streak = next.Streak
	if !flipped {
		return
	}
	m.healthy = next.Healthy
	s.table.Store(buildTable(s.members, s.targetPort))
	reason := fmt.Sprintf("%d consecutive probes passed", s.prober.hc.Retries)
	if err != nil {
		reason = fmt.Sprintf("%d consecutive probes failed, last: %v", s.prober.hc.Retries, err)
	}
	s.log.Info("backend health changed", "backend", m.id, "ip", m.ip, "from", healthWord(!m.healthy), "to", healthWord(m.healthy), "reason", reason)
}

// localExhaustion reports whether a probe failed for want of a resource of
// this process or machine (descriptors, buffers, memory) rather than
// because of the member.
func localExhaustion(err error) bool {
	return err != nil && (errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM))
}

func healthWord(healthy bool) string {
	if healthy {
		return "healthy"
	}
	return "unhealthy"
}
