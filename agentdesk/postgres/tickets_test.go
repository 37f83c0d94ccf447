package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
	"agentdesk/agentdesk/postgres/pgtest"
)

// deskFixture is an account with a customer, an agent in a private team, an
// agent outside it, a supervisor, and a contact and a cancellation reason.
type deskFixture struct {
	store                  *postgres.Store
	acct                   int64
	customer               int64
	inside, outside, super agentdesk.Actor
	privateTeam            int64
	contact, cancel        int64 // reasons
	category               int64 // contact category holding contact
}

func newDeskFixture(t *testing.T) *deskFixture {
	t.Helper()
	ctx := context.Background()
	store := postgres.NewStore(pgtest.New(t))
	acc, err := store.CreateAccount(ctx, "Fixture Co")
	if err != nil {
		t.Fatal(err)
	}
	f := &deskFixture{store: store, acct: acc.ID}
	if err := store.DB().QueryRow(ctx, `INSERT INTO customers (account_id, name) VALUES ($1, 'Cora Customer') RETURNING id`, f.acct).Scan(&f.customer); err != nil {
		t.Fatal(err)
	}
	mk := func(email string, role agentdesk.Role) agentdesk.Actor {
		a := &agentdesk.Agent{Email: email, Name: email, Role: role}
		if err := store.CreateAgent(ctx, f.acct, a, ""); err != nil {
			t.Fatal(err)
		}
		return agentdesk.Actor{AccountID: f.acct, AgentID: a.ID, Role: role}
	}
	f.inside = mk("in@example.com", agentdesk.RoleAgent)
	f.outside = mk("out@example.com", agentdesk.RoleAgent)
	f.super = mk("sup@example.com", agentdesk.RoleSupervisor)
	team := &agentdesk.Team{Name: "Retention", Private: true, MemberIDs: []int64{f.inside.AgentID}}
	if err := store.CreateTeam(ctx, f.acct, team); err != nil {
		t.Fatal(err)
	}
	f.privateTeam = team.ID
	f.inside.TeamIDs = []int64{team.ID}
	admin := agentdesk.Actor{AccountID: f.acct, Role: agentdesk.RoleAdmin, TokenID: 0}
	cat := &agentdesk.Reason{Kind: agentdesk.ContactReason, Name: "Billing"}
	if err := store.CreateReason(ctx, admin, cat); err != nil {
		t.Fatal(err)
	}
	r := &agentdesk.Reason{Kind: agentdesk.ContactReason, Name: "Refund request", ParentID: &cat.ID}
	if err := store.CreateReason(ctx, admin, r); err != nil {
		t.Fatal(err)
	}
	c := &agentdesk.Reason{Kind: agentdesk.CancellationReason, Name: "Too expensive"}
	if err := store.CreateReason(ctx, admin, c); err != nil {
		t.Fatal(err)
	}
	f.category, f.contact, f.cancel = cat.ID, r.ID, c.ID
	return f
}

func (f *deskFixture) ticket(t *testing.T, actor agentdesk.Actor, team *int64) *agentdesk.Ticket {
	t.Helper()
	tk := &agentdesk.Ticket{Subject: "Refund please", CustomerID: f.customer, TeamID: team}
	first := &agentdesk.Message{Kind: agentdesk.KindEmail, Direction: agentdesk.DirIn, Body: "I want my money back"}
	if err := f.store.CreateTicket(context.Background(), actor, tk, first); err != nil {
		t.Fatal(err)
	}
	return tk
}

