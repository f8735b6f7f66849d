package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"tidepool/internal/cloud"
	"tidepool/internal/exoclient"
)

// runCloud is the cloud phase: the local cloud on a 127.0.0.1 port with
// fresh random credentials, its state under OutDir/cloud, members' output in
// OutDir/members.log, and the API client the other phases use. Stopping it
// stops every member and load balancer.
func (s *session) runCloud(ctx context.Context, ready func()) error {
	cfg := s.cfg
	key, secret := "EXO"+randomHex(12), randomHex(20)
	membersLog, err := os.Create(filepath.Join(cfg.OutDir, "members.log"))
	if err != nil {
		return fmt.Errorf("members log: %w", err)
	}
	defer membersLog.Close()
	// The cloud's state from an earlier demo would bring back its pool.
	stateDir := filepath.Join(cfg.OutDir, "cloud")
	if err := os.RemoveAll(stateDir); err != nil {
		return fmt.Errorf("remove old cloud state: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	endpoint := "http://" + ln.Addr().String() + "/v2"
	cl, err := cloud.New(cloud.Config{
		Key: key, Secret: secret,
		PublicEndpoint: endpoint,
		StateDir:       stateDir,
		MemberNet:      s.addrs.memberNet,
		NLBNet:         s.addrs.lbNet,
		AppPort:        s.addrs.appPort,
		MetricsPort:    s.addrs.metricsPort,
		BootDelay:      new(cfg.BootDelay),
		CPUPerVCPU:     cfg.CPUPerVCPU,
		EvictGrace:     15 * time.Second,
		AppCommand:     cfg.AppCommand,
		AppEnv:         []string{"TIDEPOOL_APP_WORK=" + cfg.Work.String(), "TIDEPOOL_APP_DRAIN=2s"},
		AppOutput:      membersLog,
		CgroupParent:   cfg.CgroupParent,
		Logger:         s.log.With("component", "cloud"),
	})
	if err != nil {
		ln.Close()
		return err
	}
	if w := cl.Warning(); w != "" {
		s.say("warning: %s", w)
	}
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	if s.client, err = exoclient.New(exoclient.Config{Key: key, Secret: secret, Endpoint: endpoint, UserAgent: "tidepool-demo", Transport: transport}); err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{Handler: cl.Handler(), ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: cloud.MaxHeaderBytes}
	go srv.Serve(ln)
	defer srv.Close()
	ready()
	return cl.Run(ctx)
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Errorf("crypto/rand: %w", err))
	}
	return hex.EncodeToString(b)
}
