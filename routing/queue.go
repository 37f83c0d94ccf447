package routing

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"agentdesk/agentdesk"
)

// ClosedAction says what happens to a contact that arrives while its queue is
// closed.
type ClosedAction string

const (
	ClosedQueue    ClosedAction = "queue"    // wait anyway; served when agents are there
	ClosedOverflow ClosedAction = "overflow" // go to the overflow queue
	ClosedMessage  ClosedAction = "message"  // the channel plays/sends the closed message; the task ends as overflowed
	ClosedCallback ClosedAction = "callback" // take a callback number; an outbound call is queued
)

// Queue is where tasks wait for agents.
type Queue struct {
	ID             int64               `json:"id"`
	Name           string              `json:"name"`
	Channels       []agentdesk.Channel `json:"channels"`
	RequiredSkills map[string]int      `json:"required_skills"`
	TeamID         *int64              `json:"team_id"`
	Priority       int                 `json:"priority"`
	Hours          BusinessHours       `json:"business_hours"`
	ClosedAction   ClosedAction        `json:"closed_action"`
	ServiceLevel   ServiceLevel        `json:"service_level"`
	Overflow       Overflow            `json:"overflow"`
	Relaxation     []RelaxStep         `json:"relaxation"`
	Timeouts       QueueTimeouts       `json:"timeouts"`
}

// ServiceLevel is the queue's target: Percent of tasks answered within Seconds.
type ServiceLevel struct {
	Seconds int `json:"seconds"`
	Percent int `json:"percent"`
}

// Overflow moves waiting tasks to another queue after AfterSeconds, and caps
// the wait at MaxWaitSeconds (0 = no cap).
type Overflow struct {
	QueueID        *int64 `json:"queue_id"`
	AfterSeconds   int    `json:"after_seconds"`
	MaxWaitSeconds int    `json:"max_wait_seconds"`
}

// QueueTimeouts override the engine's defaults for this queue (nil = default).
type QueueTimeouts struct {
	OfferSeconds  *int `json:"offer_seconds"`
	WrapUpSeconds *int `json:"wrap_up_seconds"`
}

// RelaxStep widens who may take a task once it has waited AfterSeconds:
// MaxLevel caps the required skill levels, DropSkills ignores skills,
// DropTeam ignores the queue's team.
type RelaxStep struct {
	AfterSeconds int  `json:"after_seconds"`
	MaxLevel     int  `json:"max_level,omitempty"`
	DropSkills   bool `json:"drop_skills,omitempty"`
	DropTeam     bool `json:"drop_team,omitempty"`
}

// BusinessHours are the weekly opening times in Timezone, minus Holidays
// (YYYY-MM-DD). No Days means always open.
type BusinessHours struct {
	Timezone string     `json:"timezone"`
	Days     []OpenSpan `json:"days"`
	Holidays []string   `json:"holidays"`
}

// OpenSpan is one opening span: Day 0 = Sunday, Open/Close "HH:MM".
type OpenSpan struct {
	Day   int    `json:"day"`
	Open  string `json:"open"`
	Close string `json:"close"`
}

// Validate checks and normalises the hours.
func (h *BusinessHours) Validate() error {
	if h.Timezone == "" {
		h.Timezone = "UTC"
	}
	if _, err := time.LoadLocation(h.Timezone); err != nil {
		return agentdesk.FieldError("business_hours.timezone", "unknown time zone %q", h.Timezone)
	}
	for _, d := range h.Days {
		if d.Day < 0 || d.Day > 6 {
			return agentdesk.FieldError("business_hours.days", "day must be 0 (Sunday) to 6")
		}
		o, err1 := minutes(d.Open)
		c, err2 := minutes(d.Close)
		if err1 != nil || err2 != nil || c <= o {
			return agentdesk.FieldError("business_hours.days", "open and close must be HH:MM with open before close")
		}
	}
	if h.Holidays == nil {
		h.Holidays = []string{}
	}
	for _, s := range h.Holidays {
		if _, err := time.Parse(time.DateOnly, s); err != nil {
			return agentdesk.FieldError("business_hours.holidays", "holidays are YYYY-MM-DD dates")
		}
	}
	return nil
}

func minutes(hhmm string) (int, error) {
	t, err := time.Parse("15:04", hhmm)
	if err != nil {
		if hhmm == "24:00" {
			return 24 * 60, nil
		}
		return 0, err
	}
	return t.Hour()*60 + t.Minute(), nil
}

