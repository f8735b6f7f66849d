package cloud

import "strings"

// credentialEnv names the environment variables that carry API credentials:
// the cloud's own and the Exoscale clients'. Members never get them.
var credentialEnv = []string{
	"TIDEPOOL_CLOUD_KEY", "TIDEPOOL_CLOUD_SECRET",
	"EXOSCALE_KEY", "EXOSCALE_SECRET", "EXOSCALE_API_KEY", "EXOSCALE_API_SECRET",
}

// minSecretMatch is the shortest credential searched for inside other
// values; a shorter one (a test's "k") drops only variables equal to it.
const minSecretMatch = 8

// memberEnviron returns env (KEY=value entries) without the entries a pool
// member must not see: every variable of credentialEnv, and every variable
// whose value holds one of creds (the cloud's API key and secret), whatever
// its name (TF_VAR_exoscale_secret, a wrapper's copy...). Members are the
// tenant's machines: on real Exoscale they never see the API secret that
// manages them, so neither do they here (/proc/PID/environ is readable by
// the member's own user). It returns a new slice, never nil, and reports the
// names it dropped.
func memberEnviron(env []string, creds ...string) (out []string, dropped []string) {
	out = make([]string, 0, len(env))
next:
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		for _, n := range credentialEnv {
			if name == n {
				dropped = append(dropped, name)
				continue next
			}
		}
		for _, c := range creds {
			if c == "" {
				continue
			}
			if value == c || len(c) >= minSecretMatch && strings.Contains(value, c) {
				dropped = append(dropped, name)
				continue next
			}
		}
		out = append(out, kv)
	}
	return out, dropped
}
