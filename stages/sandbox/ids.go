package sandbox

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// Ranges is how many ID ranges sandboxes are given from, each IDs wide,
// starting at DefaultIDBase: concurrent sandboxes on one machine (of any
// engine process) each hold a range of their own, so that what one
// sandbox's work owns, another's cannot touch.
const Ranges = 256

// rangeLocks is where the ranges in use are held, by a lock on a file per
// range (flock): the kernel lets go of it when its process dies.
var rangeLocks = "/run/slipway/sandbox-ids"

// idRange is one range held for a sandbox's lifetime.
type idRange struct {
	base int
	lock *os.File
}

// takeRange holds a free range, trying them from a random one.
func takeRange() (*idRange, error) {
	if err := os.MkdirAll(rangeLocks, 0o700); err != nil {
		return nil, fmt.Errorf("making %s: %w", rangeLocks, err)
	}
	start := rand.IntN(Ranges)
	for i := range Ranges {
		k := (start + i) % Ranges
		f, err := os.OpenFile(filepath.Join(rangeLocks, strconv.Itoa(k)), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, err
		}
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return &idRange{base: DefaultIDBase + k*IDs, lock: f}, nil
		}
		f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("locking ID range %d: %w", k, err)
		}
	}
	return nil, fmt.Errorf("all %d sandbox ID ranges are in use", Ranges)
}

// release lets the range go (nil-safe).
func (r *idRange) release() {
	if r != nil {
		r.lock.Close()
	}
}
