// Package floodtest sends abusive traffic for tests, on loopback: floods of
// raw HTTP requests with large bodies, and reads a process's memory figures
// from /proc (the kernel's own accounting: a peak is a peak, not a sample).
// Tests of several packages use it to check that a server stays within its
// memory budget under abuse.
package floodtest

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Request sends one raw request on a new connection to addr: head (request
// line and headers; it ends with the blank line, or with a chunk-size line
// when the body is sent as one chunk, which is then terminated), then body,
// written while the answer is awaited. It returns the response status
// ("403"), or "conn: closed or reset" when the connection ended before an
// answer, or "dial failed". It gives up after a minute.
func Request(addr, head string, body []byte) string {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return "dial failed"
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute))
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		if _, err := conn.Write([]byte(head)); err != nil {
			return
		}
		if _, err := conn.Write(body); err != nil {
			return
		}
		if !strings.HasSuffix(head, "\r\n\r\n") { // a chunk was opened
			conn.Write([]byte("\r\n0\r\n\r\n"))
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	conn.Close() // ends the writer if the server stopped reading
	<-wrote
	if err != nil {
		return "conn: closed or reset"
	}
	resp.Body.Close()
	return strconv.Itoa(resp.StatusCode)
}

// Req is one kind of request of a flood: Head and Body as Request sends
// them.
type Req struct {
	Head string
	Body []byte
}

// Flood sends n requests to addr, workers at a time, request i being
// reqs[i%len(reqs)], and returns how many ended with each outcome of
// Request. It blocks until all have ended.
func Flood(addr string, n, workers int, reqs []Req) map[string]int {
	var next atomic.Int64
	var mu sync.Mutex
	outcomes := map[string]int{}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				r := reqs[i%len(reqs)]
				o := Request(addr, r.Head, r.Body)
				mu.Lock()
				outcomes[o]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return outcomes
}

// Accepted returns how many outcomes were 2xx answers.
func Accepted(outcomes map[string]int) int {
	n := 0
	for o, k := range outcomes {
		if len(o) == 3 && o[0] == '2' {
			n += k
		}
	}
	return n
}

// StatusKB returns a memory field of /proc/PID/status in kB: "VmHWM" (peak
// resident set), "VmRSS" (current), ...
func StatusKB(pid int, field string) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("floodtest: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				return 0, fmt.Errorf("floodtest: /proc/%d/status %s: %w", pid, field, err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("floodtest: /proc/%d/status has no %s", pid, field)
}
