package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
)

// Chat widgets and the chats started from them (migration 009).

const widgetColumns = `id, account_id, public_id, name, allowed_origins, default_queue_id, title, greeting, offline_behaviour, created_at, updated_at`

func scanWidget(row pgx.Row) (*agentdesk.ChatWidget, error) {
	var w agentdesk.ChatWidget
	err := row.Scan(&w.ID, &w.AccountID, &w.PublicID, &w.Name, &w.AllowedOrigins, &w.DefaultQueueID, &w.Title, &w.Greeting, &w.Offline, &w.CreatedAt, &w.UpdatedAt)
	if err != nil {
		return nil, err
	}
	return &w, nil
}

func loadTopics(ctx context.Context, q querier, w *agentdesk.ChatWidget) error {
	rows, err := q.Query(ctx, `SELECT name, queue_id FROM chat_widget_topics WHERE account_id = $1 AND widget_id = $2 ORDER BY position`, w.AccountID, w.ID)
	if err != nil {
		return err
	}
	w.Topics, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (agentdesk.ChatTopic, error) {
		var t agentdesk.ChatTopic
		return t, r.Scan(&t.Name, &t.QueueID)
	})
	if w.Topics == nil {
		w.Topics = []agentdesk.ChatTopic{}
	}
	return err
}

func saveTopics(ctx context.Context, tx pgx.Tx, w *agentdesk.ChatWidget) error {
	if _, err := tx.Exec(ctx, `DELETE FROM chat_widget_topics WHERE account_id = $1 AND widget_id = $2`, w.AccountID, w.ID); err != nil {
		return err
	}
	for i, t := range w.Topics {
		if _, err := tx.Exec(ctx, `INSERT INTO chat_widget_topics (account_id, widget_id, position, name, queue_id) VALUES ($1, $2, $3, $4, $5)`,
			w.AccountID, w.ID, i, t.Name, t.QueueID); err != nil {
			return renameConstraintField(translate(err, "topic"), "topics.queue_id")
		}
	}
	return nil
}

// renameConstraintField names the field an admin wrote for a foreign key
// that points nowhere.
func renameConstraintField(err error, field string) error {
	var e *agentdesk.Error
	if errors.As(err, &e) && e.Kind == agentdesk.Invalid {
		c := *e
		c.Field = field
		c.Message = "no such queue"
		return &c
	}
	return err
}

// CreateWidget stores a new chat widget with its topics.
func (s *Store) CreateWidget(ctx context.Context, actor agentdesk.Actor, w *agentdesk.ChatWidget) error {
	if err := w.Validate(); err != nil {
		return err
	}
	w.AccountID = actor.AccountID
	return InTx(ctx, s.db, func(tx pgx.Tx) error {
		stored, err := scanWidget(tx.QueryRow(ctx, `INSERT INTO chat_widgets (account_id, public_id, name, allowed_origins, default_queue_id, title, greeting, offline_behaviour)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING `+widgetColumns,
			actor.AccountID, w.PublicID, w.Name, w.AllowedOrigins, w.DefaultQueueID, w.Title, w.Greeting, w.Offline))
		if err != nil {
			return widgetError(err)
		}
		stored.Topics = w.Topics
		*w = *stored
		if err := saveTopics(ctx, tx, w); err != nil {
			return err
		}
		return Audit(ctx, tx, actor, "widget.create", fmt.Sprintf("widget:%d", w.ID), w)
	})
}

func widgetError(err error) error {
	err = translate(err, "chat widget")
	var e *agentdesk.Error
	if errors.As(err, &e) {
		switch e.Kind {
		case agentdesk.Conflict:
			c := *e
			c.Field, c.Message = "public_id", "a chat widget with this public id exists"
			return &c
		case agentdesk.Invalid:
			return renameConstraintField(err, "default_queue_id")
		}
	}
	return err
}