// OpenAt reports whether the hours are open at t.
func (h BusinessHours) OpenAt(t time.Time) bool {
	loc, err := time.LoadLocation(h.Timezone)
	if err != nil {
		loc = time.UTC
	}
	lt := t.In(loc)
	day := lt.Format(time.DateOnly)
	for _, hol := range h.Holidays {
		if hol == day {
			return false
		}
	}
	if len(h.Days) == 0 {
		return true
	}
	m := lt.Hour()*60 + lt.Minute()
	for _, d := range h.Days {
		o, _ := minutes(d.Open)
		c, _ := minutes(d.Close)
		if int(lt.Weekday()) == d.Day && m >= o && m < c {
			return true
		}
	}
	return false
}

// Validate checks and normalises the caller-set fields.
func (q *Queue) Validate() error {
	q.Name = strings.TrimSpace(q.Name)
	if q.Name == "" || len(q.Name) > 100 {
		return agentdesk.FieldError("name", "must be 1-100 characters")
	}
	for _, c := range q.Channels {
		if !c.Valid() {
			return agentdesk.FieldError("channels", "unknown channel %q", c)
		}
	}
	if q.RequiredSkills == nil {
		q.RequiredSkills = map[string]int{}
	}
	if err := validSkills("required_skills", q.RequiredSkills); err != nil {
		return err
	}
	if q.Priority < 0 || q.Priority > 99 {
		return agentdesk.FieldError("priority", "must be 0-99")
	}
	if err := q.Hours.Validate(); err != nil {
		return err
	}
	switch q.ClosedAction {
	case "":
		q.ClosedAction = ClosedQueue
	case ClosedQueue, ClosedMessage, ClosedCallback:
	case ClosedOverflow:
		if q.Overflow.QueueID == nil {
			return agentdesk.FieldError("overflow.queue_id", "is required when closed_action is overflow")
		}
	default:
		return agentdesk.FieldError("closed_action", "must be queue, overflow, message or callback")
	}
	if q.ServiceLevel.Seconds == 0 {
		q.ServiceLevel.Seconds = 20
	}
	if q.ServiceLevel.Percent == 0 {
		q.ServiceLevel.Percent = 80
	}
	if q.ServiceLevel.Seconds < 0 || q.ServiceLevel.Percent < 1 || q.ServiceLevel.Percent > 100 {
		return agentdesk.FieldError("service_level", "seconds must be positive and percent 1-100")
	}
	if q.Overflow.AfterSeconds < 0 || q.Overflow.MaxWaitSeconds < 0 {
		return agentdesk.FieldError("overflow", "seconds must not be negative")
	}
	if q.Overflow.QueueID != nil && q.ID != 0 && *q.Overflow.QueueID == q.ID {
		return agentdesk.FieldError("overflow.queue_id", "a queue cannot overflow into itself")
	}
	sort.SliceStable(q.Relaxation, func(i, j int) bool { return q.Relaxation[i].AfterSeconds < q.Relaxation[j].AfterSeconds })
	for _, s := range q.Relaxation {
		if s.AfterSeconds <= 0 || s.MaxLevel < 0 || s.MaxLevel > 5 {
			return agentdesk.FieldError("relaxation", "each step needs after_seconds > 0 and max_level 0-5")
		}
	}
	if q.Relaxation == nil {
		q.Relaxation = []RelaxStep{}
	}
	if t := q.Timeouts.OfferSeconds; t != nil && (*t < 1 || *t > 3600) {
		return agentdesk.FieldError("timeouts.offer_seconds", "must be 1-3600")
	}
	if t := q.Timeouts.WrapUpSeconds; t != nil && (*t < 0 || *t > 3600) {
		return agentdesk.FieldError("timeouts.wrap_up_seconds", "must be 0-3600")
	}
	return nil
}

func validSkills(field string, skills map[string]int) error {
	for name, lvl := range skills {
		if name == "" || len(name) > 100 {
			return agentdesk.FieldError(field, "skill names must be 1-100 characters")
		}
		if lvl < 1 || lvl > 5 {
			return agentdesk.FieldError(field, "skill %q: level must be 1-5", name)
		}
	}
	return nil
}

