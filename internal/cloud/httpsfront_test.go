package cloud_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	egoscale "github.com/exoscale/egoscale/v2"
	exoapi "github.com/exoscale/egoscale/v2/api"

	"tidepool/internal/cloud"
	"tidepool/internal/cloud/cloudtest"
)

// connect sends a CONNECT for target through the proxy at addr and returns
// the connection and the proxy's status code.
func connect(t *testing.T, addr, target string) (net.Conn, int) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatalf("CONNECT %s: %v", target, err)
	}
	resp.Body.Close()
	return conn, resp.StatusCode
}

// TestHTTPSFrontRefuses checks that the front tunnels nothing but
// *.exoscale.com:443, proxies no plain request, and that its certificates
// are only good for the name asked: it never connects anywhere itself.
func TestHTTPSFrontRefuses(t *testing.T) {
	dir := t.TempDir()
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "cloud:"+r.Host+r.URL.Path) })
	addr, _ := serveFront(t, handler, dir)

	for _, target := range []string{"example.org:443", "api.exoscale.com:80", "exoscale.com.example.org:443", "127.0.0.1:443"} {
		if _, code := connect(t, addr, target); code != http.StatusForbidden {
			t.Errorf("CONNECT %s: status %d, want 403", target, code)
		}
	}
	resp, err := http.Get("http://" + addr + "/v2/zone")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("plain GET through the front: status %d, want 405", resp.StatusCode)
	}

	roots := x509.NewCertPool()
	caPEM, err := os.ReadFile(filepath.Join(dir, cloud.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	roots.AppendCertsFromPEM(caPEM)
	// A tunnel for one name does not yield a certificate for another.
	conn, code := connect(t, addr, "api-ch-gva-2.exoscale.com:443")
	if code != http.StatusOK {
		t.Fatalf("CONNECT api-ch-gva-2.exoscale.com:443: status %d, want 200", code)
	}
	if err := tls.Client(conn, &tls.Config{ServerName: "example.org", RootCAs: roots}).Handshake(); err == nil {
		t.Error("TLS handshake for example.org through the front succeeded, want a failure")
	}
	// The right name gets a certificate the CA vouches for, and the request
	// reaches the handler.
	conn, _ = connect(t, addr, "api-ch-gva-2.exoscale.com:443")
	tc := tls.Client(conn, &tls.Config{ServerName: "api-ch-gva-2.exoscale.com", RootCAs: roots})
	fmt.Fprint(tc, "GET /v2/zone HTTP/1.1\r\nHost: api-ch-gva-2.exoscale.com\r\nConnection: close\r\n\r\n")
	resp, err = http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		t.Fatalf("request through the tunnel: %v", err)
	}
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	resp.Body.Close()
	if want := "cloud:api-ch-gva-2.exoscale.com/v2/zone"; body.String() != want {
		t.Errorf("answer through the tunnel = %q, want %q", body.String(), want)
	}

	// The CA is name-constrained to exoscale.com, its key private, and a
	// second front on the same directory keeps it.
	block, _ := pem.Decode(caPEM)
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !ca.PermittedDNSDomainsCritical || len(ca.PermittedDNSDomains) != 1 || ca.PermittedDNSDomains[0] != "exoscale.com" {
		t.Errorf("CA name constraints = %v (critical %v), want exactly exoscale.com", ca.PermittedDNSDomains, ca.PermittedDNSDomainsCritical)
	}
	if fi, err := os.Stat(filepath.Join(dir, cloud.CAKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("CA key file: %v, %v; want mode 0600", fi, err)
	}
	again, err := cloud.NewHTTPSFront(cloud.HTTPSFrontConfig{Handler: handler, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(again.CAFile()); err != nil || !bytes.Equal(b, caPEM) {
		t.Errorf("second front on the same directory: CA changed (%v)", err)
	}
}

// TestEgoscaleV2ThroughEnv runs egoscale v2 with its default HTTP client in
// a child process whose only configuration is the documented environment,
// HTTPS_PROXY and SSL_CERT_FILE, as the Terraform provider would run.
func TestEgoscaleV2ThroughEnv(t *testing.T) {
	env := cloudtest.Start(t, cloudtest.Options{})
	addr, caFile := startFront(t, env)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperEgoscaleV2Env$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		"TIDEPOOL_V2_HELPER=1", "TIDEPOOL_V2_KEY="+env.Key, "TIDEPOOL_V2_SECRET="+env.Secret,
		"HTTPS_PROXY=http://"+addr, "https_proxy=", "NO_PROXY=", "no_proxy=", "SSL_CERT_FILE="+caFile, "SSL_CERT_DIR=")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "helper: ok") {
		t.Fatalf("child with HTTPS_PROXY and SSL_CERT_FILE: %v\n%s", err, out)
	}
}

// TestHelperEgoscaleV2Env is the child of TestEgoscaleV2ThroughEnv; it does
// nothing in a normal run. It exits the process itself so that the
// package's leak check does not see the default client's idle connections.
func TestHelperEgoscaleV2Env(t *testing.T) {
	if os.Getenv("TIDEPOOL_V2_HELPER") != "1" {
		t.Skip("helper process of TestEgoscaleV2ThroughEnv")
	}
	err := func() error {
		c, err := egoscale.NewClient(os.Getenv("TIDEPOOL_V2_KEY"), os.Getenv("TIDEPOOL_V2_SECRET"), egoscale.ClientOptWithPollInterval(v2PollInterval))
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		ctx = exoapi.WithEndpoint(ctx, exoapi.NewReqEndpoint("", "ch-gva-2"))
		if _, err := c.ListZones(ctx); err != nil {
			return fmt.Errorf("ListZones: %w", err)
		}
		sg, err := c.CreateSecurityGroup(ctx, "ch-gva-2", &egoscale.SecurityGroup{Name: ptrTo("through-env")})
		if err != nil {
			return fmt.Errorf("CreateSecurityGroup: %w", err)
		}
		if err := c.DeleteSecurityGroup(ctx, "ch-gva-2", sg); err != nil {
			return fmt.Errorf("DeleteSecurityGroup: %w", err)
		}
		return nil
	}()
	if err != nil {
		fmt.Println("helper:", err)
		os.Exit(1)
	}
	fmt.Println("helper: ok")
	os.Exit(0)
}
