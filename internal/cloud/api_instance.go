// Instance updates (labels) and the members' drain credentials.

package cloud

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
)

// DrainTokenLabel is the instance label under which the API shows a pool
// member's drain token: the credential its `tidepool app` requires on POST
// /drain. The cloud generates one per member process and passes it to that
// process only (DrainTokenEnv); anyone who can read the instance through the
// signed API (the autoscaler) can read it, the other members cannot. The
// label is reserved: PUT /instance/{id} cannot set or remove it.
const DrainTokenLabel = "tidepool-drain-token"

// DrainTokenEnv is the member process's environment variable carrying its
// drain token (the app's --drain-token).
const DrainTokenEnv = "TIDEPOOL_APP_DRAIN_TOKEN"

// maxLabels bounds the labels of one instance; label keys and values are
// bounded by maxLabelLen.
const (
	maxLabels   = 64
	maxLabelLen = 255
)

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

// updateInstanceRequest is the body of update-instance. Labels replace the
// instance's labels when present and not null ({} removes them all).
type updateInstanceRequest struct {
	Name                                 *string            `json:"name"`
	Labels                               *map[string]string `json:"labels"`
	UserData                             *string            `json:"user-data"`
	PublicIPAssignment                   *string            `json:"public-ip-assignment"`
	ApplicationConsistentSnapshotEnabled *bool              `json:"application-consistent-snapshot-enabled"`
}

// updateInstance is PUT /v2/instance/{id} (egoscale UpdateInstance): name
// and labels are applied (DrainTokenLabel excepted: it always shows the
// cloud's token); user-data, public-ip-assignment and
// application-consistent-snapshot-enabled are checked and have no effect.
func (c *Cloud) updateInstance(r *http.Request) (any, error) {
	id := r.PathValue("id")
	var req updateInstanceRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if req.Name != nil {
		if err := validName("name", *req.Name); err != nil {
			return nil, err
		}
	}
	if req.UserData != nil && (len(*req.UserData) < 1 || len(*req.UserData) > 32768) {
		return nil, errorf(http.StatusBadRequest, "invalid user-data: 1 to 32768 characters")
	}
	if req.PublicIPAssignment != nil && *req.PublicIPAssignment != "inet4" && *req.PublicIPAssignment != "dual" && *req.PublicIPAssignment != "none" {
		return nil, errorf(http.StatusBadRequest, "invalid public-ip-assignment %q: want inet4, dual or none", *req.PublicIPAssignment)
	}
	var labels map[string]string
	if req.Labels != nil && *req.Labels != nil {
		labels = make(map[string]string, len(*req.Labels))
		for k, v := range *req.Labels {
			if k == "" || len(k) > maxLabelLen || len(v) > maxLabelLen {
				return nil, errorf(http.StatusBadRequest, "invalid label %q: keys of 1 to %d characters, values of at most %d", k, maxLabelLen, maxLabelLen)
			}
			if k != DrainTokenLabel {
				labels[k] = v
			}
		}
		if len(labels) > maxLabels {
			return nil, errorf(http.StatusBadRequest, "too many labels: %d, at most %d", len(labels), maxLabels)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	inst := c.instances[id]
	if inst == nil {
		return nil, notFound("instance", id)
	}
	if req.Name != nil {
		inst.rec.Name = *req.Name
	}
	if labels != nil {
		if len(labels) == 0 {
			labels = nil
		}
		inst.rec.Labels = labels
	}
	c.saveLocked()
	c.log.Info("instance updated", "instance", id, "labels", len(labels))
	return c.addOpLocked(&operation{kind: opDone, command: "update-instance", refID: id, link: "/v2/instance/" + id}).api(), nil
}
