package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
)

const ticketColumns = `t.id, t.subject, t.status, t.custom_status, t.priority, t.channel, t.customer_id, t.assignee_id, t.team_id, t.tags,
	t.contact_reason_id, t.resolution_code, t.cancellation_reason_id, t.revenue_lost_cents, t.retention_offered, t.retention_accepted,
	t.created_at, t.updated_at, t.first_response_at, t.resolved_at, t.closed_at, t.first_response_seconds, t.resolution_seconds,
	coalesce((SELECT c.name FROM customers c WHERE c.account_id = t.account_id AND c.id = t.customer_id), '')`

func scanTicket(row pgx.Row, accountID int64) (*agentdesk.Ticket, error) {
	t := &agentdesk.Ticket{AccountID: accountID}
	o, tm := &t.Outcome, &t.Times
	err := row.Scan(&t.ID, &t.Subject, &t.Status, &t.CustomStatus, &t.Priority, &t.Channel, &t.CustomerID, &t.AssigneeID, &t.TeamID, &t.Tags,
		&o.ContactReasonID, &o.ResolutionCode, &o.CancellationReasonID, &o.RevenueLostCents, &o.RetentionOffered, &o.RetentionAccepted,
		&tm.CreatedAt, &tm.UpdatedAt, &tm.FirstResponseAt, &tm.ResolvedAt, &tm.ClosedAt, &tm.FirstResponseSeconds, &tm.ResolutionSeconds,
		&t.CustomerName)
	if err != nil {
		return nil, err
	}
	if t.Tags == nil {
		t.Tags = []string{}
	}
	return t, nil
}

// visibleTo is the private-team rule as a condition on the tickets row t:
// agents see tickets without a team, of a public team, of one of their own
// teams, or assigned to them (routing or a supervisor may hand a private
// team's ticket to an outsider, who must then be able to work it);
// supervisors and admins see all. arg is the placeholder number the actor's
// team ids take, arg+1 the agent id; the returned args are to be appended.
func visibleTo(actor agentdesk.Actor, arg int) (string, []any) {
	if actor.Role.AtLeast(agentdesk.RoleSupervisor) {
		return "", nil
	}
	teams := actor.TeamIDs
	if teams == nil {
		teams = []int64{}
	}
	return ` AND (t.team_id IS NULL OR t.team_id = ANY($` + strconv.Itoa(arg) + `::bigint[])
		OR t.assignee_id = $` + strconv.Itoa(arg+1) + `
		OR NOT EXISTS (SELECT 1 FROM teams vt WHERE vt.account_id = t.account_id AND vt.id = t.team_id AND vt.private))`, []any{teams, actor.AgentID}
}

// ticketQuery selects one ticket the actor may see, optionally locking it.
func ticketQuery(actor agentdesk.Actor, lock bool) (string, []any) {
	vis, args := visibleTo(actor, 3)
	q := `SELECT ` + ticketColumns + ` FROM tickets t WHERE t.account_id = $1 AND t.id = $2` + vis
	if lock {
		q += ` FOR UPDATE OF t`
	}
	return q, args
}

// Ticket returns one ticket; NotFound when it does not exist or the actor may
// not see it.
func (s *Store) Ticket(ctx context.Context, actor agentdesk.Actor, id int64) (*agentdesk.Ticket, error) {
	return loadTicket(ctx, s.db, actor, id, false)
}

// TicketTx reads and locks a ticket the actor may see inside the caller's
// transaction, for a caller that changes it next and wants the state before.
func TicketTx(ctx context.Context, tx pgx.Tx, actor agentdesk.Actor, id int64) (*agentdesk.Ticket, error) {
	return loadTicket(ctx, tx, actor, id, true)
}