// accepts reports whether the queue takes tasks of channel c.
func (q *Queue) accepts(c agentdesk.Channel) bool {
	if len(q.Channels) == 0 {
		return true
	}
	for _, k := range q.Channels {
		if k == c || k == c.CapacityChannel() {
			return true
		}
	}
	return false
}

const queueColumns = `id, name, channels, required_skills, team_id, priority, timezone, business_hours,
	holidays::text[], closed_action, sl_target_seconds, sl_target_percent, max_wait_seconds,
	overflow_queue_id, overflow_after_seconds, relaxation, offer_timeout_seconds, wrap_up_seconds`

func scanQueue(row pgx.Row) (*Queue, error) {
	var q Queue
	var channels []string
	err := row.Scan(&q.ID, &q.Name, &channels, &q.RequiredSkills, &q.TeamID, &q.Priority, &q.Hours.Timezone,
		&q.Hours.Days, &q.Hours.Holidays, &q.ClosedAction, &q.ServiceLevel.Seconds, &q.ServiceLevel.Percent,
		&q.Overflow.MaxWaitSeconds, &q.Overflow.QueueID, &q.Overflow.AfterSeconds, &q.Relaxation,
		&q.Timeouts.OfferSeconds, &q.Timeouts.WrapUpSeconds)
	if err != nil {
		return nil, err
	}
	for _, c := range channels {
		q.Channels = append(q.Channels, agentdesk.Channel(c))
	}
	if q.Channels == nil {
		q.Channels = []agentdesk.Channel{}
	}
	if q.Hours.Holidays == nil {
		q.Hours.Holidays = []string{}
	}
	return &q, nil
}

func channelStrings(cs []agentdesk.Channel) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, string(c))
	}
	return out
}

// CreateQueue adds a queue.
func (e *Engine) CreateQueue(ctx context.Context, accountID int64, q *Queue) error {
	if err := q.Validate(); err != nil {
		return err
	}
	return e.inTx(ctx, func(tx pgx.Tx) error {
		return scanQueueInto(tx.QueryRow(ctx, `
INSERT INTO queues (account_id, name, channels, required_skills, team_id, priority, timezone, business_hours,
	holidays, closed_action, sl_target_seconds, sl_target_percent, max_wait_seconds, overflow_queue_id,
	overflow_after_seconds, relaxation, offer_timeout_seconds, wrap_up_seconds)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::date[], $10, $11, $12, $13, $14, $15, $16, $17, $18)
RETURNING `+queueColumns, append([]any{accountID}, queueSettings(q)...)...), q)
	})
}

// queueSettings are a queue's settings in the order CreateQueue and
// UpdateQueue bind them, after the account (and the id).
func queueSettings(q *Queue) []any {
	return []any{q.Name, channelStrings(q.Channels), q.RequiredSkills, q.TeamID, q.Priority, q.Hours.Timezone,
		daysJSON(q.Hours.Days), q.Hours.Holidays, q.ClosedAction, q.ServiceLevel.Seconds, q.ServiceLevel.Percent,
		q.Overflow.MaxWaitSeconds, q.Overflow.QueueID, q.Overflow.AfterSeconds, q.Relaxation,
		q.Timeouts.OfferSeconds, q.Timeouts.WrapUpSeconds}
}

// scanQueueInto replaces q with the queue as written, as RETURNING gives it.
func scanQueueInto(row pgx.Row, q *Queue) error {
	got, err := scanQueue(row)
	if err != nil {
		return translate(err, "queue")
	}
	*q = *got
	return nil
}

func daysJSON(d []OpenSpan) []OpenSpan {
	if d == nil {
		return []OpenSpan{}
	}
	return d
}

// UpdateQueue replaces a queue's settings. Waiting tasks keep their place.
func (e *Engine) UpdateQueue(ctx context.Context, accountID int64, q *Queue) error {
	if err := q.Validate(); err != nil {
		return err
	}
	return e.inTx(ctx, func(tx pgx.Tx) error {
		return scanQueueInto(tx.QueryRow(ctx, `
UPDATE queues SET name = $3, channels = $4, required_skills = $5, team_id = $6, priority = $7, timezone = $8,
	business_hours = $9, holidays = $10::date[], closed_action = $11, sl_target_seconds = $12,
	sl_target_percent = $13, max_wait_seconds = $14, overflow_queue_id = $15, overflow_after_seconds = $16,
	relaxation = $17, offer_timeout_seconds = $18, wrap_up_seconds = $19, updated_at = now()
WHERE account_id = $1 AND id = $2
RETURNING `+queueColumns, append([]any{accountID, q.ID}, queueSettings(q)...)...), q)
	})
}

