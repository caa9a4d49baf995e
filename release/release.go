// Package release is the domain of a canary release: the states it passes
// through, the events that move it (its own progress and the commands
// people and alerts give it) and Next, the pure function that says where
// an event leaves a release and what must be done about it. The canary
// stage carries out the effects, the store keeps the state, and the
// server and the UI ask Next before they accept a command. The release's
// records (records.go) are one type each, from the canary stage through
// the store to the API and the UI. No other package writes a state's or
// a command's name.
package release

import (
	"regexp"
	"slices"
)

// State is where a release stands, as checkpointed.
type State string

// The states of a release. None is a release not yet started.
const (
	None        State = ""
	Progressing State = "progressing" // in a step: traffic shifted, measured
	Paused      State = "paused"      // held at a gate until a person (or a pause's time) lets it go
	Promoting   State = "promoting"   // the canary becoming the stable
	RollingBack State = "rolling-back"
	Promoted    State = "promoted"
	RolledBack  State = "rolled-back"
)

// States lists every state a release may be checkpointed in.
var States = []State{Progressing, Paused, Promoting, RollingBack, Promoted, RolledBack}

// Final lists the states a release ends in.
var Final = []State{Promoted, RolledBack}

// Done says whether the release has ended.
func (s State) Done() bool { return slices.Contains(Final, s) }

// Command is what a person (or an alert) asks of a release in flight.
type Command string

// The commands. PromoteFull is Promote with full: true.
const (
	Promote     Command = "promote"
	PromoteFull Command = "promote-full"
	Pause       Command = "pause"
	Resume      Command = "resume"
	Abort       Command = "abort"
)

// Commands lists the commands, in the order the UI offers them.
var Commands = []Command{Promote, PromoteFull, Pause, Resume, Abort}

// ParseCommand reads a command's name.
func ParseCommand(name string) (Command, bool) {
	c := Command(name)
	return c, slices.Contains(Commands, c)
}

// Event is what happens to a release: one of the release's own events,
// or a command (Given).
type Event string

// The release's own events.
const (
	Start    Event = "start"     // the canary stage begins the release
	Shift    Event = "shift"     // the next step's weight is set
	Gate     Event = "gate"      // a pause step, manual promotion or an inconclusive analysis holds it
	GateOver Event = "gate-over" // a pause step's time is up
	Passed   Event = "passed"    // every step passed: promote
	Failed   Event = "failed"    // the analysis, an alert or an error condemns it: roll back
	Finished Event = "finished"  // the promotion or the rollback is carried out
)

// Given is the event of command c.
func Given(c Command) Event { return Event(c) }

// Effect is what the canary stage must do after an event.
type Effect string

// The effects.
const (
	Wait          Effect = "wait"            // nothing to do but wait for the next event
	GoOn          Effect = "go-on"           // carry on: to the first step, or past a gate (to the next step, or the gated step measured again)
	MeasureUp     Effect = "measure-up"      // end the step's wait and measure now; go on to the next step only if every metric passes
	MeasureToFull Effect = "measure-to-full" // the same, then straight to 100 %
	PromoteAll    Effect = "promote"         // give the canary all traffic and make it the stable
	Hold          Effect = "hold"            // hold at a gate until a person decides
	RollBack      Effect = "roll-back"       // traffic and workloads back to the stable, in git and in the route
	Report        Effect = "report"          // the release has ended: say so
)

// Transition is where an event leaves a release: its new state and the
// effect to carry out, or why the event is refused (the state is kept).
type Transition struct {
	State   State
	Effect  Effect
	Refused string
}

// Next is the transition of a release in state s on event e.
func Next(s State, e Event) Transition {
	refuse := func(why string) Transition { return Transition{State: s, Refused: why} }
	switch {
	case s.Done():
		return refuse("the release has ended (" + string(s) + ")")
	case s == None && e != Start:
		return refuse("the release has not started")
	}
	switch e {
	case Start:
		if s != None {
			return refuse("the release has started already")
		}
		return Transition{State: Progressing, Effect: GoOn}
	case Finished:
		switch s {
		case Promoting:
			return Transition{State: Promoted, Effect: Report}
		case RollingBack:
			return Transition{State: RolledBack, Effect: Report}
		}
		return refuse("the release is " + string(s) + ": nothing to finish")
	}
	switch {
	case e == Failed && (s == Promoting || s == RollingBack): // a promotion that failed, a rollback carried on after a restart
		return Transition{State: RollingBack, Effect: RollBack}
	case e == Passed && s == Promoting: // a promotion carried on after a restart
		return Transition{State: Promoting, Effect: PromoteAll}
	case s == Promoting || s == RollingBack:
		return refuse("the release is " + string(s))
	}
	switch e {
	case Shift:
		return Transition{State: Progressing, Effect: Wait}
	case Gate:
		return Transition{State: Paused, Effect: Hold}
	case GateOver:
		if s != Paused {
			return refuse("the release is not paused")
		}
		return Transition{State: Progressing, Effect: GoOn}
	case Passed:
		return Transition{State: Promoting, Effect: PromoteAll}
	case Failed, Given(Abort):
		return Transition{State: RollingBack, Effect: RollBack}
	case Given(Pause):
		if s == Paused {
			return refuse("the release is already paused")
		}
		return Transition{State: Paused, Effect: Hold}
	case Given(Resume):
		if s != Paused {
			return refuse("the release is not paused")
		}
		return Transition{State: Progressing, Effect: GoOn}
	case Given(Promote):
		if s == Paused { // past the gate, without the analysis that would decide there
			return Transition{State: Progressing, Effect: GoOn}
		}
		return Transition{State: Progressing, Effect: MeasureUp} // never past a failing analysis
	case Given(PromoteFull):
		if s == Paused {
			return Transition{State: Promoting, Effect: PromoteAll}
		}
		return Transition{State: Progressing, Effect: MeasureToFull}
	}
	return refuse("unknown event " + string(e))
}

// Refusal is why a release in state s cannot take command c now ("" when
// it can): the API and the UI answer it with 409.
func Refusal(s State, c Command) string {
	return Next(s, Given(c)).Refused
}

// appName is what an app's name may be in a request: a word of letters,
// digits, dots, dashes and underscores, at most 128 characters.
var appName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ValidApp reports whether name may be an app's name.
func ValidApp(name string) bool { return appName.MatchString(name) }
