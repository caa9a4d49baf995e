package auth

import (
	"sync"
	"time"
)

// deniedEvery is how often the same refusal (one token, one call, one
// reason) is written to the audit log; those in between are counted, and
// the next entry says how many. A token that is refused in a loop costs the
// log one row a minute, not one per request.
const deniedEvery = time.Minute

// maxDeniedKeys bounds the refusals remembered; past it, the memory is
// cleared (and every refusal is written once more).
const maxDeniedKeys = 10_000

// denials aggregates the audit entries of refused calls.
type denials struct {
	mu   sync.Mutex
	seen map[string]*denied
}

type denied struct {
	written    time.Time
	suppressed int
}

// note says whether a refusal keyed key at now is to be written, and how
// many like it were not written since the last that was.
func (d *denials) note(key string, now time.Time) (write bool, since int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen == nil || len(d.seen) >= maxDeniedKeys {
		d.seen = map[string]*denied{}
	}
	e := d.seen[key]
	if e == nil {
		d.seen[key] = &denied{written: now}
		return true, 0
	}
	if now.Sub(e.written) < deniedEvery {
		e.suppressed++
		return false, 0
	}
	since, e.written, e.suppressed = e.suppressed, now, 0
	return true, since
}