// SetBusinessHours replaces only a queue's opening hours and holidays.
func (e *Engine) SetBusinessHours(ctx context.Context, accountID, queueID int64, h BusinessHours) error {
	if err := h.Validate(); err != nil {
		return err
	}
	return e.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
UPDATE queues SET timezone = $3, business_hours = $4, holidays = $5::date[], updated_at = now()
WHERE account_id = $1 AND id = $2`, accountID, queueID, h.Timezone, daysJSON(h.Days), h.Holidays)
		if err != nil {
			return translate(err, "queue")
		}
		if tag.RowsAffected() == 0 {
			return agentdesk.Errorf(agentdesk.NotFound, "queue not found")
		}
		return nil
	})
}

// DeleteQueue removes a queue that has never had a task; a used queue is kept
// for reports and answers Conflict.
func (e *Engine) DeleteQueue(ctx context.Context, accountID, queueID int64) error {
	return e.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM queues WHERE account_id = $1 AND id = $2`, accountID, queueID)
		if err != nil {
			var pg *pgconn.PgError
			if errors.As(err, &pg) && pg.Code == "23503" {
				return agentdesk.Errorf(agentdesk.Conflict, "queue has tasks; it is kept for reports")
			}
			return translate(err, "queue")
		}
		if tag.RowsAffected() == 0 {
			return agentdesk.Errorf(agentdesk.NotFound, "queue not found")
		}
		return nil
	})
}

// Queue returns one queue.
func (e *Engine) Queue(ctx context.Context, accountID, queueID int64) (*Queue, error) {
	q, err := scanQueue(e.db.QueryRow(ctx, `SELECT `+queueColumns+` FROM queues WHERE account_id = $1 AND id = $2`, accountID, queueID))
	if err != nil {
		return nil, translate(err, "queue")
	}
	return q, nil
}

// Queues lists an account's queues by name.
func (e *Engine) Queues(ctx context.Context, accountID int64) ([]Queue, error) {
	rows, err := e.db.Query(ctx, `SELECT `+queueColumns+` FROM queues WHERE account_id = $1 ORDER BY name`, accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Queue{}
	for rows.Next() {
		q, err := scanQueue(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *q)
	}
	return out, rows.Err()
}

// SetDefaultQueue makes queueID the queue for channel's tasks that name none.
func (e *Engine) SetDefaultQueue(ctx context.Context, accountID int64, channel agentdesk.Channel, queueID int64) error {
	if !channel.Valid() {
		return agentdesk.FieldError("channel", "unknown channel %q", channel)
	}
	return e.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
INSERT INTO queue_defaults (account_id, channel, queue_id) VALUES ($1, $2, $3)
ON CONFLICT (account_id, channel) DO UPDATE SET queue_id = EXCLUDED.queue_id`, accountID, string(channel), queueID)
		return translate(err, "queue")
	})
}

// defaultQueue finds (or creates, named after the channel) the queue for a
// channel's tasks, preferring a default set for the exact channel.
func defaultQueue(ctx context.Context, tx querier, accountID int64, ch agentdesk.Channel) (int64, error) {
	var id int64
	err := tx.QueryRow(ctx, `
SELECT queue_id FROM queue_defaults WHERE account_id = $1 AND channel = ANY($2)
ORDER BY channel = $3 DESC LIMIT 1`, accountID, defaultChannels(ch), string(ch)).Scan(&id)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return 0, err
	}
	cc := string(ch.CapacityChannel())
	err = tx.QueryRow(ctx, `
WITH q AS (
	INSERT INTO queues (account_id, name, channels) VALUES ($1, $2, ARRAY[$2])
	ON CONFLICT (account_id, name) DO UPDATE SET name = EXCLUDED.name
	RETURNING id
)
INSERT INTO queue_defaults (account_id, channel, queue_id) SELECT $1, $2, id FROM q
ON CONFLICT (account_id, channel) DO UPDATE SET channel = EXCLUDED.channel
RETURNING queue_id`, accountID, cc).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("default queue for %s: %w", cc, err)
	}
	return id, nil
}
