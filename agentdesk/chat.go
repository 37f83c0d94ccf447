package agentdesk

import (
	"net/url"
	"regexp"
	"strings"
	"time"
)

// ChatWidget is the chat launcher a company puts on its own site with
// `<script src="https://desk/widget.js" data-widget="PUBLIC_ID">`. It
// decides where the site's chats go and which sites may embed it.
type ChatWidget struct {
	ID        int64  `json:"id"`
	AccountID int64  `json:"-"`
	PublicID  string `json:"public_id"` // what the page names; unique across accounts
	Name      string `json:"name"`
	// AllowedOrigins are the sites (scheme://host[:port]) the widget may run
	// on; "*" allows any.
	AllowedOrigins []string `json:"allowed_origins"`
	// DefaultQueueID takes chats that name no topic; nil: the account's
	// default chat queue.
	DefaultQueueID *int64      `json:"default_queue_id"`
	Topics         []ChatTopic `json:"topics"`
	Title          string      `json:"title"`
	Greeting       string      `json:"greeting"`
	// Offline says what visitors get when none of the widget's queues is
	// open: OfflineMessage ("leave a message": an email ticket) or
	// OfflineQueue (chats wait for the queue to open).
	Offline   OfflineBehaviour `json:"offline_behaviour"`
	CreatedAt time.Time        `json:"created_at"`
	UpdatedAt time.Time        `json:"updated_at"`
}

// ChatTopic is one choice of the pre-chat form and the queue it leads to.
type ChatTopic struct {
	Name    string `json:"name"`
	QueueID int64  `json:"queue_id"`
}

// OfflineBehaviour is what a widget does outside its queues' hours.
type OfflineBehaviour string

const (
	OfflineMessage OfflineBehaviour = "message"
	OfflineQueue   OfflineBehaviour = "queue"
)

var publicIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidWidgetID reports whether s can be a widget's public id.
func ValidWidgetID(s string) bool { return publicIDPattern.MatchString(s) }

// Validate checks and normalises a widget as an admin wrote it.
func (w *ChatWidget) Validate() error {
	if !ValidWidgetID(w.PublicID) {
		return FieldError("public_id", "must be 1-64 letters, digits, '-' or '_'")
	}
	w.Name = strings.TrimSpace(w.Name)
	if w.Name == "" || len(w.Name) > 200 {
		return FieldError("name", "must be 1-200 characters")
	}
	if len(w.AllowedOrigins) > 50 {
		return FieldError("allowed_origins", "at most 50 origins")
	}
	for i, o := range w.AllowedOrigins {
		o = strings.TrimSuffix(strings.TrimSpace(o), "/")
		if o != "*" {
			u, err := url.Parse(o)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
				return FieldError("allowed_origins", "%q is not an origin like https://shop.example.com", o)
			}
			o = strings.ToLower(o)
		}
		w.AllowedOrigins[i] = o
	}
	if w.AllowedOrigins == nil {
		w.AllowedOrigins = []string{}
	}
	if len(w.Topics) > 20 {
		return FieldError("topics", "at most 20 topics")
	}
	for i := range w.Topics {
		w.Topics[i].Name = strings.TrimSpace(w.Topics[i].Name)
		if w.Topics[i].Name == "" || len(w.Topics[i].Name) > 100 {
			return FieldError("topics.name", "must be 1-100 characters")
		}
		if w.Topics[i].QueueID <= 0 {
			return FieldError("topics.queue_id", "is required")
		}
	}
	if w.Topics == nil {
		w.Topics = []ChatTopic{}
	}
	w.Title = strings.TrimSpace(w.Title)
	if len(w.Title) > 200 {
		return FieldError("title", "must be at most 200 characters")
	}
	w.Greeting = strings.TrimSpace(w.Greeting)
	if len(w.Greeting) > 1000 {
		return FieldError("greeting", "must be at most 1000 characters")
	}
	if w.Offline == "" {
		w.Offline = OfflineMessage
	}
	if w.Offline != OfflineMessage && w.Offline != OfflineQueue {
		return FieldError("offline_behaviour", "must be message or queue")
	}
	return nil
}

// Chat is one conversation started from a widget: its ticket, the visitor
// who started it, its routing task and how it ended.
type Chat struct {
	TicketID  int64
	WidgetID  int64
	VisitorID string
	TaskID    int64 // 0 when it was not routed
	StartedAt time.Time
	EndedAt   *time.Time
	EndedBy   string // "visitor" or "agent"
}

// CSAT is a customer's rating of how a ticket was handled.
type CSAT struct {
	Rating  int       `json:"rating"` // 1 (bad) .. 5 (great)
	Comment string    `json:"comment"`
	RatedAt time.Time `json:"rated_at"`
}

// Validate checks a rating as the customer gave it.
func (c *CSAT) Validate() error {
	if c.Rating < 1 || c.Rating > 5 {
		return FieldError("rating", "must be 1 to 5")
	}
	c.Comment = strings.TrimSpace(c.Comment)
	if len(c.Comment) > 2000 {
		return &Error{Kind: TooLarge, Field: "comment", Message: "must be at most 2000 characters"}
	}
	return nil
}
