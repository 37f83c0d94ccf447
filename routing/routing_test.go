package routing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
)

func TestMatchingOrderPriorityThenAge(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	low := f.enqueue(agentdesk.TaskRequest{Priority: agentdesk.PriorityLow})
	f.clock.Advance(time.Second)
	normal1 := f.enqueue(agentdesk.TaskRequest{})
	f.clock.Advance(time.Second)
	normal2 := f.enqueue(agentdesk.TaskRequest{})
	f.clock.Advance(time.Second)
	high := f.enqueue(agentdesk.TaskRequest{Priority: agentdesk.PriorityHigh})
	a := f.agent(map[string]int{"chat": 1}, nil)
	for _, want := range []int64{high, normal1, normal2, low} {
		if n := f.dispatch(); n != 1 {
			t.Fatalf("dispatch made %d offers, want 1", n)
		}
		f.offeredTo(want, a)
		f.handle(want, a)
	}
	checkConsistency(t, f.ctx, f.db)
}

func TestLongestIdleAgentFirst(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	a := f.agent(map[string]int{"chat": 1}, nil)
	b := f.agent(map[string]int{"chat": 1}, nil)
	t1 := f.enqueue(agentdesk.TaskRequest{})
	f.dispatch()
	f.offeredTo(t1, a)
	f.handle(t1, a)
	f.clock.Advance(time.Second)
	t2 := f.enqueue(agentdesk.TaskRequest{})
	f.dispatch()
	f.offeredTo(t2, b) // a had the last offer
	if got := f.pub.find(AgentStream(b), "offer"); len(got) != 1 || got[0].Data.(Offer).TaskID != t2 {
		t.Fatalf("agent b got offers %+v", got)
	}
}

func TestCapacityAndVoiceBlocksChat(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	a := f.agent(map[string]int{"voice": 1, "chat": 2, "email": 5}, nil)
	c1 := f.enqueue(agentdesk.TaskRequest{})
	c2 := f.enqueue(agentdesk.TaskRequest{})
	c3 := f.enqueue(agentdesk.TaskRequest{})
	f.dispatch()
	f.offeredTo(c1, a) // on arrival: the agent was free
	f.offeredTo(c2, a)
	f.state(c3, StateQueued)
	v := f.enqueue(agentdesk.TaskRequest{Channel: agentdesk.ChannelVoice})
	f.dispatch()
	f.state(v, StateQueued) // chats in hand block a call
	f.handle(c1, a)
	f.handle(c2, a)
	// c3 (older) now goes first, and then blocks the call.
	f.dispatch()
	f.offeredTo(c3, a)
	f.state(v, StateQueued)
	f.handle(c3, a)
	f.dispatch()
	f.offeredTo(v, a)
	f.must(f.e.Accept(f.ctx, f.account, a, v))
	c4 := f.enqueue(agentdesk.TaskRequest{})
	f.dispatch()
	f.state(c4, StateQueued) // a call blocks chats
	checkConsistency(t, f.ctx, f.db)

	// Configured otherwise, a call and chats go together.
	g := newFixture(t, Config{VoiceAlongside: true})
	b := g.agent(nil, nil)
	gv := g.enqueue(agentdesk.TaskRequest{Channel: agentdesk.ChannelVoice})
	gc := g.enqueue(agentdesk.TaskRequest{})
	g.dispatch()
	g.offeredTo(gv, b)
	g.offeredTo(gc, b)
}

func TestSkillsAndRelaxation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	q := f.queue(Queue{Name: "Billing", RequiredSkills: map[string]int{"billing": 4},
		Relaxation: []RelaxStep{{AfterSeconds: 30, MaxLevel: 2}, {AfterSeconds: 90, DropSkills: true}}})
	expert := f.agent(nil, map[string]int{"billing": 5})
	junior := f.agent(nil, map[string]int{"billing": 2})
	novice := f.agent(nil, nil)
	f.must(f.e.SetPresence(f.ctx, f.account, expert, Away, "lunch"))
	f.must(f.e.SetPresence(f.ctx, f.account, junior, Offline, ""))

	id := f.enqueue(agentdesk.TaskRequest{QueueID: q})
	f.dispatch()
	f.state(id, StateQueued)
	f.clock.Advance(31 * time.Second)
	f.sweep()
	f.dispatch()
	f.state(id, StateQueued) // level 2 would do, but the junior is offline
	f.must(f.e.SetPresence(f.ctx, f.account, junior, Available, ""))
	f.dispatch()
	f.offeredTo(id, junior)
	f.must(f.e.Reject(f.ctx, f.account, junior, id, "not mine"))
	f.dispatch()
	f.state(id, StateQueued) // only the junior qualifies, and they said no
	f.clock.Advance(60 * time.Second)
	f.sweep()
	f.dispatch()
	f.offeredTo(id, novice) // skills dropped after 90 s
	evs, err := f.e.TaskEvents(f.ctx, f.account, id)
	f.must(err)
	var relaxed int
	for _, e := range evs {
		if e.From == StateQueued && e.To == StateQueued && strings.HasPrefix(e.Reason, "requirements relaxed") {
			relaxed++
		}
	}
	if relaxed != 2 {
		t.Fatalf("relaxation events = %d, want 2: %+v", relaxed, evs)
	}

	// A task asking for a skill an agent has at the level is matched at once.
	id2 := f.enqueue(agentdesk.TaskRequest{Skills: map[string]int{"billing": 5}})
	f.must(f.e.SetPresence(f.ctx, f.account, expert, Available, ""))
	f.dispatch()
	f.offeredTo(id2, expert)
	checkConsistency(t, f.ctx, f.db)
}

func TestStickyAgent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{StickyWindow: time.Hour})
	a := f.agent(map[string]int{"chat": 1}, nil)
	b := f.agent(map[string]int{"chat": 1}, nil)
	c := f.customer()
	t1 := f.enqueue(agentdesk.TaskRequest{CustomerID: c})
	f.dispatch()
	f.offeredTo(t1, a)
	f.handle(t1, a)
	f.clock.Advance(10 * time.Minute)
	t2 := f.enqueue(agentdesk.TaskRequest{CustomerID: c})
	f.dispatch()
	f.offeredTo(t2, a) // sticky beats b's longer idle time
	f.handle(t2, a)
	// Outside the window, fairness wins again.
	f.clock.Advance(2 * time.Hour)
	t3 := f.enqueue(agentdesk.TaskRequest{CustomerID: c})
	f.dispatch()
	f.offeredTo(t3, b)
	f.handle(t3, b)
	// Sticky agent busy: the next agent gets it rather than waiting.
	t4 := f.enqueue(agentdesk.TaskRequest{CustomerID: c})
	other := f.enqueue(agentdesk.TaskRequest{})
	f.dispatch()
	_ = other
	if tk := f.task(t4); tk.State != StateOffered {
		t.Fatalf("t4 = %s", tk.State)
	}
}

func TestOfferTimeoutGoesToNextAgentAndMissedOffersSetAway(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{MaxMissedOffers: 2})
	a := f.agent(map[string]int{"chat": 1}, nil)
	id := f.enqueue(agentdesk.TaskRequest{})
	f.dispatch()
	f.offeredTo(id, a)
	b := f.agent(map[string]int{"chat": 1}, nil)
	f.clock.Advance(19 * time.Second)
	f.sweep()
	f.offeredTo(id, a) // not yet
	f.clock.Advance(2 * time.Second)
	f.sweep()
	f.state(id, StateQueued)
	if got := f.pub.find(AgentStream(a), "offer_revoked"); len(got) != 1 {
		t.Fatalf("revocations to a: %d", len(got))
	}
	f.dispatch()
	f.offeredTo(id, b)
	if err := f.e.Accept(f.ctx, f.account, a, id); !agentdesk.IsKind(err, agentdesk.Conflict) {
		t.Fatalf("late accept by a: %v, want conflict", err)
	}
	// b misses twice in a row and is set away.
	f.clock.Advance(21 * time.Second)
	f.sweep()
	f.must(f.e.SetPresence(f.ctx, f.account, a, Offline, ""))
	f.dispatch() // b was excluded, nobody else: exclusions are lifted after a pause
	f.dispatch()
	f.state(id, StateQueued)
	f.clock.Advance(10 * time.Second)
	f.dispatch()
	f.offeredTo(id, b)
	f.clock.Advance(21 * time.Second)
	f.sweep()
	p, err := f.e.Presence(f.ctx, f.account, b)
	f.must(err)
	if p.State != Away || p.Reason != MissedOffersReason {
		t.Fatalf("b presence = %+v, want away (missed offers)", p)
	}
	f.state(id, StateQueued)
	checkConsistency(t, f.ctx, f.db)
}

