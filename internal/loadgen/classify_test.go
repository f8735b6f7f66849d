package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"
)

func TestClassify(t *testing.T) {
	urlErr := func(err error) error { return &url.Error{Op: "Get", URL: "http://x/", Err: err} }
	opErr := func(op string, errno syscall.Errno) error {
		return urlErr(&net.OpError{Op: op, Net: "tcp", Err: os.NewSyscallError(op, errno)})
	}
	tests := []struct {
		name    string
		status  int
		err     error
		aborted bool
		want    errKind
	}{
		{"200", 200, nil, false, kindOK},
		{"204", 204, nil, false, kindOK},
		{"301 not followed", 301, nil, false, kindOther},
		{"101", 101, nil, false, kindOther},
		{"404", 404, nil, false, kind4xx},
		{"429", 429, nil, false, kind4xx},
		{"500", 500, nil, false, kind5xx},
		{"503", 503, nil, false, kind5xx},
		{"200 while cancelling is still ok", 200, nil, true, kindOK},
		{"deadline", 0, urlErr(context.DeadlineExceeded), false, kindTimeout},
		{"body read deadline", 200, fmt.Errorf("read: %w", context.DeadlineExceeded), false, kindTimeout},
		{"net timeout", 0, urlErr(&net.OpError{Op: "dial", Err: timeoutErr{}}), false, kindTimeout},
		{"refused", 0, opErr("connect", syscall.ECONNREFUSED), false, kindConnRefused},
		{"reset", 0, opErr("read", syscall.ECONNRESET), false, kindConnReset},
		{"broken pipe", 0, opErr("write", syscall.EPIPE), false, kindConnReset},
		{"eof", 0, urlErr(io.EOF), false, kindConnReset},
		{"unexpected eof in body", 200, io.ErrUnexpectedEOF, false, kindConnReset},
		{"cancelled run", 0, urlErr(context.Canceled), true, kindCanceled},
		{"refused while cancelling", 0, opErr("connect", syscall.ECONNREFUSED), true, kindCanceled},
		{"dns", 0, urlErr(&net.DNSError{Err: "no such host", Name: "x"}), false, kindOther},
		{"plain", 0, errors.New("boom"), false, kindOther},
	}
	for _, tt := range tests {
		if got := classify(tt.status, tt.err, tt.aborted); got != tt.want {
			t.Errorf("%s: classify(%d, %v, %v) = %d; want %d", tt.name, tt.status, tt.err, tt.aborted, got, tt.want)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }
