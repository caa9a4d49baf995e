package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipwayci/slipway/release"
	"github.com/slipwayci/slipway/runner/store"
)

// race runs f from n goroutines at once and returns their errors.
func race(n int, f func(i int) error) []error {
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// What several engines on one database do at once: the same delivery
// (a redelivery, or a forge retrying), the same dedup key, the same
// release command — each lands once.
func TestRacesLandOnce(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		const n = 8

		var created, dup int
		for _, err := range race(n, func(int) error {
			r := &store.Run{Pipeline: "p", App: "p", Status: store.RunQueued, DedupKey: "gitea/d-1/p", CreatedAt: time.Now()}
			return s.CreateRun(ctx, &store.NewRun{Run: r, Stages: []store.Stage{{Index: 0, Name: "build", Kind: "fake"}}})
		}) {
			switch {
			case err == nil:
				created++
			case errors.Is(err, store.ErrDuplicate):
				dup++
			default:
				t.Errorf("CreateRun with a shared key: %v", err)
			}
		}
		if created != 1 || dup != n-1 {
			t.Errorf("same dedup key from %d engines: %d created, %d duplicates; want 1 and %d", n, created, dup, n-1)
		}

		var first, found int
		errFound := errors.New("found stored")
		for _, err := range race(n, func(i int) error {
			d := &store.Delivery{Forge: "gitea", ID: "d-1", ReceivedAt: time.Now(), Event: "push", Status: store.DeliveryReceived,
				Reason: fmt.Sprint("engine ", i), Payload: []byte(`{}`)}
			old, err := s.CreateDelivery(ctx, d)
			if err == nil && old != nil && old.ID == "d-1" {
				return errFound
			}
			return err
		}) {
			switch {
			case err == nil:
				first++
			case errors.Is(err, errFound):
				found++
			default:
				t.Errorf("CreateDelivery racing: %v", err)
			}
		}
		if first != 1 || found != n-1 {
			t.Errorf("the same delivery from %d engines: %d stored, %d found stored; want 1 and %d", n, first, found, n-1)
		}

		// recordRacing has n engines record one delivery at once (record
		// on engine i), counting those that recorded it, those that found
		// it processed, and the runs they name.
		var mu sync.Mutex
		recordRacing := func(what string, record func(i int) (*store.Delivery, *store.NewRun, error)) (recorded, processedBefore int, runIDs map[int64]bool) {
			runIDs = map[int64]bool{}
			for _, err := range race(n, func(i int) error {
				old, nr, err := record(i)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					return err
				case old == nil:
					recorded++
					if nr != nil {
						runIDs[nr.Run.ID] = true
					}
				case old.Processed():
					processedBefore++
					for _, id := range old.RunIDs() {
						runIDs[id] = true
					}
				default:
					return fmt.Errorf("found %+v", old)
				}
				return nil
			}) {
				if err != nil {
					t.Errorf("%s, racing: %v", what, err)
				}
			}
			return recorded, processedBefore, runIDs
		}

		// a delivery with the run it starts, recorded by n engines at once
		recorded, processedBefore, runIDs := recordRacing("RecordDelivery", func(int) (*store.Delivery, *store.NewRun, error) {
			d := &store.Delivery{Forge: "gitea", ID: "d-2", ReceivedAt: time.Now(), Event: "push", Payload: []byte(`{}`)}
			nr := &store.NewRun{Run: &store.Run{Pipeline: "p", App: "p", Status: store.RunQueued, DedupKey: "push/d-2/p", CreatedAt: time.Now()},
				Stages: []store.Stage{{Index: 0, Name: "build", Kind: "fake"}}, Event: store.Event{Kind: "queued", Time: time.Now()}}
			old, err := s.RecordDelivery(ctx, d, []*store.NewRun{nr}, func(d *store.Delivery) {
				d.Status, d.Matches = store.DeliveryProcessed, []store.Match{{Pipeline: "p", RunID: nr.Run.ID}}
			})
			return old, nr, err
		})
		if recorded != 1 || processedBefore != n-1 || len(runIDs) != 1 {
			t.Errorf("one delivery with its run from %d engines: %d recorded, %d found processed, runs %v; want 1, %d and one run", n, recorded, processedBefore, runIDs, n-1)
		}
		for id := range runIDs {
			if evs, _ := s.ListEvents(ctx, id); len(evs) != 1 || evs[0].Kind != "queued" {
				t.Errorf("the delivery's run %d has events %+v, want its one queued event", id, evs)
			}
		}

		// a delivery starting nothing, recorded by n engines at once
		recorded, processedBefore, runIDs = recordRacing("RecordDelivery of a delivery starting nothing", func(i int) (*store.Delivery, *store.NewRun, error) {
			d := &store.Delivery{Forge: "gitea", ID: "d-3", ReceivedAt: time.Now(), Event: "push", Payload: []byte(`{}`)}
			old, err := s.RecordDelivery(ctx, d, nil, func(d *store.Delivery) {
				d.Status, d.Reason = store.DeliveryProcessed, fmt.Sprint("matched nothing on engine ", i)
			})
			return old, nil, err
		})
		if len(runIDs) != 0 {
			t.Errorf("a delivery starting nothing names runs %v", runIDs)
		}
		if recorded != 1 || processedBefore != n-1 {
			t.Errorf("one delivery starting nothing from %d engines: %d recorded, %d found processed; want 1 and %d", n, recorded, processedBefore, n-1)
		}
		// stored as received (then the engine stopped), recorded on recovery
		d4 := &store.Delivery{Forge: "gitea", ID: "d-4", ReceivedAt: time.Now(), Event: "push", Status: store.DeliveryReceived, Payload: []byte(`{}`)}
		if _, err := s.CreateDelivery(ctx, d4); err != nil {
			t.Fatal(err)
		}
		if old, err := s.RecordDelivery(ctx, d4, nil, func(d *store.Delivery) { d.Status = store.DeliveryIgnored }); err != nil || old == nil || old.Processed() {
			t.Errorf("recording a received delivery: %+v, %v; want it found unprocessed and updated", old, err)
		}
		if list, _ := s.ListDeliveries(ctx, store.DeliveryFilter{Status: store.DeliveryIgnored}); len(list) != 1 || list[0].ID != "d-4" {
			t.Errorf("ignored deliveries after recovery: %+v", list)
		}

		r := newRun(t, s, "order-service", "")
		for i := range 20 {
			must(t, s.AddCommand(ctx, &store.Command{RunID: r.ID, Name: release.Command(fmt.Sprint("c", i)), Actor: "alice", CreatedAt: time.Now()}))
		}
		taken := map[int64]int{}
		for _, err := range race(n, func(int) error {
			for idle := 0; idle < 3; {
				c, err := s.TakeCommand(ctx, r.ID, time.Now())
				if err != nil {
					return err
				}
				if c == nil {
					idle++ // lost a race to the same command, or none left
					continue
				}
				mu.Lock()
				taken[c.ID]++
				mu.Unlock()
			}
			return nil
		}) {
			if err != nil {
				t.Errorf("TakeCommand racing: %v", err)
			}
		}
		for id, k := range taken {
			if k != 1 {
				t.Errorf("command %d taken %d times", id, k)
			}
		}
		for c, err := s.TakeCommand(ctx, r.ID, time.Now()); c != nil || err != nil; c, err = s.TakeCommand(ctx, r.ID, time.Now()) {
			taken[c.ID]++
		}
		if len(taken) != 20 {
			t.Errorf("%d of 20 commands taken", len(taken))
		}
	})
}

// Text from outside — a build's log, a forge's payload, a stage's error —
// may hold any bytes. Both databases keep the same text: invalid UTF-8
// and NUL bytes become U+FFFD (PostgreSQL refuses them in text; the
// store must not fail a run or lose its log over one byte).
func TestHostileTextIsKeptTheSameWay(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		r := newRun(t, s, "p", "")
		hostile := "ok \x00 nul, \xff\xfe invalid, ☃ valid, \r\n\x1b[31m escape"
		want := "ok \uFFFD nul, \uFFFD invalid, ☃ valid, \r\n\x1b[31m escape"
		lines := []store.LogLine{{RunID: r.ID, Stage: "build", Attempt: 1, Time: time.Now(), Text: hostile}}
		must(t, s.AppendLogs(ctx, lines))
		got, err := s.ReadLogs(ctx, r.ID, 0, 10)
		if err != nil || len(got) != 1 || got[0].Text != want {
			t.Errorf("log lines read back as %+v (%v), want %q", got, err, want)
		}
		must(t, s.StartAttempt(ctx, r.ID, 0, 1, time.Now()))
		must(t, s.FinishAttempt(ctx, r.ID, 0, 1, store.StageFailed, hostile, map[string]string{"out": hostile}, time.Now()))
		sts, _ := s.ListStages(ctx, r.ID)
		if sts[0].Error != want || !strings.HasPrefix(sts[0].Outputs["out"], "ok ") {
			t.Errorf("stage error %q, outputs %q", sts[0].Error, sts[0].Outputs)
		}
		must(t, s.AppendEvent(ctx, store.Event{RunID: r.ID, Time: time.Now(), Kind: "finished", Message: hostile}))
		if evs, _ := s.ListEvents(ctx, r.ID); len(evs) != 1 || evs[0].Message != want {
			t.Errorf("event %+v", evs)
		}
		d := &store.Delivery{Forge: "gitea", ID: hostile, Repo: hostile, Event: "push", Status: store.DeliveryReceived, Payload: []byte(hostile)}
		if _, err := s.CreateDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
		if list, _ := s.ListDeliveries(ctx, store.DeliveryFilter{}); len(list) != 1 || list[0].ID != want || string(list[0].Payload) != want {
			t.Errorf("delivery %+v", list)
		}
		hr := &store.Run{Pipeline: "p", App: "p", PipelineFile: "p.yaml", Trigger: store.Trigger{Event: "push"},
			Status: store.RunQueued, CreatedAt: time.Now()}
		must(t, s.CreateRun(ctx, &store.NewRun{Run: hr, Stages: []store.Stage{{Index: 0, Name: hostile, Kind: "fake"}},
			Event: store.Event{Time: time.Now(), Kind: "queued", Message: hostile}}))
		if sts, _ := s.ListStages(ctx, hr.ID); len(sts) != 1 || sts[0].Name != want {
			t.Errorf("stages of a run created with a hostile stage name: %+v", sts)
		}
		if evs, _ := s.ListEvents(ctx, hr.ID); len(evs) != 1 || evs[0].Message != want {
			t.Errorf("queued event %+v", evs)
		}
		bin := []byte{0, 0xff, 'P', 'K', 3, 4}
		must(t, s.PutArtifact(ctx, store.Artifact{RunID: r.ID, Index: 0, Attempt: 1, Name: "report", MediaType: "application/octet-stream", Data: bin}))
		if a, err := s.GetArtifact(ctx, r.ID, 0, "report"); err != nil || string(a.Data) != string(bin) {
			t.Errorf("artifact bytes %q, %v: bytes are kept as they are", a.Data, err)
		}
	})
}

