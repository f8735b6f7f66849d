// Instance labels and the members' drain credentials.

package cloud

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
)

// DrainTokenLabel is the instance label under which the API shows a pool
// member's drain token: the credential its `tidepool app` requires on POST
// /drain. The cloud generates one per member process and passes it to that
// process only (DrainTokenEnv); anyone who can read the instance through the
// signed API (the autoscaler) can read it, the other members cannot. The
// label is reserved: PUT /instance/{id} and POST /instance cannot set or
// remove it on any instance.
const DrainTokenLabel = "tidepool-drain-token"

// DrainTokenEnv is the member process's environment variable carrying its
// drain token (the app's --drain-token).
const DrainTokenEnv = "TIDEPOOL_APP_DRAIN_TOKEN"

// maxInstanceLabels bounds the labels of one instance set through
// PUT /instance/{id} (keys and values are bounded by validLabels).
const maxInstanceLabels = 64

// drainTokenLocked returns inst's drain token, generating it on first use.
// It is created before the member's process starts (memberSpecLocked) and
// lives as long as the instance record in memory.
func (c *Cloud) drainTokenLocked(inst *instance) string {
	if inst.drainToken == "" {
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on Linux
		}
		inst.drainToken = hex.EncodeToString(b)
	}
	return inst.drainToken
}

// instanceLabelsLocked returns the labels the API shows for inst: its own,
// plus DrainTokenLabel for a pool member.
func (c *Cloud) instanceLabelsLocked(inst *instance) map[string]string {
	if inst.rec.PoolID == "" {
		return inst.rec.Labels
	}
	out := maps.Clone(inst.rec.Labels)
	if out == nil {
		out = map[string]string{}
	}
	out[DrainTokenLabel] = c.drainTokenLocked(inst)
	return out
}

// withoutReserved returns labels without DrainTokenLabel (labels itself
// when it has none; nil stays nil, so "no change" is kept apart from {}).
func withoutReserved(labels map[string]string) map[string]string {
	if _, ok := labels[DrainTokenLabel]; !ok {
		return labels
	}
	out := maps.Clone(labels)
	delete(out, DrainTokenLabel)
	return out
}
