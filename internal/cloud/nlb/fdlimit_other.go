//go:build !unix

package nlb

import (
	"log/slog"
	"sync"
)

// fileLimitLog is unused where descriptor limits are not managed.
var fileLimitLog struct {
	sync.Mutex
	log *slog.Logger
}

// raiseFileLimit has nothing to raise here: the budget is large enough
// never to bind, and the cap per service applies.
func raiseFileLimit() uint64 { return 1 << 20 }