// A claim is in the run's timeline, saying which engine took the run,
// whichever way it was claimed: alone, or serialized with a group's.
func TestClaimRecordsStarted(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Now()
		free, grouped := newRun(t, s, "p", ""), newRun(t, s, "q", "g")
		for _, c := range []struct {
			run   *store.Run
			lease store.Lease
			want  string
		}{{free, store.Lease{Owner: "a", Until: now.Add(time.Minute)}, "on engine a"}, {grouped, store.Lease{}, ""}} {
			claimed, err := s.ClaimNext(ctx, now, c.lease)
			if err != nil || claimed == nil || claimed.ID != c.run.ID {
				t.Fatalf("ClaimNext = %+v, %v; want run %d", claimed, err, c.run.ID)
			}
			evs, err := s.ListEvents(ctx, c.run.ID)
			if err != nil || len(evs) == 0 {
				t.Fatalf("events of run %d: %v, %v", c.run.ID, evs, err)
			}
			if last := evs[len(evs)-1]; last.Kind != "started" || last.Message != c.want || !last.Time.Equal(now.Truncate(time.Microsecond)) {
				t.Errorf("run %d's last event is %+v; want started %q at the claim", c.run.ID, last, c.want)
			}
		}
	})
}

// A claimed run is leased to its engine; the lease is renewed by its
// owner only, taken over once it ends (by one engine of several), and
// ended when the run goes back to the queue or finishes.
func TestLeases(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Now()
		r := newRun(t, s, "p", "")
		newRun(t, s, "q", "")
		claimed, err := s.ClaimNext(ctx, now, store.Lease{Owner: "a", Until: now.Add(time.Minute)})
		if err != nil || claimed == nil || claimed.ID != r.ID || claimed.Owner != "a" || !claimed.LeaseUntil.Equal(now.Add(time.Minute).Truncate(time.Microsecond)) {
			t.Fatalf("ClaimNext = %+v, %v", claimed, err)
		}
		other, _ := s.ClaimNext(ctx, now, store.Lease{Owner: "b", Until: now.Add(time.Minute)})
		if held, err := s.RenewLeases(ctx, "a", now.Add(2*time.Minute)); err != nil || len(held) != 1 || held[0] != r.ID {
			t.Errorf("RenewLeases(a) = %v, %v; want [%d]", held, err, r.ID)
		}
		if won, err := s.TakeExpired(ctx, r.ID, now.Add(time.Minute), store.Lease{Owner: "b", Until: now.Add(3 * time.Minute)}); won || err != nil {
			t.Errorf("took over a live lease: %v %v", won, err)
		}
		later := now.Add(5 * time.Minute) // a's lease (to now+2m) has ended
		var winners int
		for i, err := range race(4, func(i int) error {
			won, err := s.TakeExpired(ctx, r.ID, later, store.Lease{Owner: fmt.Sprint("taker-", i), Until: later.Add(time.Minute)})
			if won {
				return errors.New("won")
			}
			return err
		}) {
			if err != nil && err.Error() == "won" {
				winners++
			} else if err != nil {
				t.Errorf("taker %d: %v", i, err)
			}
		}
		if winners != 1 {
			t.Errorf("%d engines took over one run, want 1", winners)
		}
		if held, _ := s.RenewLeases(ctx, "a", later); len(held) != 0 {
			t.Errorf("the old owner still renews %v after a takeover", held)
		}
		got, _ := s.GetRun(ctx, r.ID)
		if !strings.HasPrefix(got.Owner, "taker-") {
			t.Errorf("owner after takeover = %q", got.Owner)
		}
		if ok, err := s.TransitionRun(ctx, r.ID, []store.RunStatus{store.RunRunning}, store.RunQueued, "resumed", later); !ok || err != nil {
			t.Fatalf("requeue: %v %v", ok, err)
		}
		if ok, _ := s.TransitionRun(ctx, other.ID, []store.RunStatus{store.RunRunning}, store.RunSucceeded, "", later); !ok {
			t.Fatal("finishing the other run")
		}
		for _, id := range []int64{r.ID, other.ID} {
			if got, _ := s.GetRun(ctx, id); got.Owner != "" || !got.LeaseUntil.IsZero() {
				t.Errorf("run %d (%s) keeps its lease: %q until %v", id, got.Status, got.Owner, got.LeaseUntil)
			}
		}
	})
}