// A task every eligible agent turned down is offered to them again after a
// pause that doubles each round (10 s, 20 s, 40 s, 80 s at most), each
// round recorded as an event; a supervisor's move starts afresh.
func TestRefusedByEveryoneWaitsLongerEachRound(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	a := f.agent(map[string]int{"chat": 1}, nil)
	b := f.agent(map[string]int{"chat": 1}, nil)
	id := f.enqueue(agentdesk.TaskRequest{})
	refuseAll := func() {
		t.Helper()
		for range 2 {
			f.dispatch()
			tk := f.task(id)
			if tk.OfferedTo == nil {
				t.Fatalf("task not offered: %+v", tk)
			}
			f.must(f.e.Reject(f.ctx, f.account, *tk.OfferedTo, id, "busy"))
		}
		f.dispatch() // nobody left: the round ends
	}
	for round, pause := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 80 * time.Second} {
		refuseAll()
		tk := f.task(id)
		if tk.State != StateQueued || tk.RefusedRounds != round+1 || tk.Times.RetryAt == nil || !tk.Times.RetryAt.Equal(f.clock.Now().Add(pause)) {
			t.Fatalf("round %d: task = %+v, retry at %v, want queued, retry in %s", round+1, tk, tk.Times.RetryAt, pause)
		}
		f.clock.Advance(pause - time.Second)
		f.dispatch()
		f.state(id, StateQueued) // still pausing
		f.clock.Advance(time.Second)
	}
	evs, err := f.e.TaskEvents(f.ctx, f.account, id)
	f.must(err)
	var pauses int
	for _, ev := range evs {
		if ev.From == StateQueued && ev.To == StateQueued && strings.Contains(ev.Reason, "refused by every eligible agent") {
			pauses++
		}
	}
	if pauses != 5 {
		t.Fatalf("pause events = %d, want 5: %+v", pauses, evs)
	}
	// A move to another queue clears the pause at once.
	refuseAll()
	other := &Queue{Name: "Escalations", Channels: []agentdesk.Channel{agentdesk.ChannelChat}}
	f.must(f.e.CreateQueue(f.ctx, f.account, other))
	f.must(f.e.MoveTask(f.ctx, f.account, id, MoveTarget{QueueID: other.ID}, 0))
	f.dispatch()
	if tk := f.task(id); tk.State != StateOffered || (*tk.OfferedTo != a && *tk.OfferedTo != b) {
		t.Fatalf("after the move: %+v, want offered", tk)
	}
	checkConsistency(t, f.ctx, f.db)
}

func TestAbandonKeepsWaitAndReleasesOffer(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	id := f.enqueue(agentdesk.TaskRequest{})
	f.clock.Advance(42 * time.Second)
	f.must(f.e.Abandon(f.ctx, f.account, id, "hung up"))
	tk := f.task(id)
	if tk.State != StateAbandoned || tk.Reason != "hung up" || tk.Times.WaitSeconds == nil || *tk.Times.WaitSeconds != 42 {
		t.Fatalf("abandoned task = %+v", tk)
	}
	// Abandoning while offered gives the agent their capacity back.
	a := f.agent(map[string]int{"chat": 1}, nil)
	id2 := f.enqueue(agentdesk.TaskRequest{})
	f.dispatch()
	f.offeredTo(id2, a)
	f.must(f.e.Abandon(f.ctx, f.account, id2, ""))
	id3 := f.enqueue(agentdesk.TaskRequest{})
	f.dispatch()
	f.offeredTo(id3, a)
	if err := f.e.Abandon(f.ctx, f.account, id, ""); !agentdesk.IsKind(err, agentdesk.Conflict) {
		t.Fatalf("abandon twice: %v", err)
	}
	checkConsistency(t, f.ctx, f.db)
}

func TestCallbackKeepsPlace(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	first := f.enqueue(agentdesk.TaskRequest{})
	f.clock.Advance(time.Second)
	second := f.enqueue(agentdesk.TaskRequest{})
	f.clock.Advance(time.Minute)
	if _, err := f.e.RequestCallback(f.ctx, f.account, first, "not a number"); !agentdesk.IsKind(err, agentdesk.Invalid) {
		t.Fatalf("bad number: %v", err)
	}
	cb, err := f.e.RequestCallback(f.ctx, f.account, first, "+49 30 1234567")
	f.must(err)
	f.state(first, StateCancelled)
	p, err := f.e.Position(f.ctx, f.account, cb)
	f.must(err)
	if p.Position != 1 {
		t.Fatalf("callback position = %d, want 1 (the original's place)", p.Position)
	}
	a := f.agent(nil, nil)
	f.dispatch()
	f.offeredTo(cb, a)
	f.state(second, StateQueued) // the call blocks chats
	off := f.pub.find(AgentStream(a), "offer")[0].Data.(Offer)
	if off.Direction != "outbound" || off.Channel != "voice" || off.Callback != "+49 30 1234567" {
		t.Fatalf("callback offer = %+v", off)
	}
	checkConsistency(t, f.ctx, f.db)
}

func TestOverflowAndMaxWait(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	general := f.queue(Queue{Name: "General"})
	special := f.queue(Queue{Name: "Special", RequiredSkills: map[string]int{"rare": 5},
		Overflow: Overflow{QueueID: &general, AfterSeconds: 60}})
	capped := f.queue(Queue{Name: "Capped", RequiredSkills: map[string]int{"rare": 5}, Overflow: Overflow{MaxWaitSeconds: 120}})
	a := f.agent(nil, nil)
	id := f.enqueue(agentdesk.TaskRequest{QueueID: special})
	gone := f.enqueue(agentdesk.TaskRequest{QueueID: capped})
	f.dispatch()
	f.state(id, StateQueued)
	f.clock.Advance(61 * time.Second)
	f.sweep()
	if q := f.task(id).QueueID; q != general {
		t.Fatalf("after overflow queue = %d, want %d", q, general)
	}
	f.dispatch()
	f.offeredTo(id, a)
	f.clock.Advance(60 * time.Second)
	f.sweep()
	tk := f.task(gone)
	if tk.State != StateOverflowed || tk.Reason != "maximum wait reached" {
		t.Fatalf("capped task = %s %q", tk.State, tk.Reason)
	}
	checkConsistency(t, f.ctx, f.db)
}

func TestBusinessHoursOpenAt(t *testing.T) {
	t.Parallel()
	hours := BusinessHours{Timezone: "Europe/Berlin", Days: []OpenSpan{
		{Day: 1, Open: "09:00", Close: "17:00"}, {Day: 2, Open: "09:00", Close: "17:00"}}, Holidays: []string{"2026-11-24"}}
	if err := hours.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		at   time.Time
		open bool
	}{
		{"monday morning", monday10, true},
		{"last minute", time.Date(2026, 11, 23, 15, 59, 0, 0, time.UTC), true},
		{"closing time", time.Date(2026, 11, 23, 16, 0, 0, 0, time.UTC), false},
		{"before opening", time.Date(2026, 11, 23, 7, 59, 0, 0, time.UTC), false},
		{"holiday", time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC), false},
		{"no hours on wednesday", time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := hours.OpenAt(tc.at); got != tc.open {
				t.Fatalf("OpenAt(%s) = %v, want %v", tc.at, got, tc.open)
			}
		})
	}
	if !(BusinessHours{}).OpenAt(monday10) {
		t.Fatal("no hours must mean always open")
	}
	bad := BusinessHours{Timezone: "Mars/Olympus"}
	if err := bad.Validate(); !agentdesk.IsKind(err, agentdesk.Invalid) {
		t.Fatalf("bad zone: %v", err)
	}
}

