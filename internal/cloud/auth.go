package cloud

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// authScheme is the Authorization scheme of Exoscale API v2 request signing.
const authScheme = "EXO2-HMAC-SHA256"

// signedRequest is what a request signature covers.
type signedRequest struct {
	Method      string
	EscapedPath string // e.g. "/v2/instance-pool/ID:scale", as URL.EscapedPath returns it
	Query       url.Values
	Body        []byte
}

// authHeader is a parsed "EXO2-HMAC-SHA256 credential=K[,signed-query-args=a;b],expires=T,signature=S".
type authHeader struct {
	Key        string
	SignedArgs []string
	Expires    int64
	Signature  []byte
}

var errAuth = errors.New("authentication failed")

// parseAuthHeader parses an Authorization header value.
func parseAuthHeader(v string) (authHeader, error) {
	var h authHeader
	scheme, rest, ok := strings.Cut(v, " ")
	if !ok || scheme != authScheme {
		return h, fmt.Errorf("%w: Authorization header must use the %s scheme", errAuth, authScheme)
	}
	var haveExpires, haveSig bool
	for _, part := range strings.Split(rest, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return h, fmt.Errorf("%w: malformed Authorization parameter %q", errAuth, part)
		}
		switch k {
		case "credential":
			h.Key = val
		case "signed-query-args":
			if val != "" {
				h.SignedArgs = strings.Split(val, ";")
			}
		case "expires":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return h, fmt.Errorf("%w: malformed expires %q", errAuth, val)
			}
			h.Expires, haveExpires = n, true
		case "signature":
			sig, err := base64.StdEncoding.DecodeString(val)
			if err != nil {
				return h, fmt.Errorf("%w: malformed signature", errAuth)
			}
			h.Signature, haveSig = sig, true
		}
	}
	switch {
	case h.Key == "":
		return h, fmt.Errorf("%w: missing credential", errAuth)
	case !haveExpires:
		return h, fmt.Errorf("%w: missing expires", errAuth)
	case !haveSig:
		return h, fmt.Errorf("%w: missing signature", errAuth)
	}
	return h, nil
}

// signatureMessage builds the signed message exactly as egoscale v3's
// signRequest does: "METHOD PATH\nBODY\nVALUES\n\nEXPIRES", where VALUES
// concatenates the values of the signed query arguments in the listed order
// (each must hold exactly one value) and the empty line stands for signed
// headers (none).
func signatureMessage(r signedRequest, signedArgs []string, expires int64) (string, error) {
	var values strings.Builder
	for _, name := range signedArgs {
		vs := r.Query[name]
		if len(vs) != 1 {
			return "", fmt.Errorf("%w: signed query argument %q must have exactly one value", errAuth, name)
		}
		values.WriteString(vs[0])
	}
	return strings.Join([]string{
		r.Method + " " + r.EscapedPath,
		string(r.Body),
		values.String(),
		"",
		strconv.FormatInt(expires, 10),
	}, "\n"), nil
}

// sign returns the HMAC-SHA256 of msg with secret.
func sign(secret, msg string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// MaxExpiresAhead bounds how far in the future a request's expires may
// lie. Exoscale's own clients sign with expires = now + 10 minutes (egoscale
// v3 signRequest, egoscale v2 SecurityProviderExoscale.ReqExpire,
// python-exoscale ExoscaleV2Auth); 5 more minutes allow for clock skew. A
// longer-lived signature would be a replayable credential.
const MaxExpiresAhead = 15 * time.Minute

// checkHeader makes every check of a request that needs no body: the
// Authorization header parses, names a known key, its expires lies between
// now and now+MaxExpiresAhead, and every query argument is signed (one
// missing from signed-query-args would be applied without being
// authenticated: refused). It returns the parsed header and the key's
// secret, or an error wrapping errAuth with a message fit for the client.
func checkHeader(header string, query url.Values, secrets map[string]string, now time.Time) (authHeader, string, error) {
	if header == "" {
		return authHeader{}, "", fmt.Errorf("%w: missing Authorization header", errAuth)
	}
	h, err := parseAuthHeader(header)
	if err != nil {
		return h, "", err
	}
	secret, ok := secrets[h.Key]
	if !ok {
		return h, "", fmt.Errorf("%w: unknown API key %q", errAuth, h.Key)
	}
	if now.Unix() > h.Expires {
		return h, "", fmt.Errorf("%w: request expired at %s", errAuth, time.Unix(h.Expires, 0).UTC().Format(time.RFC3339))
	}
	if limit := now.Add(MaxExpiresAhead).Unix(); h.Expires > limit {
		return h, "", fmt.Errorf("%w: expires %s is more than %v ahead", errAuth,
			time.Unix(h.Expires, 0).UTC().Format(time.RFC3339), MaxExpiresAhead)
	}
	var unsigned []string
	for name := range query {
		if !slices.Contains(h.SignedArgs, name) {
			unsigned = append(unsigned, name)
		}
	}
	if len(unsigned) > 0 {
		slices.Sort(unsigned)
		return h, "", fmt.Errorf("%w: query arguments not covered by the signature: %s (sign them, listed in signed-query-args)",
			errAuth, strings.Join(unsigned, ", "))
	}
	return h, secret, nil
}

// checkSignature verifies h's signature of r with secret.
func checkSignature(r signedRequest, h authHeader, secret string) error {
	msg, err := signatureMessage(r, h.SignedArgs, h.Expires)
	if err != nil {
		return err
	}
	if !hmac.Equal(sign(secret, msg), h.Signature) {
		return fmt.Errorf("%w: signature mismatch", errAuth)
	}
	return nil
}

// verifyRequest checks the Authorization header of r against secrets (API
// key -> secret) at time now: checkHeader, then checkSignature. It returns
// the API key on success and an error wrapping errAuth, with a message fit
// for the client, otherwise.
func verifyRequest(r signedRequest, header string, secrets map[string]string, now time.Time) (string, error) {
	h, secret, err := checkHeader(header, r.Query, secrets, now)
	if err != nil {
		return "", err
	}
	if err := checkSignature(r, h, secret); err != nil {
		return "", err
	}
	return h.Key, nil
}
