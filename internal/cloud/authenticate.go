package cloud

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"tidepool/internal/httpbody"
)

// Request bodies are read only after every check that needs no body has
// passed, and within a fixed budget: at most bodyConcurrent bodies of at
// most MaxBody bytes each are held at once, from their read to the end of
// their handler (see internal/httpbody).
const (
	// MaxBody is the largest request body accepted (413 beyond). The
	// largest bounded field of the Exoscale API v2 is an instance's
	// user-data (32 KiB); every request of the API subset served here is
	// far smaller.
	MaxBody        = 128 << 10
	bodyConcurrent = 16
)

// MaxHeaderBytes bounds a request's header block (the request line
// included), which the server reads before any check; the servers of
// `tidepool cloud` set it as http.Server.MaxHeaderBytes. egoscale sends a
// few hundred bytes.
const MaxHeaderBytes = 16 << 10

// rejectLogEvery bounds how often rejected requests are logged: a flood of
// bad requests gives one line per interval, with the count held back.
const rejectLogEvery = time.Second

// apiKeyCtx is the context key under which authenticate stores the API key
// a request was signed with.
type apiKeyCtx struct{}

// requestAPIKey returns the API key that signed r's request, "" if it was
// not authenticated (GET /v2/zone). Authorization (IAM policies) starts
// from it.
func requestAPIKey(ctx context.Context) string {
	k, _ := ctx.Value(apiKeyCtx{}).(string)
	return k
}

// authenticate serves next only for requests signed with a known key
// (EXO2-HMAC-SHA256, see verify); others get a 403 (413 for a body over
// MaxBody, 503 when bodyConcurrent bodies are held) and next never runs.
// next finds the API key with requestAPIKey and reads the verified body
// from r.Body; the body stays in the bounded reader's buffer, which next
// holds until it returns.
func (c *Cloud) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, release, err := c.verify(w, r)
		defer release()
		if err != nil {
			if ok, suppressed := c.rejectLog.Allow(time.Now()); ok {
				c.log.Info("request rejected", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr,
					"err", err, "suppressed", suppressed)
			}
			if w.Header().Get("Connection") == "close" {
				refuseAndClose(w, err)
				return
			}
			writeError(w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), apiKeyCtx{}, key)))
	})
}

// verify authenticates r in the order that keeps a flood cheap: first
// everything that needs no body (header, key, expiry window, every query
// argument signed: checkHeader), and only then, through the bounded body
// reader, the body the signature covers. A request refused with a body
// (forged, or refused before its body was read) is answered with
// Connection: close, so the server does not read the body or wait for the
// next request. On success r.Body reads the verified body. release (never
// nil) frees the body's buffer; call it once the request is served.
func (c *Cloud) verify(w http.ResponseWriter, r *http.Request) (key string, release func(), err error) {
	release = func() {}
	h, secret, err := checkHeader(r.Header.Get("Authorization"), r.URL.Query(), c.credentials(), c.now())
	if err != nil {
		if r.ContentLength != 0 {
			w.Header().Set("Connection", "close")
		}
		return "", release, errorf(http.StatusForbidden, "%v", err)
	}
	body, release, err := c.bodies.Read(w, r)
	if err != nil {
		return "", release, errorf(httpbody.Status(err), "request body: %v", err)
	}
	sr := signedRequest{Method: r.Method, EscapedPath: r.URL.EscapedPath(), Query: r.URL.Query(), Body: body}
	if err := checkSignature(sr, h, secret); err != nil {
		if len(body) > 0 {
			w.Header().Set("Connection", "close")
		}
		return "", release, errorf(http.StatusForbidden, "%v", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return h.Key, release, nil
}

// closeLinger is how long a refused connection stays open for reading after
// the answer was sent and its writing side shut down (net/http waits as
// long, its rstAvoidanceDelay): closing at once with unread body bytes
// would reset the connection and could destroy the answer before the client
// read it.
const closeLinger = 500 * time.Millisecond

// refuseAndClose answers err on a connection whose request body was not
// (fully) read and closes the connection, without reading the rest of the
// body. It takes the connection over from net/http (Hijack) and leaves it to
// a timer: net/http would instead hold the connection's goroutine and
// buffers for the linger (about 20 KB), and a flood of refused requests
// would then cost that much per request arriving within the linger. Where
// the connection cannot be taken over (HTTP/2, a test recorder) the answer
// is written the ordinary way, with Connection: close.
func refuseAndClose(w http.ResponseWriter, err error) {
	conn, rw, herr := http.NewResponseController(w).Hijack()
	if herr != nil {
		writeError(w, err)
		return
	}
	status := http.StatusInternalServerError
	var he *httpError
	if errors.As(err, &he) {
		status = he.status
	}
	msg, _ := json.Marshal(apiError{Message: err.Error()})
	msg = append(msg, '\n')
	resp := &http.Response{
		StatusCode: status, ProtoMajor: 1, ProtoMinor: 1, Close: true,
		Header:        http.Header{"Content-Type": {"application/json"}},
		ContentLength: int64(len(msg)), Body: io.NopCloser(bytes.NewReader(msg)),
	}
	conn.SetWriteDeadline(time.Now().Add(closeLinger))
	if resp.Write(rw) == nil && rw.Flush() == nil {
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		time.AfterFunc(closeLinger, func() { conn.Close() })
		return
	}
	conn.Close()
}