func loadTicket(ctx context.Context, q querier, actor agentdesk.Actor, id int64, lock bool) (*agentdesk.Ticket, error) {
	sql, extra := ticketQuery(actor, lock)
	t, err := scanTicket(q.QueryRow(ctx, sql, append([]any{actor.AccountID, id}, extra...)...), actor.AccountID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, agentdesk.Errorf(agentdesk.NotFound, "ticket %d not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("load ticket %d: %w", id, err)
	}
	return t, nil
}

// applyCustomStatus maps a ticket's custom status onto its base status. A
// caller naming both must name a matching pair.
func applyCustomStatus(ctx context.Context, q querier, accountID int64, t *agentdesk.Ticket, statusGiven bool) error {
	t.CustomStatus = strings.ToLower(strings.TrimSpace(t.CustomStatus))
	if t.CustomStatus == "" {
		return nil
	}
	var base agentdesk.Status
	err := q.QueryRow(ctx, `SELECT maps_to FROM custom_statuses WHERE account_id = $1 AND name = $2 FOR SHARE`, accountID, t.CustomStatus).Scan(&base)
	if errors.Is(err, pgx.ErrNoRows) {
		return agentdesk.FieldError("custom_status", "no custom status %q", t.CustomStatus)
	}
	if err != nil {
		return fmt.Errorf("custom status: %w", err)
	}
	if statusGiven && t.Status != "" && t.Status != base {
		return agentdesk.FieldError("status", "custom status %q is a %s status, not %s", t.CustomStatus, base, t.Status)
	}
	t.Status = base
	return nil
}

// checkReason enforces what the foreign keys cannot: a newly set reason is of
// the right kind, not archived, and a reason rather than a category with
// reasons under it.
func checkReason(ctx context.Context, q querier, accountID int64, field string, id *int64, kind agentdesk.ReasonKind) error {
	if id == nil {
		return nil
	}
	var (
		got      agentdesk.ReasonKind
		archived bool
		category bool
	)
	err := q.QueryRow(ctx, `SELECT r.kind, r.archived_at IS NOT NULL,
			EXISTS (SELECT 1 FROM reasons c WHERE c.account_id = r.account_id AND c.parent_id = r.id AND c.archived_at IS NULL)
		FROM reasons r WHERE r.account_id = $1 AND r.id = $2`, accountID, *id).Scan(&got, &archived, &category)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return agentdesk.FieldError(field, "no reason %d", *id)
	case err != nil:
		return fmt.Errorf("check reason %d: %w", *id, err)
	case got != kind:
		return agentdesk.FieldError(field, "reason %d is a %s reason, not a %s reason", *id, got, kind)
	case archived:
		return agentdesk.FieldError(field, "reason %d is archived", *id)
	case category:
		return agentdesk.FieldError(field, "reason %d is a category; pick one of its reasons", *id)
	}
	return nil
}

// checkOutcomeReasons checks the reasons that differ from before (nil: a new
// ticket). A reason kept from before stays valid even once archived.
func checkOutcomeReasons(ctx context.Context, q querier, accountID int64, o agentdesk.Outcome, before *agentdesk.Outcome) error {
	if before == nil || !agentdesk.SameID(o.ContactReasonID, before.ContactReasonID) {
		if err := checkReason(ctx, q, accountID, "outcome.contact_reason_id", o.ContactReasonID, agentdesk.ContactReason); err != nil {
			return err
		}
	}
	if before == nil || !agentdesk.SameID(o.CancellationReasonID, before.CancellationReasonID) {
		if err := checkReason(ctx, q, accountID, "outcome.cancellation_reason_id", o.CancellationReasonID, agentdesk.CancellationReason); err != nil {
			return err
		}
	}
	return nil
}

// The lifecycle timestamps follow the status in SQL, so that "now" is the
// database's clock for tickets and messages alike. In an UPDATE the right-hand
// side sees the old row: status there is the status before the change, $s the
// new one.
//
//   - resolved_at is set when the ticket becomes solved or closed from an
//     unresolved status, kept while it moves between solved and closed, and
//     cleared on reopen; a re-solve sets it again, so a reopened ticket's
//     resolution is its last solve.
//   - closed_at is set on entering closed and cleared on leaving it.
const (
	resolvedAtSet = `CASE WHEN %[1]s NOT IN ('solved', 'closed') THEN NULL
		WHEN %[2]s IN ('solved', 'closed') THEN resolved_at ELSE now() END`
	resolutionSecondsSet = `CASE WHEN %[1]s NOT IN ('solved', 'closed') THEN NULL
		WHEN %[2]s IN ('solved', 'closed') THEN resolution_seconds
		ELSE floor(extract(epoch FROM now() - created_at))::bigint END`
	closedAtSet = `CASE WHEN %[1]s <> 'closed' THEN NULL WHEN %[2]s = 'closed' THEN closed_at ELSE now() END`
)

func lifecycleSet(newStatus, oldStatus string) string {
	return `resolved_at = ` + fmt.Sprintf(resolvedAtSet, newStatus, oldStatus) +
		`, resolution_seconds = ` + fmt.Sprintf(resolutionSecondsSet, newStatus, oldStatus) +
		`, closed_at = ` + fmt.Sprintf(closedAtSet, newStatus, oldStatus)
}

const insertTicket = `INSERT INTO tickets AS t (account_id, subject, status, custom_status, priority, channel, customer_id, assignee_id, team_id, tags,
	contact_reason_id, resolution_code, cancellation_reason_id, revenue_lost_cents, retention_offered, retention_accepted,
	resolved_at, resolution_seconds, closed_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
	CASE WHEN $3 IN ('solved', 'closed') THEN now() END,
	CASE WHEN $3 IN ('solved', 'closed') THEN 0 END,
	CASE WHEN $3 = 'closed' THEN now() END)
RETURNING ` + ticketColumns

