// The HTTPS front: a CONNECT proxy for clients that always call
// https://api-ZONE.exoscale.com (egoscale v2, and so parts of the Terraform
// provider), so that they reach the local cloud unchanged.

package cloud

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"tidepool/internal/atomicfile"
)

// Files of the HTTPS front's certificate authority in HTTPSFrontConfig.Dir.
const (
	// CAFile is the CA certificate clients trust (SSL_CERT_FILE).
	CAFile = "ca.pem"
	// CAKeyFile is the CA's private key (mode 0600).
	CAKeyFile = "ca-key.pem"
)

// frontDomain is the only domain the front answers for; the CA is also
// name-constrained to it, so trusting it cannot vouch for any other site.
const frontDomain = "exoscale.com"

// HTTPSFrontConfig configures NewHTTPSFront.
type HTTPSFrontConfig struct {
	// Handler serves the decrypted requests (the cloud's Handler); required.
	Handler http.Handler
	// Dir holds CAFile and CAKeyFile: they are created on first use and
	// reused after, so that clients keep trusting the same CA; required.
	Dir string
	// Logger receives logs; nil discards them.
	Logger *slog.Logger
}

// HTTPSFront is a CONNECT proxy that never connects anywhere: it accepts
// CONNECT requests for *.exoscale.com:443 only, terminates TLS itself with a
// certificate its own CA issues for the requested name, and hands the
// decrypted requests to Handler. Anything else is refused. Point clients at
// it with HTTPS_PROXY=http://ADDR and SSL_CERT_FILE=<Dir>/ca.pem.
type HTTPSFront struct {
	handler http.Handler
	log     *slog.Logger
	caFile  string
	ca      *x509.Certificate
	caKey   *ecdsa.PrivateKey

	mu    sync.Mutex
	certs map[string]*tls.Certificate // leaf certificates by host name
}

