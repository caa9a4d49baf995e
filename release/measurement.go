package release

import "time"

// Measurement is one measurement of a canary step's analysis, as the
// canary stage records it, the store keeps it and the API and the UI
// show it.
type Measurement struct {
	ID       int64     `json:"id"`
	RunID    int64     `json:"run"`
	Step     int       `json:"step"`   // the canary step (0-based)
	Weight   int       `json:"weight"` // the canary's share of traffic when measured
	Metric   string    `json:"metric"`
	Query    string    `json:"query"` // as rendered and sent
	Value    float64   `json:"value"`
	Min      *float64  `json:"min,omitempty"`
	Max      *float64  `json:"max,omitempty"`
	Requests float64   `json:"requests"` // -1 when not measured
	Outcome  string    `json:"outcome"`  // pass, fail, inconclusive, error
	Message  string    `json:"message,omitempty"`
	At       time.Time `json:"at"`
}