func TestClosedQueueActions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	f.clock.Advance(10 * time.Hour) // Monday 20:00 UTC, 21:00 in Berlin
	hours := BusinessHours{Timezone: "Europe/Berlin", Days: []OpenSpan{{Day: 1, Open: "09:00", Close: "17:00"}}}
	night := f.queue(Queue{Name: "Night"})
	msg := f.queue(Queue{Name: "Message", Hours: hours, ClosedAction: ClosedMessage})
	ovf := f.queue(Queue{Name: "Overflow", Hours: hours, ClosedAction: ClosedOverflow, Overflow: Overflow{QueueID: &night}})
	wait := f.queue(Queue{Name: "Wait", Hours: hours})
	cb := f.queue(Queue{Name: "Callback", Hours: hours, ClosedAction: ClosedCallback})

	t1 := f.enqueue(agentdesk.TaskRequest{QueueID: msg})
	if tk := f.task(t1); tk.State != StateOverflowed || tk.Reason != "closed" {
		t.Fatalf("closed message: %s %q", tk.State, tk.Reason)
	}
	if got := f.pub.find(TaskStream(t1), "task_state"); len(got) != 1 {
		t.Fatalf("the waiting customer must hear the queue is closed: %v", got)
	}
	t2 := f.enqueue(agentdesk.TaskRequest{QueueID: ovf})
	if tk := f.task(t2); tk.State != StateQueued || tk.QueueID != night {
		t.Fatalf("closed overflow: %s queue %d", tk.State, tk.QueueID)
	}
	t3 := f.enqueue(agentdesk.TaskRequest{QueueID: wait})
	f.state(t3, StateQueued)
	t4 := f.enqueue(agentdesk.TaskRequest{QueueID: cb})
	f.state(t4, StateQueued)
	if got := f.pub.find(TaskStream(t4), "task_state"); len(got) != 1 || got[0].Data.(TaskChange).Reason != "closed: callback offered" {
		t.Fatalf("closed callback: %v", got)
	}
	checkConsistency(t, f.ctx, f.db)
}

func TestWrapUpRequiresReasons(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{WrapUp: 30 * time.Second})
	a := f.agent(map[string]int{"chat": 1}, nil)
	cust := f.customer()
	tick := f.ticket(cust)
	id := f.enqueue(agentdesk.TaskRequest{CustomerID: cust, TicketID: tick})
	f.dispatch()
	f.must(f.e.Accept(f.ctx, f.account, a, id))
	var assignee *int64
	f.must(f.db.QueryRow(f.ctx, `SELECT assignee_id FROM tickets WHERE id = $1`, tick).Scan(&assignee))
	if assignee == nil || *assignee != a {
		t.Fatalf("ticket assignee = %v, want %d", assignee, a)
	}
	f.must(f.e.EndInteraction(f.ctx, f.account, a, id))
	f.state(id, StateWrapping)
	p, err := f.e.Presence(f.ctx, f.account, a)
	f.must(err)
	if p.State != WrapUp {
		t.Fatalf("presence after end = %s, want wrap_up", p.State)
	}
	// In wrap-up the agent gets nothing new.
	next := f.enqueue(agentdesk.TaskRequest{})
	f.dispatch()
	f.state(next, StateQueued)

	contact := f.reason(agentdesk.ContactReason, "Billing question")
	cancel := f.reason(agentdesk.CancellationReason, "Too expensive")
	for _, tc := range []struct {
		name  string
		o     agentdesk.Outcome
		field string
	}{
		{"no contact reason", agentdesk.Outcome{ResolutionCode: agentdesk.ResolutionSolved}, "outcome.contact_reason_id"},
		{"cancellation without reason", agentdesk.Outcome{ContactReasonID: &contact, ResolutionCode: agentdesk.ResolutionCancellation}, "outcome.cancellation_reason_id"},
		{"contact reason of the wrong kind", agentdesk.Outcome{ContactReasonID: &cancel}, "outcome.contact_reason_id"},
		{"cancellation reason of the wrong kind", agentdesk.Outcome{ContactReasonID: &contact, ResolutionCode: agentdesk.ResolutionCancellation, CancellationReasonID: &contact}, "outcome.cancellation_reason_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := f.e.Complete(f.ctx, f.account, a, id, tc.o)
			var de *agentdesk.Error
			if !errors.As(err, &de) || de.Kind != agentdesk.Invalid || de.Field != tc.field {
				t.Fatalf("Complete = %v, want invalid %s", err, tc.field)
			}
		})
	}
	f.state(id, StateWrapping)
	f.must(f.e.Complete(f.ctx, f.account, a, id, agentdesk.Outcome{ContactReasonID: &contact,
		ResolutionCode: agentdesk.ResolutionCancellation, CancellationReasonID: &cancel, RevenueLostCents: 1999}))
	f.state(id, StateCompleted)
	var cr, cc *int64
	var code string
	f.must(f.db.QueryRow(f.ctx, `SELECT contact_reason_id, cancellation_reason_id, resolution_code FROM tickets WHERE id = $1`, tick).Scan(&cr, &cc, &code))
	if cr == nil || *cr != contact || cc == nil || *cc != cancel || code != "cancellation" {
		t.Fatalf("ticket outcome = %v %v %q", cr, cc, code)
	}
	p, _ = f.e.Presence(f.ctx, f.account, a)
	if p.State != Available {
		t.Fatalf("after the last wrap-up the agent is %s, want available", p.State)
	}
	f.dispatch()
	f.offeredTo(next, a)

	// The wrap-up timer makes the agent available even before completion.
	f.must(f.e.Accept(f.ctx, f.account, a, next))
	f.must(f.e.EndInteraction(f.ctx, f.account, a, next))
	f.clock.Advance(29 * time.Second)
	f.sweep()
	if p, _ := f.e.Presence(f.ctx, f.account, a); p.State != WrapUp {
		t.Fatalf("at 29 s: %s", p.State)
	}
	f.clock.Advance(time.Second)
	f.sweep()
	if p, _ := f.e.Presence(f.ctx, f.account, a); p.State != Available {
		t.Fatalf("at 30 s: %s", p.State)
	}
	f.state(next, StateWrapping) // the reasons are still owed
	checkConsistency(t, f.ctx, f.db)
}