// CreateTicket stores a ticket and, when first is given, its first message in
// the same transaction: a ticket never exists without the message that
// opened it.
func (s *Store) CreateTicket(ctx context.Context, actor agentdesk.Actor, t *agentdesk.Ticket, first *agentdesk.Message) error {
	return InTx(ctx, s.db, func(tx pgx.Tx) error { return CreateTicketTx(ctx, tx, actor, t, first) })
}

// CreateTicketTx is CreateTicket in the caller's transaction (which may
// publish the new ticket's event with it).
func CreateTicketTx(ctx context.Context, tx pgx.Tx, actor agentdesk.Actor, t *agentdesk.Ticket, first *agentdesk.Message) error {
	acct := actor.AccountID
	if first != nil {
		first.CustomerID = t.CustomerID
		if err := first.Validate(); err != nil {
			return prefixField(err, "message.")
		}
	}
	return translate(func() error {
		// The custom status is read with a share lock so it cannot be
		// deleted or remapped before this ticket commits.
		if err := applyCustomStatus(ctx, tx, acct, t, true); err != nil {
			return err
		}
		if err := t.Validate(); err != nil {
			return err
		}
		if t.Tags == nil {
			t.Tags = []string{}
		}
		if err := checkOutcomeReasons(ctx, tx, acct, t.Outcome, nil); err != nil {
			return err
		}
		o := t.Outcome
		stored, err := scanTicket(tx.QueryRow(ctx, insertTicket, acct, t.Subject, t.Status, t.CustomStatus, t.Priority, t.Channel, t.CustomerID,
			t.AssigneeID, t.TeamID, t.Tags, o.ContactReasonID, o.ResolutionCode, o.CancellationReasonID, o.RevenueLostCents,
			o.RetentionOffered, o.RetentionAccepted), acct)
		if err != nil {
			return err
		}
		*t = *stored
		if first == nil {
			return nil
		}
		first.TicketID = t.ID
		if err := insertMessage(ctx, tx, acct, first); err != nil {
			return err
		}
		if err := linkAttachments(ctx, tx, actor, first); err != nil { // uploads.go
			return prefixField(err, "message.")
		}
		after, err := afterMessage(ctx, tx, acct, t.ID, first)
		if err != nil {
			return err
		}
		*t = *after
		return nil
	}(), "ticket")
}

// prefixField names a nested field (message.body) in a validation error.
func prefixField(err error, prefix string) error {
	var e *agentdesk.Error
	if errors.As(err, &e) && e.Field != "" {
		c := *e
		c.Field = prefix + e.Field
		return &c
	}
	return err
}

const updateTicket = `UPDATE tickets AS t SET subject = $3, status = $4, custom_status = $5, priority = $6, assignee_id = $7, team_id = $8, tags = $9,
	contact_reason_id = $10, resolution_code = $11, cancellation_reason_id = $12, revenue_lost_cents = $13,
	retention_offered = $14, retention_accepted = $15, updated_at = now(), %s
WHERE t.account_id = $1 AND t.id = $2
RETURNING ` + ticketColumns

var updateTicketSQL = fmt.Sprintf(updateTicket, lifecycleSet("$4", "t.status"))

// UpdateTicket applies change to the ticket under a row lock. The customer and
// the channel are fixed at creation; everything else may change, and the
// lifecycle timestamps follow the status.
func (s *Store) UpdateTicket(ctx context.Context, actor agentdesk.Actor, id int64, change func(*agentdesk.Ticket) error) (*agentdesk.Ticket, error) {
	var out *agentdesk.Ticket
	err := InTx(ctx, s.db, func(tx pgx.Tx) (err error) {
		out, err = UpdateTicketTx(ctx, tx, actor, id, change)
		return err
	})
	return out, err
}

