package auth

import (
	"sync"
	"time"
)

// deniedEvery is how often the same refusal (one token, one route, one
// reason, one target) is written to the audit log; those in between are
// counted, and the next entry says how many. A token that is refused in a
// loop costs the log one row a minute, not one per request.
const deniedEvery = time.Minute

// MaxDeniedRowsPerToken bounds the refusal rows one token costs the log
// in a minute, however many different targets it aims at; those past it
// are counted, and the token's next row says how many.
const MaxDeniedRowsPerToken = 20

// maxDeniedKeys bounds the refusals remembered; past it, the memory is
// cleared (and every refusal is written once more).
const maxDeniedKeys = 10_000

// denials aggregates audit entries: the refusals of calls, and logins.
type denials struct {
	mu     sync.Mutex
	seen   map[string]*denied // by token and what was refused
	tokens map[string]*denied // by token: this minute's rows, and those over the bound
}

type denied struct {
	written    time.Time
	rows       int // written since written (a token's minute)
	suppressed int
}

// note says whether a refusal of token keyed key at now is to be written,
// how many like it were not written since the last that was, and how many
// of the token's others were not written for its bound.
func (d *denials) note(token, key string, now time.Time) (write bool, since, over int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen == nil || len(d.seen) >= maxDeniedKeys {
		d.seen, d.tokens = map[string]*denied{}, map[string]*denied{}
	}
	e := d.seen[token+"\x00"+key]
	if e != nil && now.Sub(e.written) < deniedEvery {
		e.suppressed++
		return false, 0, 0
	}
	b := d.tokens[token]
	if b == nil || now.Sub(b.written) >= deniedEvery {
		if b == nil {
			b = &denied{}
			d.tokens[token] = b
		}
		b.written, b.rows = now, 0
	}
	if b.rows >= MaxDeniedRowsPerToken {
		b.suppressed++
		return false, 0, 0
	}
	b.rows++
	if e == nil {
		e = &denied{}
		d.seen[token+"\x00"+key] = e
	}
	since, over = e.suppressed, b.suppressed
	e.written, e.suppressed, b.suppressed = now, 0, 0
	return true, since, over
}