func TestSupervisorActions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	a := f.agent(map[string]int{"chat": 1}, nil)
	b := f.agent(map[string]int{"chat": 1}, nil)
	sup := f.agent(map[string]int{"chat": 0}, nil)
	other := f.queue(Queue{Name: "Other", RequiredSkills: map[string]int{"x": 1}})
	t1 := f.enqueue(agentdesk.TaskRequest{})
	t2 := f.enqueue(agentdesk.TaskRequest{})
	// Priority moves t2 ahead.
	f.must(f.e.SetPriority(f.ctx, f.account, t2, agentdesk.PriorityUrgent, sup))
	// Move t1 to a queue nobody can serve.
	f.must(f.e.MoveTask(f.ctx, f.account, t1, MoveTarget{QueueID: other}, sup))
	f.must(f.e.ForcePresence(f.ctx, f.account, b, Away, "coaching", sup))
	f.dispatch()
	f.offeredTo(t2, a)
	f.state(t1, StateQueued)
	// Push t1 to b directly although b is away and lacks the skill; a is full.
	if err := f.e.MoveTask(f.ctx, f.account, t1, MoveTarget{AgentID: a}, sup); !agentdesk.IsKind(err, agentdesk.Conflict) {
		t.Fatalf("move to a full agent: %v", err)
	}
	f.must(f.e.MoveTask(f.ctx, f.account, t1, MoveTarget{AgentID: b}, sup))
	f.offeredTo(t1, b)
	// Transfer an assigned task from a to b: b is full with t1's offer.
	f.must(f.e.Accept(f.ctx, f.account, a, t2))
	if err := f.e.MoveTask(f.ctx, f.account, t2, MoveTarget{AgentID: b}, sup); !agentdesk.IsKind(err, agentdesk.Conflict) {
		t.Fatalf("transfer to a full agent: %v", err)
	}
	f.must(f.e.Reject(f.ctx, f.account, b, t1, ""))
	f.must(f.e.MoveTask(f.ctx, f.account, t2, MoveTarget{AgentID: b}, sup))
	if tk := f.task(t2); tk.AgentID == nil || *tk.AgentID != b {
		t.Fatalf("after transfer agent = %v", tk.AgentID)
	}
	checkConsistency(t, f.ctx, f.db)
}

func TestQueueStatsAndPosition(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{DefaultHandleTime: time.Minute})
	q := f.queue(Queue{Name: "Sales", ServiceLevel: ServiceLevel{Seconds: 20, Percent: 80}})
	a := f.agent(map[string]int{"chat": 1}, nil)
	t1 := f.enqueue(agentdesk.TaskRequest{QueueID: q})
	f.dispatch()
	f.clock.Advance(10 * time.Second)
	f.must(f.e.Accept(f.ctx, f.account, a, t1)) // answered in 10 s: within target
	t2 := f.enqueue(agentdesk.TaskRequest{QueueID: q})
	t3 := f.enqueue(agentdesk.TaskRequest{QueueID: q})
	f.clock.Advance(30 * time.Second)
	f.must(f.e.Abandon(f.ctx, f.account, t2, "")) // abandoned after target
	p, err := f.e.Position(f.ctx, f.account, t3)
	f.must(err)
	if p.Position != 1 || p.EWTSeconds != 60 {
		t.Fatalf("position = %+v, want 1st with 60 s (1 busy agent, 1 min handle time)", p)
	}
	stats, err := f.e.QueueStats(f.ctx, f.account)
	f.must(err)
	var s QueueStats
	for _, x := range stats {
		if x.QueueID == q {
			s = x
		}
	}
	if s.Waiting != 1 || s.LongestWaitSeconds != 30 || s.AnsweredToday != 1 || s.AbandonedToday != 1 ||
		s.ServiceLevelToday != 50 || s.AgentsBusy != 1 || s.AgentsAvailable != 0 {
		t.Fatalf("stats = %+v", s)
	}
	checkConsistency(t, f.ctx, f.db)
	f.must(f.e.PublishStats(f.ctx))
	if got := f.pub.find(SupervisorStream(f.account), "queue_stats"); len(got) != 1 {
		t.Fatalf("queue_stats events: %d", len(got))
	}
	if got := f.pub.find(TaskStream(t3), "queue_position"); len(got) != 1 || got[0].Data.(Position).Position != 1 {
		t.Fatalf("queue_position events for t3: %d", len(got))
	}
	// Unchanged positions are not sent again; a change is.
	f.must(f.e.PublishStats(f.ctx))
	if got := f.pub.find(TaskStream(t3), "queue_position"); len(got) != 1 {
		t.Fatalf("unchanged position re-sent: %d events", len(got))
	}
	t4 := f.enqueue(agentdesk.TaskRequest{QueueID: q, Priority: agentdesk.PriorityUrgent})
	f.must(f.e.PublishStats(f.ctx))
	got := f.pub.find(TaskStream(t3), "queue_position")
	if len(got) != 2 || got[1].Data.(Position).Position != 2 {
		t.Fatalf("after an urgent task arrived, t3's positions: %+v", got)
	}
	if got := f.pub.find(TaskStream(t4), "queue_position"); len(got) != 1 || got[0].Data.(Position).Position != 1 {
		t.Fatalf("t4 positions: %+v", got)
	}
}

func TestQueueAdmin(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	q := Queue{Name: "VIP", Channels: []agentdesk.Channel{agentdesk.ChannelChat}, RequiredSkills: map[string]int{"vip": 3},
		Relaxation: []RelaxStep{{AfterSeconds: 90, DropSkills: true}, {AfterSeconds: 30, MaxLevel: 1}}}
	f.must(f.e.CreateQueue(f.ctx, f.account, &q))
	if q.Relaxation[0].AfterSeconds != 30 {
		t.Fatalf("relaxation not ordered: %+v", q.Relaxation)
	}
	if err := f.e.CreateQueue(f.ctx, f.account, &Queue{Name: "VIP"}); !agentdesk.IsKind(err, agentdesk.Conflict) {
		t.Fatalf("duplicate name: %v", err)
	}
	q.Priority = 50
	f.must(f.e.UpdateQueue(f.ctx, f.account, &q))
	f.must(f.e.SetBusinessHours(f.ctx, f.account, q.ID, BusinessHours{Timezone: "America/New_York", Days: []OpenSpan{{Day: 3, Open: "08:00", Close: "20:00"}}, Holidays: []string{"2026-12-25"}}))
	got, err := f.e.Queue(f.ctx, f.account, q.ID)
	f.must(err)
	if got.Priority != 50 || got.Hours.Timezone != "America/New_York" || len(got.Hours.Holidays) != 1 || got.Hours.Holidays[0] != "2026-12-25" {
		t.Fatalf("queue = %+v", got)
	}
	if _, err := f.e.Enqueue(f.ctx, agentdesk.TaskRequest{AccountID: f.account, Channel: agentdesk.ChannelVoice, QueueID: q.ID}); !agentdesk.IsKind(err, agentdesk.Invalid) {
		t.Fatalf("voice into a chat queue: %v", err)
	}
	id := f.enqueue(agentdesk.TaskRequest{QueueID: q.ID})
	if err := f.e.DeleteQueue(f.ctx, f.account, q.ID); !agentdesk.IsKind(err, agentdesk.Conflict) {
		t.Fatalf("delete used queue: %v", err)
	}
	_ = id
	empty := f.queue(Queue{Name: "Empty"})
	f.must(f.e.DeleteQueue(f.ctx, f.account, empty))
	// Another account sees none of it.
	var other int64
	f.must(f.db.QueryRow(f.ctx, `INSERT INTO accounts (name) VALUES ('Other') RETURNING id`).Scan(&other))
	if _, err := f.e.Queue(f.ctx, other, q.ID); !agentdesk.IsKind(err, agentdesk.NotFound) {
		t.Fatalf("cross-account read: %v", err)
	}
	if _, err := f.e.Task(f.ctx, other, id); !agentdesk.IsKind(err, agentdesk.NotFound) {
		t.Fatalf("cross-account task read: %v", err)
	}
	// Default queues are created per channel on first use.
	e1 := f.enqueue(agentdesk.TaskRequest{Channel: agentdesk.ChannelForm})
	e2 := f.enqueue(agentdesk.TaskRequest{Channel: agentdesk.ChannelEmail})
	if f.task(e1).QueueID != f.task(e2).QueueID {
		t.Fatal("forms and emails should share the default email queue")
	}
	// Skills and capacity.
	a := f.agent(nil, nil)
	f.must(f.e.SetAgentSkills(f.ctx, f.account, a, map[string]int{"vip": 4, "french": 2}))
	f.must(f.e.SetAgentCapacity(f.ctx, f.account, a, map[agentdesk.Channel]int{agentdesk.ChannelChat: 6}))
	ar, err := f.e.AgentRouting(f.ctx, f.account, a)
	f.must(err)
	if ar.Skills["vip"] != 4 || ar.Skills["french"] != 2 || ar.Capacity[agentdesk.ChannelChat] != 6 || ar.Capacity[agentdesk.ChannelVoice] != 1 {
		t.Fatalf("agent routing = %+v", ar)
	}
	if err := f.e.SetAgentSkills(f.ctx, f.account, a, map[string]int{"vip": 9}); !agentdesk.IsKind(err, agentdesk.Invalid) {
		t.Fatalf("level 9: %v", err)
	}
	if err := f.e.SetPresence(f.ctx, other, a, Available, ""); !agentdesk.IsKind(err, agentdesk.NotFound) && !agentdesk.IsKind(err, agentdesk.Invalid) {
		t.Fatalf("cross-account presence: %v", err)
	}
}