// UpdateTicketTx is UpdateTicket in the caller's transaction (which publishes
// the change to the desks in it, web/live.go).
func UpdateTicketTx(ctx context.Context, tx pgx.Tx, actor agentdesk.Actor, id int64, change func(*agentdesk.Ticket) error) (*agentdesk.Ticket, error) {
	acct := actor.AccountID
	var out *agentdesk.Ticket
	err := func() error {
		before, err := loadTicket(ctx, tx, actor, id, true)
		if err != nil {
			return err
		}
		t := *before
		t.Tags = slices.Clone(before.Tags)
		if err := change(&t); err != nil {
			return err
		}
		t.ID, t.AccountID, t.CustomerID, t.Channel, t.Times = before.ID, acct, before.CustomerID, before.Channel, before.Times
		if err := applyCustomStatus(ctx, tx, acct, &t, t.Status != before.Status); err != nil {
			return err
		}
		if err := t.Validate(); err != nil {
			return err
		}
		if t.Tags == nil {
			t.Tags = []string{}
		}
		if err := checkOutcomeReasons(ctx, tx, acct, t.Outcome, &before.Outcome); err != nil {
			return err
		}
		o := t.Outcome
		out, err = scanTicket(tx.QueryRow(ctx, updateTicketSQL, acct, id, t.Subject, t.Status, t.CustomStatus, t.Priority, t.AssigneeID, t.TeamID, t.Tags,
			o.ContactReasonID, o.ResolutionCode, o.CancellationReasonID, o.RevenueLostCents, o.RetentionOffered, o.RetentionAccepted), acct)
		return err
	}()
	if err != nil {
		return nil, translate(err, "ticket")
	}
	return out, nil
}

// ticketListQuery builds the list query from an allow-list of filters. Each
// filter is a parameter; only fixed SQL text is concatenated.
func ticketListQuery(actor agentdesk.Actor, f agentdesk.TicketFilter) (string, []any, error) {
	p := f.Page.Normalize()
	k, err := agentdesk.DecodeCursor(p.Cursor)
	if err != nil {
		return "", nil, err
	}
	args := []any{actor.AccountID}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	var b strings.Builder
	b.WriteString(`SELECT ` + ticketColumns + ` FROM tickets t WHERE t.account_id = $1`)
	if len(f.Status) > 0 {
		open := true
		statuses := make([]string, len(f.Status))
		for i, st := range f.Status {
			if !st.Valid() {
				return "", nil, agentdesk.FieldError("status", "unknown status %q", st)
			}
			statuses[i] = string(st)
			open = open && !st.Done()
		}
		b.WriteString(` AND t.status = ANY(` + arg(statuses) + `::text[])`)
		if open {
			// Spelled out as a constant so the planner can prove the
			// partial index tickets_open applies even with a generic plan.
			b.WriteString(` AND t.status NOT IN ('solved', 'closed')`)
		}
	}
	if f.AssigneeID != nil {
		b.WriteString(` AND t.assignee_id = ` + arg(*f.AssigneeID))
	}
	if f.Unassigned {
		b.WriteString(` AND t.assignee_id IS NULL`)
	}
	if f.TeamID != nil {
		b.WriteString(` AND t.team_id = ` + arg(*f.TeamID))
	}
	if f.CustomerID != nil {
		b.WriteString(` AND t.customer_id = ` + arg(*f.CustomerID))
	}
	if f.Channel != "" {
		if !f.Channel.Valid() {
			return "", nil, agentdesk.FieldError("channel", "unknown channel %q", f.Channel)
		}
		b.WriteString(` AND t.channel = ` + arg(string(f.Channel)))
	}
	if f.Priority != "" {
		if !f.Priority.Valid() {
			return "", nil, agentdesk.FieldError("priority", "must be one of low, normal, high, urgent")
		}
		b.WriteString(` AND t.priority = ` + arg(string(f.Priority)))
	}
	if f.Tag != "" {
		b.WriteString(` AND ` + arg(strings.ToLower(strings.TrimSpace(f.Tag))) + ` = ANY(t.tags)`)
	}
	if k != nil {
		b.WriteString(` AND (t.created_at, t.id) < (` + arg(k.At) + `, ` + arg(k.ID) + `)`)
	}
	vis, extra := visibleTo(actor, len(args)+1)
	args = append(args, extra...)
	b.WriteString(vis)
	b.WriteString(` ORDER BY t.created_at DESC, t.id DESC LIMIT ` + arg(p.Limit+1))
	return b.String(), args, nil
}

// Tickets lists the tickets the actor may see, newest first.
func (s *Store) Tickets(ctx context.Context, actor agentdesk.Actor, f agentdesk.TicketFilter) ([]agentdesk.Ticket, string, error) {
	sql, args, err := ticketListQuery(actor, f)
	if err != nil {
		return nil, "", err
	}
	rows, err := s.db.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list tickets: %w", err)
	}
	defer rows.Close()
	var (
		out  []agentdesk.Ticket
		keys []agentdesk.Keyset
	)
	for rows.Next() {
		t, err := scanTicket(rows, actor.AccountID)
		if err != nil {
			return nil, "", fmt.Errorf("list tickets: %w", err)
		}
		out = append(out, *t)
		keys = append(keys, agentdesk.Keyset{At: t.Times.CreatedAt, ID: t.ID})
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list tickets: %w", err)
	}
	out, next := trimPage(out, keys, f.Page.Normalize().Limit)
	return out, next, nil
}
