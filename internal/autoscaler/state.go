package autoscaler

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"tidepool/internal/atomicfile"
	"tidepool/internal/autoscaler/policy"
)

// persisted is what survives a restart: the last scaling time (so the
// cooldown holds across restarts), the signals not yet acted on and the
// change in progress (see intent.go).
type persisted struct {
	LastScale time.Time      `json:"last_scale,omitzero"`
	Pending   policy.Pending `json:"pending"`
	Intent    *Intent        `json:"intent,omitempty"`
}

// stateFile publishes persisted state atomically (internal/atomicfile), and
// only when the content changed. An empty
// path disables persistence. Safe for concurrent use.
type stateFile struct {
	path string
	mu   sync.Mutex
	last []byte
}

// load reads the state file. A missing file is the zero state; a file that
// cannot be read or parsed is an error naming the file (nothing is
// overwritten, so nothing is lost).
func (s *stateFile) load() (persisted, error) {
	var st persisted
	if s.path == "" {
		return st, nil
	}
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("read state file: %w", err)
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("state file %s is corrupt (fix or remove it): %w", s.path, err)
	}
	if st.Pending.Up < 0 || st.Pending.Down < 0 {
		return persisted{}, fmt.Errorf("state file %s is corrupt (fix or remove it): negative pending signals", s.path)
	}
	if st.Intent != nil {
		if err := st.Intent.validate(); err != nil {
			return persisted{}, fmt.Errorf("state file %s is corrupt (fix or remove it): %w", s.path, err)
		}
	}
	s.mu.Lock()
	s.last = bytes.TrimSpace(data)
	s.mu.Unlock()
	return st, nil
}

// save writes the state snapshot returns if it differs from what was last
// loaded or written. snapshot is called with the file's lock held, so
// concurrent saves are written in the order their snapshots were taken.
func (s *stateFile) save(snapshot func() persisted) error {
	if s.path == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	data, err := json.Marshal(snapshot())
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if bytes.Equal(data, s.last) {
		return nil
	}
	if err := atomicfile.Write(s.path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write state file: %w", err)
	}
	s.last = data
	return nil
}