// A head-of-line task nobody can take must not keep the tasks behind it from
// the free agents in the same pass.
func TestUnmatchableHeadDoesNotBlock(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	a := f.agent(map[string]int{"chat": 1}, nil)
	stuck := f.enqueue(agentdesk.TaskRequest{Skills: map[string]int{"klingon": 5}, Priority: agentdesk.PriorityUrgent})
	plain := f.enqueue(agentdesk.TaskRequest{})
	if n := f.dispatch(); n != 1 {
		t.Fatalf("offers = %d, want 1", n)
	}
	f.state(stuck, StateQueued)
	f.offeredTo(plain, a)
}

// AlsoInTx writes commit or roll back with the engine's change: a failing
// hook leaves no queue behind, a succeeding one runs once, in the change's
// transaction.
func TestAlsoInTxCommitsWithTheChange(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	failing := AlsoInTx(f.ctx, func(context.Context, pgx.Tx) error { return errors.New("audit store down") })
	if err := f.e.CreateQueue(failing, f.account, &Queue{Name: "Lost", Channels: []agentdesk.Channel{agentdesk.ChannelChat}}); err == nil {
		t.Fatal("create with a failing hook succeeded")
	}
	var n int
	f.must(f.db.QueryRow(f.ctx, `SELECT count(*) FROM queues WHERE account_id = $1 AND name = 'Lost'`, f.account).Scan(&n))
	if n != 0 {
		t.Fatalf("queue written without its hook: %d rows", n)
	}
	runs := 0
	ok := AlsoInTx(f.ctx, func(ctx context.Context, tx pgx.Tx) error {
		runs++
		var seen int
		// The queue is visible inside the hook: same transaction.
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM queues WHERE account_id = $1 AND name = 'Kept'`, f.account).Scan(&seen); err != nil {
			return err
		}
		if seen != 1 {
			return errors.New("hook ran outside the change's transaction")
		}
		return nil
	})
	q := &Queue{Name: "Kept", Channels: []agentdesk.Channel{agentdesk.ChannelChat}}
	f.must(f.e.CreateQueue(ok, f.account, q))
	f.must(f.e.SetBusinessHours(ok, f.account, q.ID, BusinessHours{Timezone: "UTC"}))
	if runs != 1 {
		t.Fatalf("hook ran %d times, want once", runs)
	}
}

// Enqueue with a publisher that takes committed events is one statement:
// the task, the offer made on arrival and both events are stored, and the
// offer is published once they are. A function given to AlsoInTx still
// joins the task in one transaction, and its failure leaves no task.
func TestEnqueueAsOneStatement(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	a := f.agent(map[string]int{"chat": 1}, nil)
	var seen []State
	f.pub.mu.Lock()
	f.pub.onPub = func(e Event) {
		if e.Type == "offer" {
			// Visible to another connection: committed.
			seen = append(seen, f.task(e.Data.(Offer).TaskID).State)
		}
	}
	f.pub.mu.Unlock()
	id := f.enqueue(agentdesk.TaskRequest{})
	if len(seen) != 1 || seen[0] != StateOffered {
		t.Fatalf("offer published %d times, task states seen %v", len(seen), seen)
	}
	f.offeredTo(id, a)
	var events int
	f.must(f.db.QueryRow(f.ctx, `SELECT count(*) FROM task_events WHERE task_id = $1`, id).Scan(&events))
	if events != 2 {
		t.Fatalf("%d task events, want queued and offered", events)
	}

	failing := AlsoInTx(f.ctx, func(context.Context, pgx.Tx) error { return errors.New("audit store down") })
	if _, err := f.e.Enqueue(failing, agentdesk.TaskRequest{AccountID: f.account, Channel: agentdesk.ChannelChat}); err == nil {
		t.Fatal("enqueue with a failing hook succeeded")
	}
	var tasks int
	f.must(f.db.QueryRow(f.ctx, `SELECT count(*) FROM tasks WHERE account_id = $1`, f.account).Scan(&tasks))
	if tasks != 1 {
		t.Fatalf("%d tasks after the failed enqueue, want 1", tasks)
	}
	checkConsistency(t, f.ctx, f.db)
}

// The enqueue runs with its generic plan, and leaves the caller's
// transaction planning as the caller had set it.
func TestEnqueueLeavesPlanSettingAsFound(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	tx, err := f.db.Begin(f.ctx)
	f.must(err)
	defer tx.Rollback(f.ctx) //nolint:errcheck
	_, err = tx.Exec(f.ctx, `SET LOCAL plan_cache_mode = force_custom_plan`)
	f.must(err)
	_, err = f.e.EnqueueTx(f.ctx, tx, agentdesk.TaskRequest{AccountID: f.account, Channel: agentdesk.ChannelChat})
	f.must(err)
	var mode string
	f.must(tx.QueryRow(f.ctx, `SELECT current_setting('plan_cache_mode')`).Scan(&mode))
	if mode != "force_custom_plan" {
		t.Fatalf("plan_cache_mode in the caller's transaction is %q after the enqueue", mode)
	}
	f.must(tx.Commit(f.ctx))
	for range 5 {
		f.enqueue(agentdesk.TaskRequest{}) // one statement, outside any transaction
		f.must(f.db.QueryRow(f.ctx, `SELECT current_setting('plan_cache_mode')`).Scan(&mode))
		if mode != "auto" {
			t.Fatalf("plan_cache_mode on a pooled connection is %q after an enqueue", mode)
		}
	}
}

// Accept refuses an offer that is not the agent's, one that expired before
// any sweep noticed, and a task that does not exist, each with its reason,
// and leaves the task, the agents and the day's counts as they were.
func TestAcceptRefusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	a := f.agent(map[string]int{"chat": 1}, nil)
	id := f.enqueue(agentdesk.TaskRequest{})
	f.offeredTo(id, a)
	b := f.agent(map[string]int{"chat": 1}, nil)
	snapshot := func() string {
		var s string
		f.must(f.db.QueryRow(f.ctx, `
SELECT (SELECT row(state, offered_to, agent_id, assigned_at)::text FROM tasks WHERE id = $1)
	|| (SELECT string_agg(row(agent_id, load_chat, missed_offers, last_assigned_at)::text, ',' ORDER BY agent_id) FROM agent_presence)
	|| (SELECT count(*) FROM task_events WHERE task_id = $1)::text
	|| coalesce((SELECT sum(answered)::text FROM queue_day_counts), '-')`, id).Scan(&s))
		return s
	}
	before := snapshot()
	for _, c := range []struct {
		name        string
		agent, task int64
		kind        agentdesk.Kind
		says        string
	}{
		{"another agent's offer", b, id, agentdesk.Conflict, "not offered to you"},
		{"unknown task", a, id + 1000, agentdesk.NotFound, "not found"},
	} {
		err := f.e.Accept(f.ctx, f.account, c.agent, c.task)
		if !agentdesk.IsKind(err, c.kind) || !strings.Contains(err.Error(), c.says) {
			t.Fatalf("%s: %v, want %s saying %q", c.name, err, c.kind, c.says)
		}
	}
	f.clock.Advance(21 * time.Second) // past the 20 s offer, no sweep yet
	err := f.e.Accept(f.ctx, f.account, a, id)
	if !agentdesk.IsKind(err, agentdesk.Conflict) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired offer: %v", err)
	}
	if after := snapshot(); after != before {
		t.Fatalf("a refused accept changed the store:\n%s\n%s", before, after)
	}
	f.clock.Advance(-2 * time.Second) // back within the offer
	f.must(f.e.Accept(f.ctx, f.account, a, id))
	f.state(id, StateAssigned)
	checkConsistency(t, f.ctx, f.db)
}

// A completion that is refused says why and changes nothing, on both of
// Complete's paths: the single statement, and the transaction an AlsoInTx
// function joins. The one that goes through frees the agent's capacity,
// writes the event and tells the agent's desk.
func TestCompleteRefusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	a := f.agent(map[string]int{"chat": 1}, nil)
	b := f.agent(map[string]int{"chat": 1}, nil)
	id := f.enqueue(agentdesk.TaskRequest{})
	f.offeredTo(id, a)
	f.must(f.e.Accept(f.ctx, f.account, a, id))
	contact := f.reason(agentdesk.ContactReason, "Billing question")
	cancel := f.reason(agentdesk.CancellationReason, "Too expensive")
	unknownReason := contact + 1000
	snapshot := func() string {
		var s string
		f.must(f.db.QueryRow(f.ctx, `
SELECT (SELECT row(state, agent_id, completed_at, contact_reason_id)::text FROM tasks WHERE id = $1)
	|| (SELECT string_agg(row(agent_id, state, load_chat)::text, ',' ORDER BY agent_id) FROM agent_presence)
	|| (SELECT count(*) FROM task_events WHERE task_id = $1)::text`, id).Scan(&s))
		return s
	}
	before := snapshot()
	txPath := AlsoInTx(f.ctx, func(context.Context, pgx.Tx) error { return nil })
	for _, ctx := range []context.Context{f.ctx, txPath} {
		for _, c := range []struct {
			name        string
			agent, task int64
			o           agentdesk.Outcome
			kind        agentdesk.Kind
			says        string
		}{
			{"another agent's task", b, id, agentdesk.Outcome{ContactReasonID: &contact}, agentdesk.Conflict, "not yours to complete"},
			{"unknown task", a, id + 1000, agentdesk.Outcome{ContactReasonID: &contact}, agentdesk.NotFound, "not found"},
			{"contact reason of the wrong kind", a, id, agentdesk.Outcome{ContactReasonID: &cancel}, agentdesk.Invalid, "outcome.contact_reason_id"},
			{"contact reason of another account", a, id, agentdesk.Outcome{ContactReasonID: &unknownReason}, agentdesk.Invalid, "outcome.contact_reason_id"},
		} {
			err := f.e.Complete(ctx, f.account, c.agent, c.task, c.o)
			if !agentdesk.IsKind(err, c.kind) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("%s (AlsoInTx %v): %v, want %s saying %q", c.name, ctx == txPath, err, c.kind, c.says)
			}
		}
	}
	if after := snapshot(); after != before {
		t.Fatalf("a refused completion changed the store:\n%s\n%s", before, after)
	}
	f.must(f.e.Complete(f.ctx, f.account, a, id, agentdesk.Outcome{ContactReasonID: &contact}))
	f.state(id, StateCompleted)
	if got := f.pub.find(AgentStream(a), "task_state"); len(got) != 1 || got[0].Data.(TaskChange).State != StateCompleted {
		t.Fatalf("task_state events on the agent's stream: %+v", got)
	}
	err := f.e.Complete(f.ctx, f.account, a, id, agentdesk.Outcome{ContactReasonID: &contact})
	if !agentdesk.IsKind(err, agentdesk.Conflict) || !strings.Contains(err.Error(), "it is completed") {
		t.Fatalf("completed twice: %v", err)
	}
	checkConsistency(t, f.ctx, f.db) // the agent's load is back to 0
}

// A completion wakes the dispatchers (this engine's, and the others'
// through NOTIFY) only when the account has tasks waiting for the capacity
// it frees; with every contact offered on arrival, most wake nobody.
// NOTIFYs arrive in commit order, so the test's own marker arriving first
// shows that the completion before it sent none.
func TestCompletionWakesOnlyForWaitingTasks(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{WrapUp: -1})
	a := f.agent(map[string]int{"chat": 1}, nil)
	reason := f.reason(agentdesk.ContactReason, "Question")
	conn, err := pgx.ConnectConfig(f.ctx, f.db.Config().ConnConfig.Copy())
	f.must(err)
	defer conn.Close(f.ctx)
	_, err = conn.Exec(f.ctx, `LISTEN agentdesk_routing`)
	f.must(err)
	next := func() string {
		t.Helper()
		ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
		defer cancel()
		n, err := conn.WaitForNotification(ctx)
		f.must(err)
		return n.Payload
	}
	marker := func() {
		_, err := f.db.Exec(f.ctx, `SELECT pg_notify('agentdesk_routing', 'marker')`)
		f.must(err)
	}
	forAccount := fmt.Sprintf("%d/", f.account)
	handleAndComplete := func(ctx context.Context, id int64) {
		t.Helper()
		f.offeredTo(id, a)
		f.must(f.e.Accept(f.ctx, f.account, a, id))
		f.must(f.e.Complete(ctx, f.account, a, id, agentdesk.Outcome{ContactReasonID: &reason}))
	}

	// On both of Complete's paths: its own statement, and a transaction.
	txPath := AlsoInTx(f.ctx, func(context.Context, pgx.Tx) error { return nil })
	for _, ctx := range []context.Context{f.ctx, txPath} {
		handleAndComplete(ctx, f.enqueue(agentdesk.TaskRequest{}))
		marker()
		if got := next(); got != "marker" {
			t.Fatalf("a completion with nobody waiting woke the dispatchers (%q; AlsoInTx %v)", got, ctx == txPath)
		}
	}

	second := f.enqueue(agentdesk.TaskRequest{})
	f.offeredTo(second, a)
	f.must(f.e.Accept(f.ctx, f.account, a, second))
	third := f.enqueue(agentdesk.TaskRequest{}) // waits: a is full
	f.state(third, StateQueued)
	if got := next(); !strings.HasPrefix(got, forAccount) {
		t.Fatalf("the waiting task's wake-up: %q", got)
	}
	f.must(f.e.Complete(f.ctx, f.account, a, second, agentdesk.Outcome{ContactReasonID: &reason}))
	if got := next(); !strings.HasPrefix(got, forAccount) {
		t.Fatalf("a completion with a task waiting did not wake the dispatchers (%q)", got)
	}
	f.dispatch()
	handleAndComplete(f.ctx, third)
	checkConsistency(t, f.ctx, f.db)
}

// A rejection while the other eligible agents are merely busy is not
// "refused by everyone": the task waits without a pause and goes to the
// first agent with room; an agent who signs in ends a pause at once.
func TestRejectionWhileOthersAreBusyDoesNotPause(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	a := f.agent(map[string]int{"chat": 1}, nil)
	first := f.enqueue(agentdesk.TaskRequest{})
	f.dispatch()
	f.offeredTo(first, a)
	f.must(f.e.Accept(f.ctx, f.account, a, first)) // a is now full
	b := f.agent(map[string]int{"chat": 1}, nil)
	second := f.enqueue(agentdesk.TaskRequest{})
	f.dispatch()
	f.offeredTo(second, b)
	f.must(f.e.Reject(f.ctx, f.account, b, second, "not mine"))
	f.dispatch() // nobody with room: a is busy, b refused
	if tk := f.task(second); tk.State != StateQueued || tk.RefusedRounds != 0 || tk.Times.RetryAt != nil {
		t.Fatalf("task paused although a could still take it: %+v", tk)
	}
	c := f.agent(map[string]int{"chat": 1}, nil)
	f.dispatch()
	f.offeredTo(second, c)

	// Everyone refuses a third task: it pauses; a newcomer ends the pause.
	f.must(f.e.Accept(f.ctx, f.account, c, second))
	third := f.enqueue(agentdesk.TaskRequest{})
	// a and c sign out; b, who has room, is the only one left.
	f.must(f.e.SetPresence(f.ctx, f.account, a, Offline, ""))
	f.must(f.e.SetPresence(f.ctx, f.account, c, Offline, ""))
	f.dispatch()
	f.offeredTo(third, b)
	f.must(f.e.Reject(f.ctx, f.account, b, third, "no"))
	f.dispatch()
	if tk := f.task(third); tk.RefusedRounds != 1 || tk.Times.RetryAt == nil {
		t.Fatalf("task not paused after everyone refused: %+v", tk)
	}
	d := f.agent(map[string]int{"chat": 1}, nil)
	f.dispatch()
	f.offeredTo(third, d)
	checkConsistency(t, f.ctx, f.db)
}

// "Today" is the queue's own calendar day: the counts start afresh at its
// local midnight, not at UTC's.
func TestQueueStatsTodayIsTheQueuesDay(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	// 10:00 UTC is 23:00 in Auckland (UTC+13 in November): one hour to midnight.
	q := f.queue(Queue{Name: "Kiwi", Hours: BusinessHours{Timezone: "Pacific/Auckland"}})
	a := f.agent(map[string]int{"chat": 2}, nil)
	first := f.enqueue(agentdesk.TaskRequest{QueueID: q})
	f.dispatch()
	f.must(f.e.Accept(f.ctx, f.account, a, first))
	today := func() QueueStats {
		t.Helper()
		stats, err := f.e.QueueStats(f.ctx, f.account)
		f.must(err)
		for _, s := range stats {
			if s.QueueID == q {
				return s
			}
		}
		t.Fatal("queue missing from the stats")
		return QueueStats{}
	}
	if s := today(); s.AnsweredToday != 1 {
		t.Fatalf("before midnight: %+v", s)
	}
	f.clock.Advance(time.Hour) // 00:00 in Auckland, 11:00 UTC
	if s := today(); s.AnsweredToday != 0 || s.AbandonedToday != 0 || s.ServiceLevelToday != 100 {
		t.Fatalf("after the queue's midnight: %+v", s)
	}
	second := f.enqueue(agentdesk.TaskRequest{QueueID: q})
	f.must(f.e.Abandon(f.ctx, f.account, second, "hung up"))
	if s := today(); s.AnsweredToday != 0 || s.AbandonedToday != 1 {
		t.Fatalf("abandoned after midnight: %+v", s)
	}
	checkConsistency(t, f.ctx, f.db)
}

// The live stats run every second on every busy account: what they read
// must not grow with the queue's history. A queue with 20,000 contacts, 200
// of them offered now: the newest by enqueued_at, but spread over the
// table's pages as rows of a busy table are. The oldest offered task was
// once found by walking the queue's tasks in enqueued_at order (the planner
// expected to meet an offered one within a hundred rows; they are all at
// the end): every contact the queue ever had.
func TestQueueStatsDoNotReadHistory(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	q := f.queue(Queue{Name: "Support"})
	a := f.agent(map[string]int{"chat": 1}, nil)
	_, err := f.db.Exec(f.ctx, `
INSERT INTO tasks (account_id, queue_id, channel, capacity_channel, state, priority, priority_name,
	enqueued_at, queue_entered_at, updated_at, agent_id, offered_to, offer_expires_at,
	assigned_at, ended_at, completed_at, closed_at, wait_seconds)
SELECT $1, $2, 'chat', 'chat', s.state, 200, 'normal', s.t, s.t, s.t, s.agent, s.offered_to, s.expires,
	s.done, s.done, s.done, s.done, s.wait
FROM generate_series(1, 20000) g CROSS JOIN LATERAL (
	SELECT 'offered' AS state, $4::timestamptz - interval '42 seconds' + (g - 100) * interval '1 ms' AS t,
		NULL::bigint AS agent, $3::bigint AS offered_to, $4::timestamptz + interval '20 seconds' AS expires,
		NULL::timestamptz AS done, NULL::int AS wait
	WHERE g % 100 = 0
	UNION ALL
	SELECT 'completed', $4::timestamptz - interval '1 hour' - g * interval '1 second', $3, NULL, NULL,
		$4::timestamptz - interval '1 hour', 0
	WHERE g % 100 <> 0
) s`, f.account, q, a, monday10)
	f.must(err)
	_, err = f.db.Exec(f.ctx, `ANALYZE tasks`)
	f.must(err)

	stats, err := f.e.QueueStats(f.ctx, f.account)
	f.must(err)
	if len(stats) != 1 || stats[0].Offered != 200 || stats[0].Waiting != 0 || stats[0].LongestWaitSeconds != 42 {
		t.Fatalf("stats = %+v, want 200 offered tasks, the oldest waiting 42 s", stats)
	}
	var plan []struct {
		Plan struct {
			SharedHit  int `json:"Shared Hit Blocks"`
			SharedRead int `json:"Shared Read Blocks"`
		}
	}
	f.must(f.db.QueryRow(f.ctx, `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) `+queueStatsQuery, f.account, f.clock.Now()).Scan(&plan))
	// About 200 pages: one per offered task, spread as they are. Walking
	// the history read 933 here.
	if pages := plan[0].Plan.SharedHit + plan[0].Plan.SharedRead; pages > 500 {
		t.Fatalf("the stats read %d pages: they walk the queue's history", pages)
	}
}

// A contact that arrives while an agent is free and nobody waits ahead of it
// is offered in the transaction that creates it: no dispatch pass, the
// reservation and both events commit with it, and the offer reaches the
// agent only once that transaction has committed.
func TestOfferOnArrival(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	a := f.agent(map[string]int{"chat": 2}, nil)
	var seenCommitted []bool
	f.pub.onPub = func(e Event) {
		if e.Type != "offer" {
			return
		}
		var state string
		f.must(f.db.QueryRow(f.ctx, `SELECT state FROM tasks WHERE id = $1`, e.Data.(Offer).TaskID).Scan(&state))
		seenCommitted = append(seenCommitted, state == "offered")
	}
	id := f.enqueue(agentdesk.TaskRequest{})
	f.offeredTo(id, a)
	if len(seenCommitted) != 1 || !seenCommitted[0] {
		t.Fatalf("offer delivered %v, want once, after its commit", seenCommitted)
	}
	evs, err := f.e.TaskEvents(f.ctx, f.account, id)
	f.must(err)
	if len(evs) != 2 || evs[0].To != StateQueued || evs[1].From != StateQueued || evs[1].To != StateOffered ||
		evs[1].AgentID == nil || *evs[1].AgentID != a {
		t.Fatalf("events %+v, want new→queued then queued→offered to %d", evs, a)
	}
	p, err := f.e.Presence(f.ctx, f.account, a)
	f.must(err)
	if p.Load[agentdesk.ChannelChat] != 1 {
		t.Fatalf("chat load %d, want 1", p.Load[agentdesk.ChannelChat])
	}

	// The caller's transaction rolls back: no task, no reservation, no
	// offer delivered.
	boom := errors.New("rolled back")
	err = postgres.InTx(f.ctx, f.db, func(tx pgx.Tx) error {
		if _, err := f.e.EnqueueTx(f.ctx, tx, agentdesk.TaskRequest{AccountID: f.account, Channel: agentdesk.ChannelChat}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	p, err = f.e.Presence(f.ctx, f.account, a)
	f.must(err)
	if p.Load[agentdesk.ChannelChat] != 1 || len(seenCommitted) != 1 {
		t.Fatalf("after rollback: chat load %d, offers delivered %d; want 1 and 1", p.Load[agentdesk.ChannelChat], len(seenCommitted))
	}
	checkConsistency(t, f.ctx, f.db)
}

// A newcomer does not jump the line: while a task of its channel with as
// high a priority waits, it queues behind it even if an agent is free, and
// the dispatcher decides in the line's order. A waiting task of lower
// priority, or of another channel, does not hold it back.
func TestArrivalQueuesBehindTheLine(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	a := f.agent(map[string]int{"chat": 1, "email": 1}, nil)
	// Nobody has the skill: this one waits.
	stuck := f.enqueue(agentdesk.TaskRequest{Skills: map[string]int{"klingon": 5}})
	f.state(stuck, StateQueued)
	plain := f.enqueue(agentdesk.TaskRequest{})
	f.state(plain, StateQueued) // a is free, but stuck waited first
	f.dispatch()
	f.offeredTo(plain, a) // stuck could not take a; the line moves on
	f.handle(plain, a)

	mail := f.enqueue(agentdesk.TaskRequest{Channel: agentdesk.ChannelEmail})
	f.offeredTo(mail, a) // nothing waits on email
	urgent := f.enqueue(agentdesk.TaskRequest{Priority: agentdesk.PriorityUrgent})
	f.offeredTo(urgent, a) // stuck's lower priority does not hold it
	f.state(stuck, StateQueued)
	checkConsistency(t, f.ctx, f.db)
}

// New tasks follow a queue's rules as they are when the task is inserted:
// a change of the queue or of the channel's default queue, made by another
// engine (another process), is seen by the next contact.
func TestEnqueueFollowsQueueChanges(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	f.clock.Advance(10 * time.Hour) // Monday 20:00 UTC, 21:00 in Berlin
	q := f.queue(Queue{Name: "Sales"})
	t1 := f.enqueue(agentdesk.TaskRequest{QueueID: q})
	f.state(t1, StateQueued) // nobody signed in

	// Closed with a message, by another engine (another process).
	other := New(f.db, f.clock, f.e.log, &recorder{}, Config{})
	got, err := other.Queue(f.ctx, f.account, q)
	f.must(err)
	got.Hours = BusinessHours{Timezone: "Europe/Berlin", Days: []OpenSpan{{Day: 1, Open: "09:00", Close: "17:00"}}}
	got.ClosedAction = ClosedMessage
	f.must(other.UpdateQueue(f.ctx, f.account, got))
	t2 := f.enqueue(agentdesk.TaskRequest{QueueID: q})
	if tk := f.task(t2); tk.State != StateOverflowed || tk.Reason != "closed" {
		t.Fatalf("after the queue closed: %s %q", tk.State, tk.Reason)
	}

	// The channel's default moves to another queue.
	d1 := f.enqueue(agentdesk.TaskRequest{}) // the channel's default queue
	first := f.task(d1).QueueID
	night := f.queue(Queue{Name: "Night"})
	f.must(other.SetDefaultQueue(f.ctx, f.account, agentdesk.ChannelChat, night))
	d2 := f.enqueue(agentdesk.TaskRequest{})
	if tk := f.task(d2); tk.QueueID != night || first == night {
		t.Fatalf("default queue: task in %d, want %d (was %d)", tk.QueueID, night, first)
	}
	checkConsistency(t, f.ctx, f.db)
}

// The checks for waiting tasks read the line, never the history, whatever
// the statistics say. With many tasks queued at the last ANALYZE (a busy
// center), PostgreSQL priced a sequential scan as meeting a queued task in
// its first pages; the queued tasks are the newest, behind the whole
// history, so each completion and each arriving contact read the whole
// tasks table (1,500 pages with a day of history; 18 ms a completion
// under load). Checked on the engine's own statements, as they run (their
// generic plans), and on the condition every such check shares, with both
// kinds of plan.
func TestWaitingChecksDoNotReadHistory(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	q := f.queue(Queue{Name: "Support"})
	a := f.agent(map[string]int{"chat": 1}, nil)
	reason := f.reason(agentdesk.ContactReason, "Question")
	_, err := f.db.Exec(f.ctx, `
INSERT INTO tasks (account_id, queue_id, channel, capacity_channel, state, priority, priority_name,
	enqueued_at, queue_entered_at, updated_at, agent_id, assigned_at, ended_at, completed_at, closed_at, wait_seconds)
SELECT $1, $2, 'chat', 'chat', 'completed', 200, 'normal', t, t, t, $3, t, t, t, t, 0
FROM generate_series(1, 30000) g CROSS JOIN LATERAL (SELECT $4::timestamptz - interval '1 day' + g * interval '1 second' AS t) at`,
		f.account, q, a, monday10)
	f.must(err)
	// The agent is busy with one chat; a line of low-priority email waits
	// behind the history, where the newest rows are.
	busy := f.enqueue(agentdesk.TaskRequest{Channel: agentdesk.ChannelChat})
	f.must(f.e.Accept(f.ctx, f.account, a, busy))
	_, err = f.db.Exec(f.ctx, `
INSERT INTO tasks (account_id, queue_id, channel, capacity_channel, state, priority, priority_name, enqueued_at, queue_entered_at, updated_at)
SELECT $1, $2, 'email', 'email', 'queued', 100, 'low', $3::timestamptz - g * interval '1 ms', $3, $3
FROM generate_series(1, 6000) g`, f.account, q, monday10)
	f.must(err)
	_, err = f.db.Exec(f.ctx, `ANALYZE tasks`)
	f.must(err)

	// pages runs fn in a transaction and returns the tasks table's pages it
	// read (the line's are a few; the history is over a thousand).
	pages := func(what string, fn func(tx pgx.Tx) error) int64 {
		t.Helper()
		var before, n int64
		const fetched = `SELECT pg_stat_get_xact_blocks_fetched('tasks'::regclass)`
		err := pgx.BeginFunc(f.ctx, f.db, func(tx pgx.Tx) error {
			// The counter holds what the connection read since its last
			// report of statistics: what fn reads is the difference.
			if err := tx.QueryRow(f.ctx, fetched).Scan(&before); err != nil {
				return err
			}
			if err := fn(tx); err != nil {
				return err
			}
			if err := tx.QueryRow(f.ctx, fetched).Scan(&n); err != nil {
				return err
			}
			n -= before
			return errors.New("rolled back") // leave the data as it is for the next check
		})
		if err == nil || err.Error() != "rolled back" {
			t.Fatalf("%s: %v", what, err)
		}
		if n > 100 {
			t.Errorf("%s read %d pages of tasks: it reads the history", what, n)
		}
		return n
	}
	for _, mode := range []string{"force_generic_plan", "force_custom_plan"} {
		pages("anyWaiting, "+mode, func(tx pgx.Tx) error {
			if _, err := tx.Exec(f.ctx, `SET LOCAL plan_cache_mode = `+mode); err != nil {
				return err
			}
			var waiting bool
			if err := tx.QueryRow(f.ctx, `SELECT `+anyWaiting("$1::bigint", ""), f.account).Scan(&waiting); err != nil || !waiting {
				return fmt.Errorf("waiting %v, %v; want true", waiting, err)
			}
			return nil
		})
	}
	pages("complete", func(tx pgx.Tx) error {
		c, err := f.e.complete(f.ctx, tx, f.account, a, busy, agentdesk.Outcome{ContactReasonID: &reason}, false)
		if err == nil && (!c.done || !c.waiting) {
			err = fmt.Errorf("completion %+v, want done with tasks waiting", c)
		}
		return err
	})
	pages("enqueue", func(tx pgx.Tx) error {
		_, err := f.e.EnqueueTx(f.ctx, tx, agentdesk.TaskRequest{AccountID: f.account, QueueID: q, Channel: agentdesk.ChannelEmail, Priority: agentdesk.PriorityHigh})
		return err
	})
}
