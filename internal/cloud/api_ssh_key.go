package cloud

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// SSH keys (spec tag ssh-key), identified by name. Nothing logs in anywhere:
// instances reference keys by name and report them back.

type sshKeyRecord struct {
	Name        string    `json:"name"`
	Fingerprint string    `json:"fingerprint"`
	PublicKey   string    `json:"public-key"`
	CreatedAt   time.Time `json:"created-at"`
}

type apiSSHKey struct {
	Name        string `json:"name"`
	Fingerprint string `json:"fingerprint"`
}

// sshKeyName is the spec's pattern of register-ssh-key names.
var sshKeyName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,254}$`)

// sshFingerprint parses an OpenSSH public key line ("TYPE BASE64 [COMMENT]")
// and returns its MD5 fingerprint in the colon form Exoscale reports.
func sshFingerprint(line string) (string, error) {
	fields := strings.Fields(line)
	if len(fields) < 2 {
		return "", fmt.Errorf("want \"TYPE BASE64 [COMMENT]\"")
	}
	blob, err := base64.StdEncoding.DecodeString(fields[1])
	if err != nil {
		return "", fmt.Errorf("key data is not base64")
	}
	// The blob starts with the key type as an SSH string (uint32 length).
	if len(blob) < 4 {
		return "", fmt.Errorf("key data too short")
	}
	n := binary.BigEndian.Uint32(blob)
	if uint64(n) > uint64(len(blob)-4) || !bytes.Equal(blob[4:4+n], []byte(fields[0])) {
		return "", fmt.Errorf("key data does not hold a %s key", fields[0])
	}
	sum := md5.Sum(blob)
	hexes := make([]string, len(sum))
	for i, b := range sum {
		hexes[i] = fmt.Sprintf("%02x", b)
	}
	return strings.Join(hexes, ":"), nil
}

func (c *Cloud) listSSHKeys(*http.Request) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := []apiSSHKey{}
	for _, k := range sortedValues(c.res.sshKeys) {
		out = append(out, apiSSHKey{Name: k.Name, Fingerprint: k.Fingerprint})
	}
	return map[string]any{"ssh-keys": out}, nil
}

func (c *Cloud) getSSHKey(r *http.Request) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := c.res.sshKeys[r.PathValue("name")]
	if k == nil {
		return nil, notFound("SSH key", r.PathValue("name"))
	}
	return apiSSHKey{Name: k.Name, Fingerprint: k.Fingerprint}, nil
}

func (c *Cloud) registerSSHKey(r *http.Request) (any, error) {
	var req struct {
		Name      string `json:"name"`
		PublicKey string `json:"public-key"`
	}
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if !sshKeyName.MatchString(req.Name) {
		return nil, errorf(http.StatusBadRequest, "invalid name %q: letters, digits, '.', '_' and '-', starting with a letter or digit", req.Name)
	}
	fp, err := sshFingerprint(req.PublicKey)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "invalid public-key: %v", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.res.sshKeys[req.Name] != nil {
		return nil, errorf(http.StatusConflict, "an SSH key named %q already exists", req.Name)
	}
	c.res.sshKeys[req.Name] = &sshKeyRecord{Name: req.Name, Fingerprint: fp, PublicKey: req.PublicKey, CreatedAt: c.nowUTC()}
	c.log.Info("SSH key registered", "name", req.Name, "fingerprint", fp)
	return c.doneOpLocked(r, "register-ssh-key", nameUUID("ssh-key:"+req.Name), "/v2/ssh-key/"+req.Name), nil
}

func (c *Cloud) deleteSSHKey(r *http.Request) (any, error) {
	name := r.PathValue("name")
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.res.sshKeys[name] == nil {
		return nil, notFound("SSH key", name)
	}
	delete(c.res.sshKeys, name)
	c.log.Info("SSH key deleted", "name", name)
	return c.doneOpLocked(r, "delete-ssh-key", nameUUID("ssh-key:"+name), "/v2/ssh-key/"+name), nil
}

// sshKeysAPILocked returns the ssh-keys and ssh-key (the first) fields of
// an instance or pool that names keys.
func (c *Cloud) sshKeysAPILocked(names []string) ([]apiSSHKey, *apiSSHKey) {
	var keys []apiSSHKey
	for _, name := range names {
		k := apiSSHKey{Name: name}
		if rec := c.res.sshKeys[name]; rec != nil {
			k.Fingerprint = rec.Fingerprint
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	return keys, &keys[0]
}
