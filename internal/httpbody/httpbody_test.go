package httpbody

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve starts a server answering each request with the status of
// Reader.Read and the length of the body it returned; use, if not nil, sees
// the body first (while its slot is held).
func serve(t *testing.T, b *Reader, use func(r *http.Request, body []byte)) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, release, err := b.Read(w, r)
		defer release()
		if err != nil {
			http.Error(w, err.Error(), Status(err))
			return
		}
		if use != nil {
			use(r, body)
		}
		fmt.Fprintf(w, "%d", len(body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// rawRequest writes head (request line and headers, then a blank line) and
// body on a new connection and returns the response's status and whether
// it said Connection: close.
func rawRequest(t *testing.T, addr, head, body string) (status int, closing bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, head+"\r\n"+body); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Close
}

func TestRead(t *testing.T) {
	srv := serve(t, New(Limits{Max: 100}), nil)
	addr := srv.Listener.Addr().String()
	tests := []struct {
		name       string
		head, body string
		wantStatus int
		wantClose  bool
	}{
		{"empty", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n", "", 200, false},
		{"at the limit", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n", strings.Repeat("a", 100), 200, false},
		// Only the headers are sent: a server that read the body would
		// wait for it instead of answering.
		{"declared too large, refused unread", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n", "", 413, true},
		{"chunked within the limit", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n", "a\r\n0123456789\r\n0\r\n\r\n", 200, false},
		{"chunked too large", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n",
			"65\r\n" + strings.Repeat("b", 101) + "\r\n0\r\n\r\n", 413, true},
		{"truncated body", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n", "zz\r\n", 400, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, closing := rawRequest(t, addr, tt.head, tt.body)
			if status != tt.wantStatus || closing != tt.wantClose {
				t.Errorf("status %d, Connection: close %v; want %d, %v", status, closing, tt.wantStatus, tt.wantClose)
			}
		})
	}
}

// TestReadSlots checks that at most Concurrent bodies are read at once: with
// one slot held by a client that has not sent its body, the next body waits
// and is refused (503) after Wait; once the first body arrives, reads go on.
func TestReadSlots(t *testing.T) {
	srv := serve(t, New(Limits{Max: 100, Concurrent: 1, Wait: 100 * time.Millisecond}), nil)
	addr := srv.Listener.Addr().String()

	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	io.WriteString(slow, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab")
	// Wait until the slow request holds the slot: a second request is
	// refused as busy.
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, _ := rawRequest(t, addr, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n", "x")
		if status == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("second body never refused as busy (last status %d)", status)
		}
	}
	io.WriteString(slow, "cde")
	resp, err := http.ReadResponse(bufio.NewReader(slow), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("slow request: %v, %v; want 200", resp, err)
	}
	resp.Body.Close()
	if status, _ := rawRequest(t, addr, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n", "x"); status != 200 {
		t.Errorf("after the slot was freed: status %d, want 200", status)
	}
}

// TestReadTimeout checks that a client trickling its body loses its slot
// after ReadTimeout.
func TestReadTimeout(t *testing.T) {
	srv := serve(t, New(Limits{Max: 100, ReadTimeout: 100 * time.Millisecond}), nil)
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\nslow")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		// The server may close without an answer once the read failed.
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return
		}
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status %d, want 400 after the read deadline", resp.StatusCode)
	}
}

func TestStatus(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("x: %w", ErrTooLarge), 413},
		{fmt.Errorf("x: %w", ErrBusy), 503},
		{io.ErrUnexpectedEOF, 400},
	} {
		if got := Status(tt.err); got != tt.want {
			t.Errorf("Status(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

// TestReadHoldsSlotUntilRelease checks that a body handed out keeps its
// slot, and its buffer, until it is released: the next body waits (and is
// refused when the wait is over), and the held body is not overwritten.
func TestReadHoldsSlotUntilRelease(t *testing.T) {
	hold := make(chan struct{})
	held := make(chan string, 2)
	srv := serve(t, New(Limits{Max: 100, Concurrent: 1, Wait: 50 * time.Millisecond}), func(r *http.Request, body []byte) {
		if r.URL.Path == "/hold" {
			held <- string(body)
			<-hold
			held <- string(body)
		}
	})
	post := func(path, body string) int {
		resp, err := http.Post(srv.URL+path, "text/plain", strings.NewReader(body))
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	first := make(chan int, 1)
	go func() { first <- post("/hold", "first") }()
	if got := <-held; got != "first" {
		t.Fatalf("held body %q, want first", got)
	}
	if code := post("/", "second"); code != http.StatusServiceUnavailable {
		t.Errorf("second body while the first is held: %d, want 503", code)
	}
	close(hold)
	if got := <-held; got != "first" {
		t.Errorf("held body after the wait: %q, want first (not overwritten)", got)
	}
	if code := <-first; code != 200 {
		t.Errorf("first request: %d, want 200", code)
	}
	if code := post("/", "third"); code != 200 {
		t.Errorf("after release: %d, want 200", code)
	}
}
