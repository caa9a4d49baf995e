package release

import (
	"testing"
)

// Every state on every event: the new state and the effect, or the
// reason it is refused.
func TestNext(t *testing.T) {
	type want struct {
		state   State
		effect  Effect
		refused string
	}
	ok := func(s State, e Effect) want { return want{state: s, effect: e} }
	no := func(why string) want { return want{refused: why} }
	ended := func(s State) want { return no("the release has ended (" + string(s) + ")") }
	busy := func(s State) want { return no("the release is " + string(s)) }
	table := map[State]map[Event]want{
		None: {
			Start: ok(Progressing, GoOn), Shift: no("the release has not started"), Given(Abort): no("the release has not started"),
			Finished: no("the release has not started"),
		},
		Progressing: {
			Start: no("the release has started already"), Shift: ok(Progressing, Wait), Gate: ok(Paused, Hold),
			GateOver: no("the release is not paused"), Passed: ok(Promoting, PromoteAll), Failed: ok(RollingBack, RollBack),
			Finished:           no("the release is progressing: nothing to finish"),
			Given(Promote):     ok(Progressing, MeasureUp),
			Given(PromoteFull): ok(Progressing, MeasureToFull),
			Given(Pause):       ok(Paused, Hold),
			Given(Resume):      no("the release is not paused"),
			Given(Abort):       ok(RollingBack, RollBack),
			"sing":             no("unknown event sing"),
		},
		Paused: {
			Shift: ok(Progressing, Wait), Gate: ok(Paused, Hold), GateOver: ok(Progressing, GoOn),
			Passed: ok(Promoting, PromoteAll), Failed: ok(RollingBack, RollBack),
			Given(Promote):     ok(Progressing, GoOn),
			Given(PromoteFull): ok(Promoting, PromoteAll),
			Given(Pause):       no("the release is already paused"),
			Given(Resume):      ok(Progressing, GoOn),
			Given(Abort):       ok(RollingBack, RollBack),
		},
		Promoting: {
			Finished: ok(Promoted, Report), Failed: ok(RollingBack, RollBack), Passed: ok(Promoting, PromoteAll), Given(Abort): busy(Promoting),
			Given(Pause): busy(Promoting), Shift: busy(Promoting),
		},
		RollingBack: {
			Finished: ok(RolledBack, Report), Failed: ok(RollingBack, RollBack), Given(Promote): busy(RollingBack), Passed: busy(RollingBack),
		},
		Promoted:   {Finished: ended(Promoted), Given(Abort): ended(Promoted), Start: ended(Promoted)},
		RolledBack: {Given(Resume): ended(RolledBack), Failed: ended(RolledBack)},
	}
	for s, events := range table {
		for e, w := range events {
			got := Next(s, e)
			if w.refused != "" {
				w.state = s // a refused event keeps the state
			}
			if got != (Transition{State: w.state, Effect: w.effect, Refused: w.refused}) {
				t.Errorf("Next(%q, %q) = %+v, want %+v", s, e, got, w)
			}
		}
	}
}

// A command the release cannot take is refused with the reason the API
// and the UI give; every command is refused once it has ended.
func TestRefusal(t *testing.T) {
	for _, c := range Commands {
		for _, s := range Final {
			if Refusal(s, c) == "" {
				t.Errorf("%s accepted by a release %s", c, s)
			}
		}
		if why := Refusal(Promoting, c); why != "the release is promoting" {
			t.Errorf("%s while promoting: %q", c, why)
		}
	}
	if Refusal(Paused, Pause) != "the release is already paused" || Refusal(Progressing, Resume) != "the release is not paused" ||
		Refusal(Progressing, Abort) != "" || Refusal(Paused, Promote) != "" {
		t.Error("refusals of a release in flight")
	}
	if c, ok := ParseCommand("promote-full"); !ok || c != PromoteFull {
		t.Error("promote-full does not parse")
	}
	if _, ok := ParseCommand("Promote"); ok {
		t.Error("a command's name is exact")
	}
}
