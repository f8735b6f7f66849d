package demo

import (
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/netip"

	"tidepool/internal/cloud"
	"tidepool/internal/loopback"
)

// addrPlan is where the demo's members, load balancer, Prometheus and
// Alertmanager listen.
type addrPlan struct {
	memberNet, lbNet     netip.Prefix
	appPort, metricsPort uint16
	// prom and alertmanager are 127.0.0.1:PORT addresses that were free.
	prom, alertmanager string
}

// plan chooses every address before anything starts: Config's ranges if
// set, else the cloud's defaults or free ones (planAddrs), and free ports
// for Prometheus and Alertmanager, which the agents' configuration names
// before monitoring starts.
func (s *session) plan() error {
	p := planAddrs(s.cfg.ServicePort)
	if s.cfg.MemberNet.IsValid() || s.cfg.NLBNet.IsValid() {
		p.memberNet, p.lbNet = s.cfg.MemberNet, s.cfg.NLBNet
	} else if p.memberNet != cloud.DefaultMemberNet {
		s.say("note: %s is in use (another demo?); members use %s and load balancers %s", cloud.DefaultMemberNet, p.memberNet, p.lbNet)
	}
	if p.appPort != cloud.DefaultAppPort {
		s.say("note: ports %d/%d are taken on every address (a system service?); members use %d (app) and %d (node exporter)",
			cloud.DefaultAppPort, cloud.DefaultMetricsPort, p.appPort, p.metricsPort)
	}
	var err error
	if p.prom, err = freeLocalAddr(); err != nil {
		return fmt.Errorf("prometheus address: %w", err)
	}
	if p.alertmanager, err = freeLocalAddr(); err != nil {
		return fmt.Errorf("alertmanager address: %w", err)
	}
	s.addrs = p
	return nil
}

// planAddrs returns the local cloud's default ranges and ports (members on
// 127.77.0.N:8080 and :9100, load balancers on 127.78.0.N), or, when they
// are taken, free ones: random 127.x.y.0/24 ranges when another demo holds
// the defaults, and other ports when a system service listens on :8080 or
// :9100 of every address (a node exporter, say).
func planAddrs(servicePort uint16) addrPlan {
	free := func(p addrPlan) bool {
		for _, ap := range []netip.AddrPort{
			netip.AddrPortFrom(p.memberNet.Addr().Next().Next(), p.appPort),
			netip.AddrPortFrom(p.memberNet.Addr().Next().Next(), p.metricsPort),
			netip.AddrPortFrom(p.lbNet.Addr().Next().Next(), servicePort),
		} {
			ln, err := net.Listen("tcp", ap.String())
			if err != nil {
				return false
			}
			ln.Close()
		}
		return true
	}
	ports := [][2]uint16{{cloud.DefaultAppPort, cloud.DefaultMetricsPort}, {18080, 19100}, {28080, 29100}}
	p := addrPlan{memberNet: cloud.DefaultMemberNet, lbNet: cloud.DefaultNLBNet}
	for i := 0; i < 30; i++ {
		p.appPort, p.metricsPort = ports[i%len(ports)][0], ports[i%len(ports)][1]
		if free(p) {
			return p
		}
		if i%len(ports) == len(ports)-1 {
			a, b := byte(100+mrand.IntN(151)), byte(mrand.IntN(128)*2)
			p.memberNet = netip.PrefixFrom(netip.AddrFrom4([4]byte{127, a, b, 0}), 24)
			p.lbNet = netip.PrefixFrom(netip.AddrFrom4([4]byte{127, a, b + 1, 0}), 24)
		}
	}
	return p
}

// freeLocalAddr returns "127.0.0.1:port" with a port that was free a moment ago.
func freeLocalAddr() (string, error) {
	ap, err := loopback.FreePort(netip.AddrFrom4([4]byte{127, 0, 0, 1}))
	if err != nil {
		return "", err
	}
	return ap.String(), nil
}