// NewHTTPSFront loads the CA of cfg.Dir, or creates it there.
func NewHTTPSFront(cfg HTTPSFrontConfig) (*HTTPSFront, error) {
	if cfg.Handler == nil || cfg.Dir == "" {
		return nil, errors.New("https front: handler and directory are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	f := &HTTPSFront{handler: cfg.Handler, log: cfg.Logger, caFile: filepath.Join(cfg.Dir, CAFile), certs: map[string]*tls.Certificate{}}
	if err := f.loadOrCreateCA(cfg.Dir); err != nil {
		return nil, fmt.Errorf("https front: %w", err)
	}
	return f, nil
}

// CAFile returns the path of the CA certificate clients must trust.
func (f *HTTPSFront) CAFile() string { return f.caFile }

func (f *HTTPSFront) loadOrCreateCA(dir string) error {
	certPEM, err := os.ReadFile(filepath.Join(dir, CAFile))
	if errors.Is(err, fs.ErrNotExist) {
		return f.createCA(dir)
	}
	if err != nil {
		return fmt.Errorf("read CA: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return fmt.Errorf("read CA key: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("CA in %s: %w", dir, err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return fmt.Errorf("CA key in %s: want an ECDSA key", dir)
	}
	ca, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return fmt.Errorf("CA in %s: %w", dir, err)
	}
	if !ca.IsCA || time.Now().After(ca.NotAfter) {
		return fmt.Errorf("CA in %s is not a valid CA certificate (remove %s and %s to make a new one)", dir, CAFile, CAKeyFile)
	}
	f.ca, f.caKey = ca, key
	return nil
}

func (f *HTTPSFront) createCA(dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:                randomSerial(),
		Subject:                     pkix.Name{CommonName: "tidepool local cloud CA", Organization: []string{"tidepool"}},
		NotBefore:                   now.Add(-time.Hour),
		NotAfter:                    now.AddDate(10, 0, 0),
		IsCA:                        true,
		BasicConstraintsValid:       true,
		MaxPathLenZero:              true,
		KeyUsage:                    x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         []string{frontDomain},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("CA certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("CA key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("CA directory: %w", err)
	}
	// The key first: a certificate without its key would be unusable.
	if err := atomicfile.Write(filepath.Join(dir, CAKeyFile), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return fmt.Errorf("write CA key: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(dir, CAFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("write CA: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("CA certificate: %w", err)
	}
	f.ca, f.caKey = ca, key
	f.log.Info("https front CA created", "ca", filepath.Join(dir, CAFile))
	return nil
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return n
}

// frontHost reports whether host is exoscale.com or one of its subdomains.
func frontHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	return host == frontDomain || strings.HasSuffix(host, "."+frontDomain)
}

// certificate returns the leaf certificate for the TLS client hello's
// server name, issuing it on first use.
func (f *HTTPSFront) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.TrimSuffix(strings.ToLower(hello.ServerName), ".")
	if !frontHost(name) {
		return nil, fmt.Errorf("https front: no certificate for %q: only *.%s", hello.ServerName, frontDomain)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.certs[name]; c != nil {
		return c, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("https front: leaf key: %w", err)
	}
	now := time.Now()
	notAfter := now.AddDate(1, 0, 0)
	if notAfter.After(f.ca.NotAfter) {
		notAfter = f.ca.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, f.ca, &key.PublicKey, f.caKey)
	if err != nil {
		return nil, fmt.Errorf("https front: leaf certificate: %w", err)
	}
	c := &tls.Certificate{Certificate: [][]byte{der, f.ca.Raw}, PrivateKey: key}
	f.certs[name] = c
	return c, nil
}

// Serve accepts proxy connections on ln until ctx is cancelled, then closes
// ln, stops accepting tunnels, waits up to 3 s for requests in flight and
// returns nil. It returns an error only if serving fails otherwise.
func (f *HTTPSFront) Serve(ctx context.Context, ln net.Listener) error {
	tunnels := newTunnelListener(ln.Addr())
	inner := &http.Server{Handler: f.handler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(f.log.Handler(), slog.LevelDebug)}
	outer := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.connect(w, r, tunnels) }),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(f.log.Handler(), slog.LevelDebug),
	}
	innerErr := make(chan error, 1)
	go func() { innerErr <- inner.Serve(tunnels) }()
	outerErr := make(chan error, 1)
	go func() { outerErr <- outer.Serve(ln) }()

	var err error
	select {
	case <-ctx.Done():
	case err = <-outerErr:
		outerErr <- err
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	tunnels.Close()
	for _, s := range []*http.Server{outer, inner} {
		if serr := s.Shutdown(sctx); serr != nil {
			s.Close()
		}
	}
	<-innerErr
	if oerr := <-outerErr; err == nil && !errors.Is(oerr, http.ErrServerClosed) {
		err = oerr
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("https front: %w", err)
	}
	return nil
}

// connect serves one proxy request: only CONNECT to *.exoscale.com:443.
func (f *HTTPSFront) connect(w http.ResponseWriter, r *http.Request, tunnels *tunnelListener) {
	if r.Method != http.MethodConnect {
		http.Error(w, "tidepool https front: only CONNECT to *."+frontDomain+":443 is served", http.StatusMethodNotAllowed)
		return
	}
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil || port != "443" || !frontHost(host) {
		f.log.Info("https front: CONNECT refused", "target", r.Host)
		http.Error(w, "tidepool https front: only CONNECT to *."+frontDomain+":443 is served", http.StatusForbidden)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "tidepool https front: cannot take over the connection", http.StatusInternalServerError)
		return
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		f.log.Warn("https front: hijack failed", "err", err)
		return
	}
	_, err = rw.WriteString("HTTP/1.1 200 Connection established\r\n\r\n")
	if err == nil {
		err = rw.Flush()
	}
	if err != nil {
		conn.Close()
		return
	}
	tlsConn := tls.Server(&bufferedConn{Conn: conn, r: rw.Reader}, &tls.Config{
		GetCertificate: f.certificate,
		NextProtos:     []string{"http/1.1"},
		MinVersion:     tls.VersionTLS12,
	})
	f.log.Debug("https front: tunnel open", "target", r.Host, "client", r.RemoteAddr)
	if !tunnels.push(tlsConn) {
		tlsConn.Close()
	}
}

// bufferedConn reads what the hijacked connection's reader already buffered
// (a TLS client hello sent right after CONNECT) before the connection.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// tunnelListener hands the tunnels' TLS connections to the inner server.
type tunnelListener struct {
	addr   net.Addr
	conns  chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newTunnelListener(addr net.Addr) *tunnelListener {
	return &tunnelListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

// push hands c to Accept; false once the listener is closed.
func (l *tunnelListener) push(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *tunnelListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *tunnelListener) Close() error {
	l.closed.Do(func() { close(l.done) })
	return nil
}

func (l *tunnelListener) Addr() net.Addr { return l.addr }