// backdate moves a ticket's creation an hour into the past so durations are
// whole, visible numbers.
func (f *deskFixture) backdate(t *testing.T, id int64) {
	t.Helper()
	if _, err := f.store.DB().Exec(context.Background(), `UPDATE tickets SET created_at = created_at - interval '1 hour' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestTicketLifecycleTimes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newDeskFixture(t)
	tk := f.ticket(t, f.inside, nil)
	if tk.Status != agentdesk.StatusNew || tk.Times.FirstResponseAt != nil || tk.Times.ResolvedAt != nil || tk.CustomerName != "Cora Customer" {
		t.Fatalf("new ticket: %+v", tk)
	}
	f.backdate(t, tk.ID)

	// An internal note is not a response; the agent's reply is.
	note := &agentdesk.Message{TicketID: tk.ID, Kind: agentdesk.KindNote, Body: "checking the invoice", AuthorID: &f.inside.AgentID}
	if err := f.store.AddMessage(ctx, f.inside, note); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.store.Ticket(ctx, f.inside, tk.ID); got.Times.FirstResponseAt != nil {
		t.Fatalf("a note counted as first response: %+v", got.Times)
	}
	reply := &agentdesk.Message{TicketID: tk.ID, Kind: agentdesk.KindEmail, Direction: agentdesk.DirOut, Body: "Refund is on its way", AuthorID: &f.inside.AgentID}
	if err := f.store.AddMessage(ctx, f.inside, reply); err != nil {
		t.Fatal(err)
	}
	got, err := f.store.Ticket(ctx, f.inside, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	frt := got.Times.FirstResponseAt
	if frt == nil || got.Times.FirstResponseSeconds == nil || *got.Times.FirstResponseSeconds < 3600 || got.Status != agentdesk.StatusOpen {
		t.Fatalf("after the first reply: status %s times %+v", got.Status, got.Times)
	}
	want := int64(frt.Sub(got.Times.CreatedAt) / time.Second)
	if *got.Times.FirstResponseSeconds != want {
		t.Fatalf("first_response_seconds %d, want %d", *got.Times.FirstResponseSeconds, want)
	}
	// A second reply moves nothing.
	if err := f.store.AddMessage(ctx, f.inside, &agentdesk.Message{TicketID: tk.ID, Kind: agentdesk.KindEmail, Direction: agentdesk.DirOut, Body: "PS", AuthorID: &f.inside.AgentID}); err != nil {
		t.Fatal(err)
	}
	again, _ := f.store.Ticket(ctx, f.inside, tk.ID)
	if !again.Times.FirstResponseAt.Equal(*frt) {
		t.Fatalf("first response moved from %v to %v", frt, again.Times.FirstResponseAt)
	}

	// Solving needs a contact reason.
	_, err = f.store.UpdateTicket(ctx, f.inside, tk.ID, func(t *agentdesk.Ticket) error { t.Status = agentdesk.StatusSolved; return nil })
	if kind, field := errField(err); kind != agentdesk.Invalid || field != "outcome.contact_reason_id" {
		t.Fatalf("solve without reason: %v", err)
	}
	solve := func(t *agentdesk.Ticket) error {
		t.Status = agentdesk.StatusSolved
		t.Outcome.ContactReasonID = &f.contact
		return nil
	}
	first, err := f.store.UpdateTicket(ctx, f.inside, tk.ID, solve)
	if err != nil {
		t.Fatal(err)
	}
	if first.Times.ResolvedAt == nil || *first.Times.ResolutionSeconds != int64(first.Times.ResolvedAt.Sub(first.Times.CreatedAt)/time.Second) {
		t.Fatalf("solved: %+v", first.Times)
	}
	// The customer writes back: reopened, resolution cleared.
	if err := f.store.AddMessage(ctx, f.inside, &agentdesk.Message{TicketID: tk.ID, Kind: agentdesk.KindEmail, Direction: agentdesk.DirIn, Body: "Not arrived"}); err != nil {
		t.Fatal(err)
	}
	reopened, _ := f.store.Ticket(ctx, f.inside, tk.ID)
	if reopened.Status != agentdesk.StatusOpen || reopened.Times.ResolvedAt != nil || reopened.Times.ResolutionSeconds != nil {
		t.Fatalf("reopened: %s %+v", reopened.Status, reopened.Times)
	}
	f.backdate(t, tk.ID) // another hour passes before the last solve
	last, err := f.store.UpdateTicket(ctx, f.inside, tk.ID, solve)
	if err != nil {
		t.Fatal(err)
	}
	if *last.Times.ResolutionSeconds < *first.Times.ResolutionSeconds+3600 || !last.Times.ResolvedAt.After(*first.Times.ResolvedAt) {
		t.Fatalf("the last solve should count: first %+v last %+v", first.Times, last.Times)
	}
	// Closing keeps the resolution and stamps closed_at.
	closed, err := f.store.UpdateTicket(ctx, f.inside, tk.ID, func(t *agentdesk.Ticket) error { t.Status = agentdesk.StatusClosed; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if closed.Times.ClosedAt == nil || !closed.Times.ResolvedAt.Equal(*last.Times.ResolvedAt) || *closed.Times.ResolutionSeconds != *last.Times.ResolutionSeconds {
		t.Fatalf("closed: %+v", closed.Times)
	}
	// A closed ticket does not reopen on a customer message.
	if err := f.store.AddMessage(ctx, f.inside, &agentdesk.Message{TicketID: tk.ID, Kind: agentdesk.KindEmail, Direction: agentdesk.DirIn, Body: "thanks"}); err != nil {
		t.Fatal(err)
	}
	if still, _ := f.store.Ticket(ctx, f.inside, tk.ID); still.Status != agentdesk.StatusClosed {
		t.Fatalf("closed ticket reopened: %s", still.Status)
	}
}

func errField(err error) (agentdesk.Kind, string) {
	var e *agentdesk.Error
	if err == nil {
		return "", ""
	}
	if !errors.As(err, &e) {
		return agentdesk.Internal, ""
	}
	return e.Kind, e.Field
}

func TestTicketReasonRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newDeskFixture(t)
	admin := agentdesk.Actor{AccountID: f.acct, Role: agentdesk.RoleAdmin}
	tk := f.ticket(t, f.inside, nil)
	// Another account's reason, in the same database, must not be accepted.
	otherAcct, err := f.store.CreateAccount(ctx, "Other Co")
	if err != nil {
		t.Fatal(err)
	}
	otherReason := &agentdesk.Reason{Kind: agentdesk.ContactReason, Name: "Theirs"}
	if err := f.store.CreateReason(ctx, agentdesk.Actor{AccountID: otherAcct.ID, Role: agentdesk.RoleAdmin}, otherReason); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		apply func(*agentdesk.Ticket)
		field string
	}{
		{"cancellation reason as contact reason", func(t *agentdesk.Ticket) { t.Outcome.ContactReasonID = &f.cancel }, "outcome.contact_reason_id"},
		{"contact reason as cancellation reason", func(t *agentdesk.Ticket) {
			t.Outcome.ResolutionCode = agentdesk.ResolutionCancellation
			t.Outcome.CancellationReasonID = &f.contact
		}, "outcome.cancellation_reason_id"},
		{"category instead of a reason", func(t *agentdesk.Ticket) { t.Outcome.ContactReasonID = &f.category }, "outcome.contact_reason_id"},
		{"unknown reason", func(t *agentdesk.Ticket) { t.Outcome.ContactReasonID = ptr(int64(1 << 40)) }, "outcome.contact_reason_id"},
		{"cancellation without reason", func(t *agentdesk.Ticket) { t.Outcome.ResolutionCode = agentdesk.ResolutionCancellation }, "outcome.cancellation_reason_id"},
		{"unknown custom status", func(t *agentdesk.Ticket) { t.CustomStatus = "nope" }, "custom_status"},
		{"unknown status", func(t *agentdesk.Ticket) { t.Status = "nope" }, "status"},
		{"unknown assignee", func(t *agentdesk.Ticket) { t.AssigneeID = ptr(int64(1 << 40)) }, "assignee_id"},
	}
	for _, c := range cases {
		_, err := f.store.UpdateTicket(ctx, f.inside, tk.ID, func(t *agentdesk.Ticket) error { c.apply(t); return nil })
		if kind, field := errField(err); kind != agentdesk.Invalid || field != c.field {
			t.Errorf("%s: got %v, want invalid %s", c.name, err, c.field)
		}
	}
	// Another account's reason is unknown here.
	_, err = f.store.UpdateTicket(ctx, f.inside, tk.ID, func(t *agentdesk.Ticket) error { t.Outcome.ContactReasonID = &otherReason.ID; return nil })
	if kind, _ := errField(err); kind != agentdesk.Invalid {
		t.Errorf("another account's reason: %v", err)
	}
	// A reason set while active stays valid once archived; a newly chosen
	// archived reason is refused.
	if _, err := f.store.UpdateTicket(ctx, f.inside, tk.ID, func(t *agentdesk.Ticket) error { t.Outcome.ContactReasonID = &f.contact; return nil }); err != nil {
		t.Fatal(err)
	}
	archived, err := f.store.DeleteReason(ctx, admin, f.contact)
	if err != nil || !archived {
		t.Fatalf("delete used reason: archived=%v err=%v", archived, err)
	}
	if _, err := f.store.UpdateTicket(ctx, f.inside, tk.ID, func(t *agentdesk.Ticket) error { t.Status = agentdesk.StatusSolved; return nil }); err != nil {
		t.Fatalf("solving with a kept, now archived reason: %v", err)
	}
	tk2 := f.ticket(t, f.inside, nil)
	_, err = f.store.UpdateTicket(ctx, f.inside, tk2.ID, func(t *agentdesk.Ticket) error { t.Outcome.ContactReasonID = &f.contact; return nil })
	if kind, field := errField(err); kind != agentdesk.Invalid || field != "outcome.contact_reason_id" {
		t.Fatalf("newly set archived reason: %v", err)
	}
	// The used reason is still there for reports; the category went to the
	// archive with it only if it was deleted itself.
	r, err := f.store.Reason(ctx, f.acct, f.contact)
	if err != nil || r.ArchivedAt == nil {
		t.Fatalf("archived reason: %+v %v", r, err)
	}
	// An unused reason is deleted for real.
	unused := &agentdesk.Reason{Kind: agentdesk.CancellationReason, Name: "Moved"}
	if err := f.store.CreateReason(ctx, admin, unused); err != nil {
		t.Fatal(err)
	}
	if archived, err := f.store.DeleteReason(ctx, admin, unused.ID); err != nil || archived {
		t.Fatalf("delete unused: archived=%v err=%v", archived, err)
	}
	if _, err := f.store.Reason(ctx, f.acct, unused.ID); !agentdesk.IsKind(err, agentdesk.NotFound) {
		t.Fatalf("unused reason still there: %v", err)
	}
}

func TestCustomStatusMapsOntoBase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newDeskFixture(t)
	admin := agentdesk.Actor{AccountID: f.acct, Role: agentdesk.RoleAdmin}
	cs := &agentdesk.CustomStatus{Name: "Waiting for parts", MapsTo: agentdesk.StatusOnHold}
	if err := f.store.CreateCustomStatus(ctx, admin, cs); err != nil {
		t.Fatal(err)
	}
	tk := f.ticket(t, f.inside, nil)
	got, err := f.store.UpdateTicket(ctx, f.inside, tk.ID, func(t *agentdesk.Ticket) error { t.CustomStatus = "waiting for parts"; t.Status = ""; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != agentdesk.StatusOnHold || got.CustomStatus != "waiting for parts" {
		t.Fatalf("custom status: %s/%s", got.Status, got.CustomStatus)
	}
	if err := f.store.DeleteCustomStatus(ctx, admin, cs.ID); !agentdesk.IsKind(err, agentdesk.Conflict) {
		t.Fatalf("delete a status in use: %v", err)
	}
	cs.Name = "parts ordered"
	if err := f.store.UpdateCustomStatus(ctx, admin, cs); err != nil {
		t.Fatal(err)
	}
	if renamed, _ := f.store.Ticket(ctx, f.inside, tk.ID); renamed.CustomStatus != "parts ordered" {
		t.Fatalf("rename did not follow: %q", renamed.CustomStatus)
	}
	cs.MapsTo = agentdesk.StatusPending
	if err := f.store.UpdateCustomStatus(ctx, admin, cs); !agentdesk.IsKind(err, agentdesk.Conflict) {
		t.Fatalf("remap a status in use: %v", err)
	}
}

func TestPrivateTeamVisibility(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newDeskFixture(t)
	private := f.ticket(t, f.inside, &f.privateTeam)
	public := f.ticket(t, f.outside, nil)

	for _, a := range []struct {
		name  string
		actor agentdesk.Actor
		sees  bool
	}{{"member", f.inside, true}, {"outsider", f.outside, false}, {"supervisor", f.super, true}} {
		_, err := f.store.Ticket(ctx, a.actor, private.ID)
		if a.sees != (err == nil) || (!a.sees && !agentdesk.IsKind(err, agentdesk.NotFound)) {
			t.Errorf("%s reading the private ticket: %v", a.name, err)
		}
		_, err = f.store.UpdateTicket(ctx, a.actor, private.ID, func(t *agentdesk.Ticket) error { t.Priority = agentdesk.PriorityHigh; return nil })
		if a.sees != (err == nil) {
			t.Errorf("%s updating the private ticket: %v", a.name, err)
		}
		err = f.store.AddMessage(ctx, a.actor, &agentdesk.Message{TicketID: private.ID, Kind: agentdesk.KindNote, Body: "hi"})
		if a.sees != (err == nil) {
			t.Errorf("%s writing into the private ticket: %v", a.name, err)
		}
		_, _, err = f.store.TicketMessages(ctx, a.actor, private.ID, agentdesk.Page{})
		if a.sees != (err == nil) {
			t.Errorf("%s reading the private conversation: %v", a.name, err)
		}
		list, _, err := f.store.Tickets(ctx, a.actor, agentdesk.TicketFilter{})
		if err != nil {
			t.Fatal(err)
		}
		ids := map[int64]bool{}
		for _, tk := range list {
			ids[tk.ID] = true
		}
		if ids[private.ID] != a.sees || !ids[public.ID] {
			t.Errorf("%s list: %v", a.name, ids)
		}
		timeline, _, err := f.store.CustomerTimeline(ctx, a.actor, f.customer, agentdesk.Page{})
		if err != nil {
			t.Fatal(err)
		}
		seen := false
		for _, m := range timeline {
			seen = seen || m.TicketID == private.ID
		}
		if seen != a.sees {
			t.Errorf("%s customer timeline shows the private ticket: %v", a.name, seen)
		}
	}
}

func TestTicketFiltersAndPaging(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newDeskFixture(t)
	var ids []int64
	for i := range 7 {
		tk := &agentdesk.Ticket{Subject: "t", CustomerID: f.customer, Tags: []string{"vip"}[:i%2], Channel: []agentdesk.Channel{agentdesk.ChannelChat, agentdesk.ChannelEmail}[i%2]}
		if i%3 == 0 {
			tk.AssigneeID = &f.inside.AgentID
		}
		if err := f.store.CreateTicket(ctx, f.super, tk, nil); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tk.ID)
	}
	count := func(fl agentdesk.TicketFilter) int {
		t.Helper()
		n := 0
		for {
			page, next, err := f.store.Tickets(ctx, f.super, fl)
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i < len(page); i++ {
				if page[i].ID >= page[i-1].ID {
					t.Fatalf("not newest first: %d then %d", page[i-1].ID, page[i].ID)
				}
			}
			n += len(page)
			if next == "" {
				return n
			}
			fl.Page.Cursor = next
		}
	}
	for _, c := range []struct {
		name string
		f    agentdesk.TicketFilter
		want int
	}{
		{"all in pages of 2", agentdesk.TicketFilter{Page: agentdesk.Page{Limit: 2}}, 7},
		{"assignee", agentdesk.TicketFilter{AssigneeID: &f.inside.AgentID}, 3},
		{"unassigned", agentdesk.TicketFilter{Unassigned: true, Page: agentdesk.Page{Limit: 3}}, 4},
		{"tag", agentdesk.TicketFilter{Tag: "VIP"}, 3},
		{"channel", agentdesk.TicketFilter{Channel: agentdesk.ChannelChat}, 4},
		{"open statuses", agentdesk.TicketFilter{Status: []agentdesk.Status{agentdesk.StatusNew, agentdesk.StatusOpen}}, 7},
		{"solved", agentdesk.TicketFilter{Status: []agentdesk.Status{agentdesk.StatusSolved}}, 0},
		{"customer", agentdesk.TicketFilter{CustomerID: &f.customer}, 7},
		{"priority", agentdesk.TicketFilter{Priority: agentdesk.PriorityNormal}, 7},
	} {
		if got := count(c.f); got != c.want {
			t.Errorf("%s: %d tickets, want %d", c.name, got, c.want)
		}
	}
}

// TestConcurrentUpdatesDoNotOverwriteEachOther: each update reads the ticket
// under its row lock, so twenty agents tagging at once leave twenty tags.
func TestConcurrentUpdatesDoNotOverwriteEachOther(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newDeskFixture(t)
	tk := f.ticket(t, f.inside, nil)
	errs := make(chan error, 20)
	for i := range 20 {
		go func() {
			_, err := f.store.UpdateTicket(ctx, f.super, tk.ID, func(t *agentdesk.Ticket) error {
				t.Tags = append(t.Tags, fmt.Sprintf("tag-%d", i))
				return nil
			})
			errs <- err
		}()
	}
	for range 20 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	got, err := f.store.Ticket(ctx, f.super, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Tags) != 20 {
		t.Fatalf("%d tags survived: %v", len(got.Tags), got.Tags)
	}
}

// TestPrivateTicketVisibleToItsAssignee: routing or a supervisor may give a
// private team's ticket to an agent outside the team; that agent must be able
// to work it, while other outsiders still cannot see it.
func TestPrivateTicketVisibleToItsAssignee(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newDeskFixture(t)
	private := f.ticket(t, f.inside, &f.privateTeam)
	if _, err := f.store.Ticket(ctx, f.outside, private.ID); !agentdesk.IsKind(err, agentdesk.NotFound) {
		t.Fatalf("outsider before assignment: %v, want not found", err)
	}
	assignee := f.outside.AgentID
	if _, err := f.store.UpdateTicket(ctx, f.super, private.ID, func(t *agentdesk.Ticket) error { t.AssigneeID = &assignee; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Ticket(ctx, f.outside, private.ID); err != nil {
		t.Fatalf("assignee outside the team reading the ticket: %v", err)
	}
	if err := f.store.AddMessage(ctx, f.outside, &agentdesk.Message{TicketID: private.ID, Kind: agentdesk.KindNote, Body: "on it"}); err != nil {
		t.Fatalf("assignee outside the team writing a note: %v", err)
	}
	list, _, err := f.store.Tickets(ctx, f.outside, agentdesk.TicketFilter{AssigneeID: &assignee})
	if err != nil || len(list) != 1 || list[0].ID != private.ID {
		t.Fatalf("assignee's list = %v, %v", list, err)
	}
	other := agentdesk.Actor{AccountID: f.acct, AgentID: f.super.AgentID + 1000, Role: agentdesk.RoleAgent}
	if _, err := f.store.Ticket(ctx, other, private.ID); !agentdesk.IsKind(err, agentdesk.NotFound) {
		t.Fatalf("another outsider: %v, want not found", err)
	}
}
