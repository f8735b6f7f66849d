package cloud

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"tidepool/internal/atomicfile"
)

// stateVersion is the version of the state file format.
const stateVersion = 1

// stateDoc is the persisted state: what the API created, not what runs.
// Operations are not persisted.
type stateDoc struct {
	Version       int              `json:"version"`
	Pools         []poolRecord     `json:"instance-pools"`
	Instances     []instanceRecord `json:"instances"`
	LoadBalancers []lbRecord       `json:"load-balancers"`
	// Resources are the records-only resources (resources.go).
	Resources *resourcesDoc `json:"resources,omitempty"`
}

type poolRecord struct {
	ID             string            `json:"id"`
	Zone           string            `json:"zone"` // "" in older files: Config.Zone
	Name           string            `json:"name"`
	Description    string            `json:"description,omitempty"`
	Size           int               `json:"size"`
	InstanceTypeID string            `json:"instance-type"`
	TemplateID     string            `json:"template"`
	InstancePrefix string            `json:"instance-prefix"`
	DiskSize       int64             `json:"disk-size"`
	MinAvailable   int64             `json:"min-available,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
	CreatedAt      time.Time         `json:"created-at"`
	NextIndex      int               `json:"next-index"`
	EverRunning    bool              `json:"ever-running"`
}

type instanceRecord struct {
	ID             string     `json:"id"`
	Zone           string     `json:"zone"` // its pool's; "" in older files: Config.Zone
	Name           string     `json:"name"`
	PoolID         string     `json:"pool"`
	Index          int        `json:"index"`
	IP             netip.Addr `json:"ip"`
	InstanceTypeID string     `json:"instance-type"`
	TemplateID     string     `json:"template"`
	DiskSize       int64      `json:"disk-size"`
	CreatedAt      time.Time  `json:"created-at"`
	// Labels are the instance's labels (the pool's at creation, then
	// PUT /instance/{id}); DrainTokenLabel is not among them.
	Labels map[string]string `json:"labels,omitempty"`
	// PID is the member process while one runs; a later run kills it if it
	// survived (after checking /proc/PID/cmdline still names this member).
	PID int `json:"pid,omitempty"`
}

type serviceRecord struct {
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	Description string         `json:"description,omitempty"`
	Protocol    string         `json:"protocol"`
	Strategy    string         `json:"strategy"`
	Port        int64          `json:"port"`
	TargetPort  int64          `json:"target-port"`
	PoolID      string         `json:"instance-pool"`
	Healthcheck apiHealthcheck `json:"healthcheck"`
}

type lbRecord struct {
	ID          string            `json:"id"`
	Zone        string            `json:"zone"` // "" in older files: Config.Zone
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	IP          netip.Addr        `json:"ip"`
	Labels      map[string]string `json:"labels,omitempty"`
	CreatedAt   time.Time         `json:"created-at"`
	Services    []serviceRecord   `json:"services"`
}

func (c *Cloud) statePath() string { return filepath.Join(c.cfg.StateDir, StateFile) }

// snapshotLocked returns the state document, sorted for stable output.
func (c *Cloud) snapshotLocked() stateDoc {
	doc := stateDoc{Version: stateVersion, Pools: []poolRecord{}, Instances: []instanceRecord{}, LoadBalancers: []lbRecord{}}
	for _, p := range c.pools {
		if !p.deleting {
			doc.Pools = append(doc.Pools, p.rec)
		}
	}
	for _, inst := range c.instances {
		// Leaving members are not restored, but their PID is kept until the
		// process is gone so that a crash of the cloud cannot leak it.
		rec := inst.rec
		if inst.leave != stay {
			rec.PoolID = ""
		}
		doc.Instances = append(doc.Instances, rec)
	}
	for _, lb := range c.nlbs {
		if lb.deleting {
			continue
		}
		rec := lb.rec
		rec.Services = []serviceRecord{}
		for _, s := range lb.services {
			if !s.deleting {
				rec.Services = append(rec.Services, s.rec)
			}
		}
		doc.LoadBalancers = append(doc.LoadBalancers, rec)
	}
	doc.Resources = c.res.doc()
	sort.Slice(doc.Pools, func(i, j int) bool { return doc.Pools[i].ID < doc.Pools[j].ID })
	sort.Slice(doc.Instances, func(i, j int) bool { return doc.Instances[i].ID < doc.Instances[j].ID })
	sort.Slice(doc.LoadBalancers, func(i, j int) bool { return doc.LoadBalancers[i].ID < doc.LoadBalancers[j].ID })
	return doc
}

// saveLocked writes the state file if its content changed. Errors are
// logged: the in-memory state stays authoritative and the next pass retries.
func (c *Cloud) saveLocked() {
	if c.cfg.StateDir == "" {
		return
	}
	b, err := json.MarshalIndent(c.snapshotLocked(), "", "  ")
	if err != nil {
		c.log.Error("state encode failed", "err", err)
		return
	}
	b = append(b, '\n')
	if bytes.Equal(b, c.saved) {
		return
	}
	if err := os.MkdirAll(c.cfg.StateDir, 0o755); err != nil {
		c.log.Error("state save failed", "path", c.statePath(), "err", err)
		return
	}
	// 0600: the state holds the secrets of API keys.
	if err := atomicfile.Write(c.statePath(), b, 0o600); err != nil {
		c.log.Error("state save failed", "path", c.statePath(), "err", err)
		return
	}
	c.saved = b
}

// load restores the state file of cfg.StateDir, if any. Members come back
// "stopped" with their IDs and addresses; Run starts them.
func (c *Cloud) load() error {
	if c.cfg.StateDir == "" {
		return nil
	}
	b, err := os.ReadFile(c.statePath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read state: %w", err)
	}
	var doc stateDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("state file %s: %w", c.statePath(), err)
	}
	if doc.Version != stateVersion {
		return fmt.Errorf("state file %s: version %d, want %d", c.statePath(), doc.Version, stateVersion)
	}
	for i := range doc.Pools {
		doc.Pools[i].Zone = cmp.Or(doc.Pools[i].Zone, c.cfg.Zone)
	}
	for i := range doc.Instances {
		doc.Instances[i].Zone = cmp.Or(doc.Instances[i].Zone, c.cfg.Zone)
	}
	for i := range doc.LoadBalancers {
		doc.LoadBalancers[i].Zone = cmp.Or(doc.LoadBalancers[i].Zone, c.cfg.Zone)
	}
	for _, rec := range doc.Pools {
		c.pools[rec.ID] = &pool{rec: rec}
	}
	for _, rec := range doc.Instances {
		if rec.PID > 0 {
			c.stalePIDs[rec.ID] = rec.PID
		}
		if c.pools[rec.PoolID] == nil {
			continue // it was leaving its pool: not restored
		}
		if !c.memberIPs.reserve(rec.IP) {
			c.log.Warn("member address not restorable, the pool replaces it", "instance", rec.ID, "ip", rec.IP, "member_net", c.cfg.MemberNet)
			continue
		}
		rec.PID = 0
		c.instances[rec.ID] = &instance{rec: rec, state: stateStopped, stop: make(chan struct{})}
	}
	for _, rec := range doc.LoadBalancers {
		if !c.nlbIPs.reserve(rec.IP) {
			if rec.IP, err = c.nlbIPs.alloc(); err != nil {
				return fmt.Errorf("restore load balancer %s: %w", rec.ID, err)
			}
		}
		lb := &loadBalancer{rec: rec}
		for _, s := range rec.Services {
			lb.services = append(lb.services, &service{rec: s, state: "creating"})
		}
		lb.rec.Services = nil
		c.nlbs[rec.ID] = lb
	}
	c.restoreResourcesLocked(doc.Resources)
	c.saved = b
	c.log.Info("state restored", "path", c.statePath(), "pools", len(doc.Pools), "instances", len(c.instances), "load_balancers", len(doc.LoadBalancers))
	return nil
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on Linux
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// isMemberProcess reports whether pid is still the process of member id:
// its command line or environment names the instance ID. A recycled PID of
// an unrelated process does not match.
func isMemberProcess(pid int, id string) bool {
	if pid <= 0 {
		return false
	}
	proc := "/proc/" + strconv.Itoa(pid)
	for _, f := range []string{"cmdline", "environ"} {
		b, err := os.ReadFile(proc + "/" + f)
		if err != nil {
			return false
		}
		for _, arg := range strings.Split(string(b), "\x00") {
			if arg == id || arg == "--instance-id="+id || arg == "TIDEPOOL_INSTANCE_ID="+id {
				return true
			}
		}
	}
	return false
}

// killAndWait SIGKILLs pid and waits (polling) up to timeout for it to be
// gone. It is for processes that are not our children.
func killAndWait(ctx context.Context, pid int, timeout time.Duration) error {
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return fmt.Errorf("kill %d: %w", pid, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return nil
		}
		if isZombie(pid) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process %d still alive after SIGKILL", pid)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// isZombie reports whether pid has exited but not been reaped (by its own
// parent, which is not us).
func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}