// UpdateWidget applies change to a widget under a row lock.
func (s *Store) UpdateWidget(ctx context.Context, actor agentdesk.Actor, id int64, change func(*agentdesk.ChatWidget) error) (*agentdesk.ChatWidget, error) {
	var out *agentdesk.ChatWidget
	err := InTx(ctx, s.db, func(tx pgx.Tx) error {
		w, err := scanWidget(tx.QueryRow(ctx, `SELECT `+widgetColumns+` FROM chat_widgets WHERE account_id = $1 AND id = $2 FOR UPDATE`, actor.AccountID, id))
		if err != nil {
			return translate(err, "chat widget")
		}
		if err := loadTopics(ctx, tx, w); err != nil {
			return err
		}
		if err := change(w); err != nil {
			return err
		}
		if err := w.Validate(); err != nil {
			return err
		}
		stored, err := scanWidget(tx.QueryRow(ctx, `UPDATE chat_widgets SET public_id = $3, name = $4, allowed_origins = $5, default_queue_id = $6,
			title = $7, greeting = $8, offline_behaviour = $9, updated_at = now()
			WHERE account_id = $1 AND id = $2 RETURNING `+widgetColumns,
			actor.AccountID, id, w.PublicID, w.Name, w.AllowedOrigins, w.DefaultQueueID, w.Title, w.Greeting, w.Offline))
		if err != nil {
			return widgetError(err)
		}
		stored.Topics = w.Topics
		if err := saveTopics(ctx, tx, stored); err != nil {
			return err
		}
		out = stored
		return Audit(ctx, tx, actor, "widget.update", fmt.Sprintf("widget:%d", id), stored)
	})
	return out, err
}

// Widget returns one widget of the account.
func (s *Store) Widget(ctx context.Context, accountID, id int64) (*agentdesk.ChatWidget, error) {
	w, err := scanWidget(s.db.QueryRow(ctx, `SELECT `+widgetColumns+` FROM chat_widgets WHERE account_id = $1 AND id = $2`, accountID, id))
	if err != nil {
		return nil, translate(err, "chat widget")
	}
	return w, loadTopics(ctx, s.db, w)
}

// Widgets lists the account's widgets, oldest first (an account has a few).
func (s *Store) Widgets(ctx context.Context, accountID int64) ([]agentdesk.ChatWidget, error) {
	rows, err := s.db.Query(ctx, `SELECT `+widgetColumns+` FROM chat_widgets WHERE account_id = $1 ORDER BY created_at, id LIMIT 500`, accountID)
	if err != nil {
		return nil, err
	}
	ws, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (agentdesk.ChatWidget, error) {
		w, err := scanWidget(r)
		if err != nil {
			return agentdesk.ChatWidget{}, err
		}
		return *w, nil
	})
	if err != nil {
		return nil, err
	}
	for i := range ws {
		if err := loadTopics(ctx, s.db, &ws[i]); err != nil {
			return nil, err
		}
	}
	if ws == nil {
		ws = []agentdesk.ChatWidget{}
	}
	return ws, nil
}

