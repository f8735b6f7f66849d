package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRunConnectionReuse: with keep-alive each worker keeps its connection,
// so a steady low rate needs very few connections; with DisableKeepAlive
// every request has its own connection, announced with "Connection: close".
func TestRunConnectionReuse(t *testing.T) {
	tests := []struct {
		name         string
		disable      bool
		wantConns    func(sent int) bool
		wantConnHdr  string
		describeWant string
	}{
		{"keepalive", false, func(sent int) bool { return sent >= 20 }, "", "few connections"},
		{"new connection per request", true, func(sent int) bool { return true }, "close", "one per request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var conns atomic.Int64
			var mu sync.Mutex
			var connHdrs []string
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				connHdrs = append(connHdrs, r.Header.Get("Connection"))
				mu.Unlock()
				okHandler(w, r)
			}))
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			srv.Start()
			t.Cleanup(srv.Close)
			cfg := Config{Target: srv.URL, Stages: stages(t, "hold:40:1s"), DisableKeepAlive: tt.disable}
			sum, tl, err := Run(context.Background(), cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, sum, tl)
			if sum.OK != 40 {
				t.Fatalf("ok %d of 40 (errors %v)", sum.OK, sum.Errors)
			}
			n := int(conns.Load())
			if tt.disable && n != sum.Sent {
				t.Errorf("%d connections for %d requests; want %s", n, sum.Sent, tt.describeWant)
			}
			if !tt.disable && (n < 1 || n > sum.Workers) {
				t.Errorf("%d connections, %d workers at most; want between 1 and the worker count (%s)", n, sum.Workers, tt.describeWant)
			}
			mu.Lock()
			defer mu.Unlock()
			for i, h := range connHdrs {
				if h != tt.wantConnHdr {
					t.Fatalf("request %d: Connection header %q; want %q", i, h, tt.wantConnHdr)
				}
			}
		})
	}
}

// TestRunRequestBytes checks the request as a server reads it off the wire:
// method, path and query, Host, and no compression request.
func TestRunRequestBytes(t *testing.T) {
	got := make(chan *http.Request, 1)
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- r:
		default:
		}
		okHandler(w, r)
	})
	cfg := Config{Target: srv.URL + "/work?x=1", Method: http.MethodPost, Stages: stages(t, "hold:2:1s")}
	if _, _, err := Run(context.Background(), cfg, nil); err != nil {
		t.Fatal(err)
	}
	r := <-got
	host := strings.TrimPrefix(srv.URL, "http://")
	if r.Method != http.MethodPost || r.URL.RequestURI() != "/work?x=1" || r.Host != host ||
		r.Header.Get("Accept-Encoding") != "" || r.ContentLength != 0 {
		t.Errorf("server saw %s %s Host %q Accept-Encoding %q Content-Length %d; want POST /work?x=1 Host %q, no Accept-Encoding, length 0",
			r.Method, r.URL.RequestURI(), r.Host, r.Header.Get("Accept-Encoding"), r.ContentLength, host)
	}
}

// rawServer serves each connection on ln with handle until the test ends.
func rawServer(t *testing.T, handle func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				handle(c, bufio.NewReader(c))
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return "http://" + ln.Addr().String() + "/"
}

// TestRunStaleKeptAliveConnection: a server that closes every connection
// after one answer without saying so (no "Connection: close") leaves each
// worker with a dead connection; the next request on it must be sent again
// on a fresh one, not counted as an error.
func TestRunStaleKeptAliveConnection(t *testing.T) {
	var served atomic.Int64
	url := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		served.Add(1)
		_, _ = io.Copy(io.Discard, req.Body)
		fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		// Close without reading further: the client's next request on
		// this connection meets EOF or a reset.
	})
	cfg := Config{Target: url, Stages: stages(t, "hold:20:1s"), MaxWorkers: 1}
	sum, tl, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, sum, tl)
	if sum.OK != 20 || served.Load() != 20 {
		t.Errorf("ok %d, server answered %d, errors %v; want 20 and 20, no errors", sum.OK, served.Load(), sum.Errors)
	}
}

// TestRunSkipsInformationalAnswers: 1xx answers before the final one are
// skipped, as net/http does; the connection stays usable.
func TestRunSkipsInformationalAnswers(t *testing.T) {
	url := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			fmt.Fprint(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"+
				"HTTP/1.1 100 Continue\r\n\r\n"+
				"HTTP/1.1 204 No Content\r\n\r\n")
		}
	})
	cfg := Config{Target: url, Stages: stages(t, "hold:10:1s"), MaxWorkers: 1}
	sum, tl, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, sum, tl)
	if sum.OK != 10 || sum.Answered != 10 {
		t.Errorf("ok %d answered %d errors %v; want 10 and 10", sum.OK, sum.Answered, sum.Errors)
	}
}

// TestRunMalformedAnswer: garbage instead of HTTP is an answerless "other"
// error, and the next request gets a fresh connection.
func TestRunMalformedAnswer(t *testing.T) {
	url := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		fmt.Fprint(c, "SSH-2.0-OpenSSH_9.2\r\n")
	})
	cfg := Config{Target: url, Stages: stages(t, "hold:10:1s"), Timeout: 5 * time.Second}
	sum, tl, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, sum, tl)
	if sum.Errors[ErrOther] != 10 || sum.Answered != 0 {
		t.Errorf("errors %v answered %d; want 10 %s and none answered", sum.Errors, sum.Answered, ErrOther)
	}
}

// TestSleepUntil: the precise wait ends at the target time, not before.
func TestSleepUntil(t *testing.T) {
	start := time.Now()
	for _, off := range []time.Duration{-time.Millisecond, 0, 300 * time.Microsecond, 2 * time.Millisecond} {
		sleepUntil(start, off)
		if got := time.Since(start); got < off {
			t.Errorf("sleepUntil(start, %s) returned at %s; want >= %s", off, got, off)
		}
	}
}
