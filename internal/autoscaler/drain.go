package autoscaler

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	v3 "github.com/exoscale/egoscale/v3"

	"tidepool/internal/autoscaler/policy"
)

// DefaultAppPort is the member app's port when neither Config.AppPort nor an
// NLB service says otherwise.
const DefaultAppPort = 8080

// drainer takes a member out of service before it is evicted: it asks the
// member's app to drain (POST /drain turns its /health to 503 while requests
// are still served), waits until the NLB service reports the member's health
// check as failed (when an NLB service is configured), then waits a grace
// period for in-flight requests. Every step is best effort: a failure is
// logged and the eviction goes ahead (the cloud also drains a member it
// evicts, by SIGTERM).
type drainer struct {
	cloud        *cloudPool
	client       *http.Client
	nlbID, svcID v3.UUID // both "" when no NLB service is configured
	token        string  // shared bearer token for POST /drain; "" for none (a member's own token wins)
	timeout      time.Duration
	grace        time.Duration
	poll         time.Duration
	log          *slog.Logger

	portOnce sync.Once
	port     int // app port; resolved from the NLB service when 0
}

func (d *drainer) appPort(ctx context.Context) int {
	d.portOnce.Do(func() {
		if d.port != 0 {
			return
		}
		d.port = DefaultAppPort
		if d.svcID == "" {
			return
		}
		port, err := d.cloud.nlbTargetPort(ctx, d.nlbID, d.svcID)
		if err != nil || port == 0 {
			d.log.Warn("cannot read the NLB service target port, using the default app port", "port", d.port, "err", err)
			return
		}
		d.port = port
	})
	return d.port
}

// credential returns the drain token to send to a member: its own (from its
// labels) if the cloud issued one, else the shared one.
func (d *drainer) credential(own string) string {
	if own != "" {
		return own
	}
	return d.token
}

// drain takes m out of service; token is its drain credential. It returns
// early, without error, when ctx is done: the caller then evicts at once
// (the member may already answer 503).
func (d *drainer) drain(ctx context.Context, m policy.Member, token string) {
	log := d.log.With("member", m.ID, "ip", m.PublicIP)
	if m.PublicIP == "" {
		log.Warn("member has no public IP, cannot drain it before eviction")
		return
	}
	start := time.Now()
	url := "http://" + net.JoinHostPort(m.PublicIP, strconv.Itoa(d.appPort(ctx))) + "/drain"
	if err := d.send(ctx, http.MethodPost, url, token); err != nil {
		log.Warn("drain request failed, evicting anyway", "url", url, "err", err)
		return
	}
	log.Info("member draining", "url", url)
	if d.svcID != "" {
		d.waitUnhealthy(ctx, log, m.PublicIP)
	}
	if d.grace > 0 {
		log.Info("waiting for in-flight requests", "grace", d.grace)
		if sleep(ctx, d.grace) != nil {
			return
		}
	}
	log.Info("member drained", "took", time.Since(start).Round(time.Millisecond))
}

// undrain asks m to serve again (DELETE /drain) and returns an error unless
// it answered 2xx.
func (d *drainer) undrain(ctx context.Context, m policy.Member, token string) error {
	if m.PublicIP == "" {
		return fmt.Errorf("member %s has no public IP", m.ID)
	}
	url := "http://" + net.JoinHostPort(m.PublicIP, strconv.Itoa(d.appPort(ctx))) + "/drain"
	return d.send(ctx, http.MethodDelete, url, token)
}

func (d *drainer) send(ctx context.Context, method, url, token string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s", method, url, resp.Status)
	}
	return nil
}

// waitUnhealthy polls the NLB service until it reports ip as failing its
// health check or no longer lists it, for at most d.timeout.
func (d *drainer) waitUnhealthy(ctx context.Context, log *slog.Logger, ip string) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	for {
		st, listed, err := d.cloud.nlbMemberStatus(ctx, d.nlbID, d.svcID, ip)
		switch {
		case err != nil:
			log.Warn("cannot read the NLB health check status", "err", err)
		case !listed:
			log.Info("member is out of the NLB service")
			return
		case st == v3.LoadBalancerServerStatusStatusFailure:
			log.Info("NLB health check reports the member failing")
			return
		}
		if sleep(ctx, d.poll) != nil {
			log.Warn("member still in the NLB service, evicting anyway", "drain_timeout", d.timeout, "err", ctx.Err())
			return
		}
	}
}