// A change made through one engine's store is signalled to every engine
// on the database (on SQLite, one engine, to its own store), once it is
// committed: a queued run, a status change, a release command, log lines.
func TestChangesAreSignalled(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, open func() (*Store, error)) {
		ctx := context.Background()
		a, b := writerAndListener(t, open)
		got := make(chan store.Signal, 16)
		defer b.Subscribe(func(s store.Signal) { got <- s })()
		expect := func(what string, want store.Signal) {
			t.Helper()
			select {
			case s := <-got:
				if s != want {
					t.Errorf("after %s: signal %+v, want %+v", what, s, want)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("after %s: no signal", what)
			}
		}
		r := newRun(t, a, "p", "")
		expect("CreateRun", store.Signal{Topic: store.SignalQueued, ID: r.ID})
		must(t, a.AddCommand(ctx, &store.Command{RunID: r.ID, Name: "promote", Actor: "alice"}))
		expect("AddCommand", store.Signal{Topic: store.SignalCommand, ID: r.ID})
		must(t, a.AppendLogs(ctx, []store.LogLine{{RunID: r.ID, Stage: "build", Text: "x"}}))
		expect("AppendLogs", store.Signal{Topic: store.SignalLogs, ID: r.ID})
		if ok, err := a.TransitionRun(ctx, r.ID, []store.RunStatus{store.RunQueued}, store.RunCancelled, "", time.Now()); !ok || err != nil {
			t.Fatal(ok, err)
		}
		expect("TransitionRun", store.Signal{Topic: store.SignalEnded, ID: r.ID})
		// a refused transition changed nothing and says nothing
		if ok, _ := a.TransitionRun(ctx, r.ID, []store.RunStatus{store.RunQueued}, store.RunCancelled, "", time.Now()); ok {
			t.Fatal("cancelled twice")
		}
		newRun(t, a, "q", "")
		if s := <-got; s.Topic != store.SignalQueued {
			t.Errorf("a refused transition signalled %+v", s)
		}
	})
}

// Writes made at once are committed together, and each keeps its own
// outcome: one that fails (a run for a missing stage row) fails alone,
// the others of its batch are committed, and a write whose caller gave up
// before its turn is not made.
func TestGroupCommitKeepsEachWritesOwnOutcome(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		r := newRun(t, s, "p", "")
		const n = 64
		errs := race(n, func(i int) error {
			if i == n/2 { // refers to a run that does not exist: a foreign key (SQLite) or constraint error
				return s.AppendLogs(ctx, []store.LogLine{{RunID: 999_999, Stage: "x", Text: "orphan"}})
			}
			return s.AppendEvent(ctx, store.Event{RunID: r.ID, Time: time.Now(), Kind: "k", Message: fmt.Sprint(i)})
		})
		for i, err := range errs {
			if (i == n/2) != (err != nil) {
				t.Errorf("write %d: %v", i, err)
			}
		}
		if evs, _ := s.ListEvents(ctx, r.ID); len(evs) != n-1 {
			t.Errorf("%d events stored, want %d: the failing write took others with it", len(evs), n-1)
		}
		gone, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.AppendEvent(gone, store.Event{RunID: r.ID, Kind: "late"}); err == nil {
			t.Error("a write whose caller gave up reported success")
		}
		if evs, _ := s.ListEvents(ctx, r.ID); len(evs) != n-1 {
			t.Errorf("%d events after a cancelled write, want %d", len(evs), n-1)
		}
	})
}