// WidgetByPublicID finds a widget by the id its pages name (any account):
// the public chat endpoints learn their account from it.
func (s *Store) WidgetByPublicID(ctx context.Context, publicID string) (*agentdesk.ChatWidget, error) {
	if !agentdesk.ValidWidgetID(publicID) {
		return nil, agentdesk.Errorf(agentdesk.NotFound, "no such chat widget")
	}
	w, err := scanWidget(s.db.QueryRow(ctx, `SELECT `+widgetColumns+` FROM chat_widgets WHERE public_id = $1`, publicID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, agentdesk.Errorf(agentdesk.NotFound, "no such chat widget")
	}
	if err != nil {
		return nil, err
	}
	return w, loadTopics(ctx, s.db, w)
}

// VisitorKnown reports whether visitorID is linked to a customer of the account.
func (s *Store) VisitorKnown(ctx context.Context, accountID int64, visitorID string) (bool, error) {
	var ok bool
	err := s.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM identities WHERE account_id = $1 AND kind = 'visitor' AND network = '' AND value = $2)
		OR EXISTS (SELECT 1 FROM chats WHERE account_id = $1 AND visitor_id = $2)`, accountID, visitorID).Scan(&ok)
	return ok, err
}

// VisitorProfile is the name and email a visitor gave when it last started
// a chat, to pre-fill its pre-chat form ("" when it never did). It is what
// the visitor typed, not its customer's record: visitors are linked to a
// customer by an email nobody verified, and must not learn that customer's
// details from it.
func (s *Store) VisitorProfile(ctx context.Context, accountID int64, visitorID string) (name, email string, err error) {
	err = s.db.QueryRow(ctx, `
SELECT coalesce(m.meta->>'name', ''), coalesce(m.meta->>'email', '')
FROM chats c JOIN messages m ON m.ticket_id = c.ticket_id AND m.account_id = c.account_id AND m.direction = 'in'
WHERE c.account_id = $1 AND c.visitor_id = $2
ORDER BY c.ticket_id DESC, m.created_at, m.id LIMIT 1`, accountID, visitorID).Scan(&name, &email)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", nil
	}
	return name, email, err
}

const chatColumns = `ticket_id, widget_id, visitor_id, coalesce(task_id, 0), started_at, ended_at, coalesce(ended_by, '')`

func scanChat(row pgx.Row) (*agentdesk.Chat, error) {
	var c agentdesk.Chat
	if err := row.Scan(&c.TicketID, &c.WidgetID, &c.VisitorID, &c.TaskID, &c.StartedAt, &c.EndedAt, &c.EndedBy); err != nil {
		return nil, err
	}
	return &c, nil
}

// CreateChatTx records a chat in the caller's transaction (the one that
// stored its ticket and routed it).
func CreateChatTx(ctx context.Context, tx pgx.Tx, accountID int64, c *agentdesk.Chat) error {
	var task *int64
	if c.TaskID != 0 {
		task = &c.TaskID
	}
	err := tx.QueryRow(ctx, `INSERT INTO chats (account_id, ticket_id, widget_id, visitor_id, task_id) VALUES ($1, $2, $3, $4, $5) RETURNING started_at`,
		accountID, c.TicketID, c.WidgetID, c.VisitorID, task).Scan(&c.StartedAt)
	return translate(err, "chat")
}

// LatestChat is the visitor's newest chat (ended or not); NotFound when
// there is none.
func LatestChat(ctx context.Context, q querier, accountID int64, visitorID string) (*agentdesk.Chat, error) {
	c, err := scanChat(q.QueryRow(ctx, `SELECT `+chatColumns+` FROM chats WHERE account_id = $1 AND visitor_id = $2 ORDER BY ticket_id DESC LIMIT 1`, accountID, visitorID))
	if err != nil {
		return nil, translate(err, "chat")
	}
	return c, nil
}

// ChatOfTicket is the chat a ticket was started by; NotFound for other tickets.
func ChatOfTicket(ctx context.Context, q querier, accountID, ticketID int64) (*agentdesk.Chat, error) {
	c, err := scanChat(q.QueryRow(ctx, `SELECT `+chatColumns+` FROM chats WHERE account_id = $1 AND ticket_id = $2`, accountID, ticketID))
	if err != nil {
		return nil, translate(err, "chat")
	}
	return c, nil
}

// ChatOfTask is the chat a routing task carries; NotFound for other tasks.
func ChatOfTask(ctx context.Context, q querier, accountID, taskID int64) (*agentdesk.Chat, error) {
	c, err := scanChat(q.QueryRow(ctx, `SELECT `+chatColumns+` FROM chats WHERE account_id = $1 AND task_id = $2`, accountID, taskID))
	if err != nil {
		return nil, translate(err, "chat")
	}
	return c, nil
}

// EndChatTx marks a chat ended by "visitor" or "agent"; it reports false
// when it had ended before (ending is idempotent).
func EndChatTx(ctx context.Context, tx pgx.Tx, accountID, ticketID int64, by string) (bool, error) {
	tag, err := tx.Exec(ctx, `UPDATE chats SET ended_at = now(), ended_by = $3 WHERE account_id = $1 AND ticket_id = $2 AND ended_at IS NULL`, accountID, ticketID, by)
	if err != nil {
		return false, fmt.Errorf("end chat: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// RateTicket stores the customer's CSAT rating on a ticket. A ticket is
// rated once: a second rating is a Conflict.
func (s *Store) RateTicket(ctx context.Context, accountID, ticketID int64, c *agentdesk.CSAT) error {
	if err := c.Validate(); err != nil {
		return err
	}
	err := s.db.QueryRow(ctx, `UPDATE tickets SET csat_rating = $3, csat_comment = $4, csat_rated_at = now()
		WHERE account_id = $1 AND id = $2 AND csat_rating IS NULL RETURNING csat_rated_at`, accountID, ticketID, c.Rating, c.Comment).Scan(&c.RatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return agentdesk.Errorf(agentdesk.Conflict, "this chat has been rated already")
	}
	return err
}

// TicketCSAT reads a ticket's rating; nil when it has none.
func (s *Store) TicketCSAT(ctx context.Context, accountID, ticketID int64) (*agentdesk.CSAT, error) {
	var rating *int
	var c agentdesk.CSAT
	err := s.db.QueryRow(ctx, `SELECT csat_rating, csat_comment, coalesce(csat_rated_at, 'epoch') FROM tickets WHERE account_id = $1 AND id = $2`, accountID, ticketID).
		Scan(&rating, &c.Comment, &c.RatedAt)
	if err != nil {
		return nil, translate(err, "ticket")
	}
	if rating == nil {
		return nil, nil
	}
	c.Rating = *rating
	return &c, nil
}

// ChatMessage is a message as the chat's visitor may see it.
type ChatMessage struct {
	ID          int64          `json:"id"`
	TicketID    int64          `json:"ticket_id"`
	Direction   string         `json:"direction"`
	Body        string         `json:"body"`
	AuthorName  string         `json:"author_name,omitempty"`
	ClientMsgID string         `json:"client_msg_id,omitempty"`
	Meta        map[string]any `json:"meta,omitempty"`
	CreatedAt   time.Time      `json:"created_at"`
	// Attachments are filled by the caller (Store.MessageAttachments).
	Attachments []agentdesk.Attachment `json:"attachments,omitempty"`
}

// ChatTranscript is what the visitor of a chat ticket may see of it: the
// last 200 messages both ways, oldest first; internal notes never.
func ChatTranscript(ctx context.Context, q querier, accountID, ticketID int64) ([]ChatMessage, error) {
	rows, err := q.Query(ctx, `
SELECT * FROM (
	SELECT m.id, m.ticket_id, m.direction, m.body, coalesce(a.name, ''), coalesce(m.meta->>'client_msg_id', ''),
		CASE WHEN m.meta ? 'attachments' THEN jsonb_build_object('attachments', m.meta->'attachments') END, m.created_at
	FROM messages m LEFT JOIN agents a ON a.account_id = m.account_id AND a.id = m.author_id
	WHERE m.ticket_id = $2 AND m.account_id = $1 AND m.direction IN ('in', 'out') AND m.kind = 'chat'
	ORDER BY m.created_at DESC, m.id DESC LIMIT 200) r
ORDER BY 8, 1`, accountID, ticketID)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ChatMessage, error) {
		var m ChatMessage
		err := r.Scan(&m.ID, &m.TicketID, &m.Direction, &m.Body, &m.AuthorName, &m.ClientMsgID, &m.Meta, &m.CreatedAt)
		return m, err
	})
	if out == nil {
		out = []ChatMessage{}
	}
	return out, err
}

// AgentName is an agent's display name.
func AgentName(ctx context.Context, q querier, accountID, agentID int64) (string, error) {
	var name string
	err := q.QueryRow(ctx, `SELECT name FROM agents WHERE account_id = $1 AND id = $2`, accountID, agentID).Scan(&name)
	return name, translate(err, "agent")
}

// ChatState is where a chat stands, for a visitor who comes back.
type ChatState struct {
	TicketDone bool   // the ticket is solved or closed
	Rated      bool   // the customer has rated it
	AgentName  string // the assignee's display name, "" when unassigned
	TaskState  string // the routing task's state, "" without one
}

// ChatStateOf reads the ticket and task state of chat c.
func ChatStateOf(ctx context.Context, q querier, accountID int64, c *agentdesk.Chat) (ChatState, error) {
	var st ChatState
	err := q.QueryRow(ctx, `
SELECT t.status IN ('solved', 'closed'), t.csat_rating IS NOT NULL, coalesce(a.name, ''),
	coalesce((SELECT k.state FROM tasks k WHERE k.account_id = t.account_id AND k.id = $3), '')
FROM tickets t LEFT JOIN agents a ON a.account_id = t.account_id AND a.id = t.assignee_id
WHERE t.account_id = $1 AND t.id = $2`, accountID, c.TicketID, c.TaskID).Scan(&st.TicketDone, &st.Rated, &st.AgentName, &st.TaskState)
	return st, translate(err, "ticket")
}
