package web

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
	"agentdesk/web/hub"
)

func init() { registerAPI(mountWidgetChat) }

// The public side of the chat widget (web/ui/WIDGET.md): widget.js on a
// customer's site calls these cross-origin. A visitor first gets a widget
// token bound to its visitor id (POST …/session); every other call carries
// it as "Authorization: Bearer wt1.…". Origins are checked against the
// widget's allow-list on every call, including the CORS preflight.

// chatConfig is the chat channel's state on this server.
type chatConfig struct {
	secret []byte // signs widget tokens (WithHub); nil: chat is off
	live   bool   // a hub is mounted: REST changes publish events (live.go)

	sessions *keyedLimiter // token issues per client address
	starts   *keyedLimiter // chats started per address and per visitor
	calls    *keyedLimiter // other widget calls per address
	offline  *keyedLimiter // "leave a message" per address
}

// Limits of the widget's public calls.
const (
	widgetTokenTTL = 12 * time.Hour
	// MaxChatBody is the longest chat message, in characters (as chat.send).
	MaxChatBody    = 10000
	maxWidgetInput = 64 << 10
)

var visitorIDPattern = regexp.MustCompile(`^v_[A-Za-z0-9_-]{1,64}$`)

func mountWidgetChat(s *Server, a *apiRouter) {
	if s.chat.sessions == nil {
		s.chat.sessions = newKeyedLimiter(30, 10*time.Minute)
		s.chat.starts = newKeyedLimiter(10, 10*time.Minute)
		s.chat.calls = newKeyedLimiter(60, 10*time.Minute)
		s.chat.offline = newKeyedLimiter(10, 10*time.Minute)
	}
	// The token is a header, not a cookie: a cross-site request cannot
	// borrow it, so the cookie sessions' CSRF protection does not apply.
	s.cop.AddInsecureBypassPattern("/api/v1/widget/")
	const auth = "widget token (Authorization: Bearer wt1.…) from POST /widget/{widget}/session; the page's Origin must be one the widget allows"
	a.route("POST", "/widget/{widget}/session", "", "A chat widget starts (public, rate limited per address): a signed token for a new or returning visitor, whether chat is online, the topics, and the visitor's open chat",
		s.widgetCall(false, s.widgetSession), doc{Body: sessionRequest{}, Response: sessionResponse{}, Auth: "none: public; the page's Origin must be one the widget allows"})
	a.route("POST", "/widget/{widget}/chat", "", "Start a chat from the pre-chat form: the customer (by visitor id, linked by email), the chat ticket and its first message, routed to the topic's queue",
		s.widgetCall(true, s.startChat), doc{Body: startChatRequest{}, Response: chatStarted{}, Status: 201, Auth: auth})
	a.route("POST", "/widget/{widget}/chat/end", "", "The visitor ends the open chat; a chat still waiting leaves the queue (abandoned)",
		s.widgetCall(true, s.endChat), doc{Status: 204, Auth: auth})
	a.route("POST", "/widget/{widget}/chat/rating", "", "The visitor rates the latest chat (CSAT 1-5 and a comment), stored on its ticket once",
		s.widgetCall(true, s.rateChat), doc{Body: ratingRequest{}, Status: 204, Auth: auth})
	a.route("POST", "/widget/{widget}/chat/transcript", "", "Email the latest chat's transcript to the address the chat was started with",
		s.widgetCall(true, s.chatTranscript), doc{Body: transcriptRequest{}, Status: 202, Auth: auth})
	a.route("POST", "/widget/{widget}/messages", "", "Leave a message while chat is offline: an email ticket, routed like mail",
		s.widgetCall(true, s.leaveMessage), doc{Body: leaveMessageRequest{}, Response: messageLeft{}, Status: 201, Auth: auth})
	for _, p := range []string{"session", "chat", "chat/end", "chat/rating", "chat/transcript", "messages"} {
		a.route("OPTIONS", "/widget/{widget}/"+p, "", "CORS preflight of the widget's call: allowed for the origins the widget allows",
			s.widgetPreflight, doc{Status: 204, Auth: "none"})
	}
}

// widgetCall wraps a widget endpoint: it finds the widget, checks the
// page's origin (and answers CORS for it) and, when withToken, the visitor's
// widget token.
func (s *Server) widgetCall(withToken bool, h func(w http.ResponseWriter, r *http.Request, cw *agentdesk.ChatWidget, v *hub.WidgetToken) error) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		cw, err := s.widgetForOrigin(w, r)
		if err != nil {
			return err
		}
		if len(s.chat.secret) == 0 {
			return agentdesk.Errorf(agentdesk.Unavailable, "chat is not available on this server")
		}
		if !withToken {
			return h(w, r, cw, nil)
		}
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			return agentdesk.Errorf(agentdesk.Unauthenticated, "send the widget token as Authorization: Bearer …")
		}
		tok, err := hub.ParseWidgetToken(s.chat.secret, raw, time.Now())
		if err != nil {
			return err
		}
		if tok.AccountID != cw.AccountID || tok.WidgetID != cw.PublicID {
			return agentdesk.Errorf(agentdesk.Unauthenticated, "widget token is for another chat widget")
		}
		if !s.chat.calls.Allow("ip:" + clientIP(r)) {
			return rateLimited(w, "too many requests from this address; try again in a minute")
		}
		return h(w, r, cw, &tok)
	}
}

func rateLimited(w http.ResponseWriter, msg string) error {
	w.Header().Set("Retry-After", "60")
	return agentdesk.Errorf(agentdesk.RateLimited, "%s", msg)
}

// widgetForOrigin loads the widget named in the path and lets the page's
// origin read the answer when the widget allows it. Requests without an
// Origin (not from a browser page) pass; the token still binds them.
func (s *Server) widgetForOrigin(w http.ResponseWriter, r *http.Request) (*agentdesk.ChatWidget, error) {
	cw, err := s.store.WidgetByPublicID(r.Context(), chiURLParam(r, "widget"))
	if err != nil {
		return nil, err
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		if !originAllowed(origin, cw.AllowedOrigins) {
			return nil, agentdesk.Errorf(agentdesk.Forbidden, "this chat widget is not allowed on %s", origin)
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
	}
	return cw, nil
}

func originAllowed(origin string, allowed []string) bool {
	origin = strings.TrimSuffix(strings.ToLower(origin), "/")
	return slices.ContainsFunc(allowed, func(a string) bool { return a == "*" || strings.TrimSuffix(strings.ToLower(a), "/") == origin })
}

func (s *Server) widgetPreflight(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.widgetForOrigin(w, r); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "POST")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type sessionRequest struct {
	VisitorID string `json:"visitor_id"`
}

type widgetQueue struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

type sessionResponse struct {
	VisitorID string        `json:"visitor_id"`
	Token     string        `json:"token"`
	ExpiresAt time.Time     `json:"expires_at"`
	Online    bool          `json:"online"`
	Queues    []widgetQueue `json:"queues"`
	Title     string        `json:"title,omitempty"`
	Greeting  string        `json:"greeting,omitempty"`
	Name      string        `json:"name,omitempty"`
	Email     string        `json:"email,omitempty"`
	Chat      *chatView     `json:"chat,omitempty"`
}

// chatView is a chat as its visitor sees it again after a reload.
type chatView struct {
	TicketID int64                  `json:"ticket_id"`
	Status   string                 `json:"status"` // queued, active, ended
	Agent    string                 `json:"agent_name"`
	Messages []postgres.ChatMessage `json:"messages"`
	Position int                    `json:"position"`
	EWT      int                    `json:"estimated_wait_seconds"`
}

func newVisitorID() string {
	b := make([]byte, 15)
	rand.Read(b)
	return "v_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

func (s *Server) widgetSession(w http.ResponseWriter, r *http.Request, cw *agentdesk.ChatWidget, _ *hub.WidgetToken) error {
	if !s.chat.sessions.Allow(clientIP(r)) {
		return rateLimited(w, "too many chat sessions from this address; try again in a minute")
	}
	var req sessionRequest
	if err := decode(w, r, &req, 4<<10); err != nil {
		return err
	}
	ctx := r.Context()
	acct := cw.AccountID
	visitor := ""
	if req.VisitorID != "" {
		if !visitorIDPattern.MatchString(req.VisitorID) {
			return agentdesk.FieldError("visitor_id", "is not a visitor id this server issued")
		}
		// A returning visitor keeps its id only if we know it: an id never
		// seen is replaced, so clients cannot pick their own.
		known, err := s.store.VisitorKnown(ctx, acct, req.VisitorID)
		if err != nil {
			return err
		}
		if known {
			visitor = req.VisitorID
		}
	}
	if visitor == "" {
		visitor = newVisitorID()
	}
	exp := time.Now().Add(widgetTokenTTL).Truncate(time.Second)
	res := sessionResponse{
		VisitorID: visitor, ExpiresAt: exp,
		Token:  hub.SignWidgetToken(s.chat.secret, hub.WidgetToken{AccountID: acct, WidgetID: cw.PublicID, VisitorID: visitor, Expires: exp}),
		Online: s.widgetOnline(ctx, cw), Title: cw.Title, Greeting: cw.Greeting, Queues: []widgetQueue{},
	}
	for _, t := range cw.Topics {
		res.Queues = append(res.Queues, widgetQueue{ID: t.QueueID, Name: t.Name})
	}
	var err error
	if res.Name, res.Email, err = s.store.VisitorProfile(ctx, acct, visitor); err != nil {
		return err
	}
	if res.Chat, err = s.chatViewOf(ctx, acct, visitor); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// widgetOnline: chat is offered when routing runs here and one of the
// widget's queues is open now (or the widget lets chats wait for opening).
func (s *Server) widgetOnline(ctx context.Context, cw *agentdesk.ChatWidget) bool {
	if s.routing == nil {
		return false
	}
	if cw.Offline == agentdesk.OfflineQueue {
		return true
	}
	var ids []int64
	if cw.DefaultQueueID != nil {
		ids = append(ids, *cw.DefaultQueueID)
	}
	for _, t := range cw.Topics {
		ids = append(ids, t.QueueID)
	}
	if len(ids) == 0 {
		return true // the account's default chat queue decides when the chat starts
	}
	now := time.Now()
	for _, id := range ids {
		q, err := s.routing.Queue(ctx, cw.AccountID, id)
		if err == nil && q.Hours.OpenAt(now) {
			return true
		}
	}
	return false
}

// chatViewOf is the visitor's chat to show again: the open one, or the last
// one if it ended within the hour and is not rated yet.
func (s *Server) chatViewOf(ctx context.Context, accountID int64, visitor string) (*chatView, error) {
	db := s.store.DB()
	c, err := postgres.LatestChat(ctx, db, accountID, visitor)
	if agentdesk.IsKind(err, agentdesk.NotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	st, err := postgres.ChatStateOf(ctx, db, accountID, c)
	if err != nil {
		return nil, err
	}
	v := &chatView{TicketID: c.TicketID, Agent: st.AgentName}
	switch {
	case c.EndedAt != nil || st.TicketDone:
		if st.Rated || (c.EndedAt != nil && time.Since(*c.EndedAt) > time.Hour) {
			return nil, nil
		}
		v.Status = "ended"
	case st.TaskState == "queued" || st.TaskState == "offered" || (st.TaskState == "" && st.AgentName == ""):
		v.Status = "queued"
		if s.routing != nil && c.TaskID != 0 {
			if p, err := s.routing.Position(ctx, accountID, c.TaskID); err == nil {
				v.Position, v.EWT = p.Position, p.EWTSeconds
			}
		}
	default:
		v.Status = "active"
	}
	if v.Messages, err = postgres.ChatTranscript(ctx, db, accountID, c.TicketID); err != nil {
		return nil, err
	}
	if err := s.chatAttachments(ctx, accountID, v.Messages); err != nil { // widget_attachments.go
		return nil, err
	}
	return v, nil
}

type startChatRequest struct {
	Name    string `json:"name"`
	Email   string `json:"email"`
	QueueID int64  `json:"queue_id,omitempty"`
	Body    string `json:"body"`
}

type chatStarted struct {
	TicketID  int64 `json:"ticket_id"`
	MessageID int64 `json:"message_id"`
	Position  int   `json:"position"`
	EWT       int   `json:"estimated_wait_seconds"`
}

// chatBody checks a chat message's size: over the limit is 413 with a
// message the widget shows as it is.
func chatBody(field, body string) (string, error) {
	body = strings.TrimSpace(body)
	if body == "" {
		return "", agentdesk.FieldError(field, "must not be empty")
	}
	if n := utf8.RuneCountInString(body); n > MaxChatBody {
		return "", &agentdesk.Error{Kind: agentdesk.TooLarge, Field: field, Message: fmt.Sprintf("the message is too long (%d characters; at most %d)", n, MaxChatBody)}
	}
	return body, nil
}

// contactOf checks the pre-chat form's name and email.
func contactOf(name, email string) (string, string, error) {
	name = strings.TrimSpace(name)
	if utf8.RuneCountInString(name) > 200 {
		return "", "", agentdesk.FieldError("name", "must be at most 200 characters")
	}
	if strings.TrimSpace(email) == "" {
		return "", "", agentdesk.FieldError("email", "is required so we can answer")
	}
	e, err := agentdesk.NormalizeEmail(email)
	if err != nil {
		return "", "", renameField(err, "value", "email")
	}
	return name, e, nil
}

func (s *Server) startChat(w http.ResponseWriter, r *http.Request, cw *agentdesk.ChatWidget, v *hub.WidgetToken) error {
	var req startChatRequest
	if err := decode(w, r, &req, maxWidgetInput); err != nil {
		return err
	}
	name, email, err := contactOf(req.Name, req.Email)
	if err != nil {
		return err
	}
	body, err := chatBody("body", req.Body)
	if err != nil {
		return err
	}
	queueID := int64(0)
	if cw.DefaultQueueID != nil {
		queueID = *cw.DefaultQueueID
	}
	if req.QueueID != 0 {
		if !slices.ContainsFunc(cw.Topics, func(t agentdesk.ChatTopic) bool { return t.QueueID == req.QueueID }) && (cw.DefaultQueueID == nil || *cw.DefaultQueueID != req.QueueID) {
			return agentdesk.FieldError("queue_id", "is not a topic of this chat widget")
		}
		queueID = req.QueueID
	} else if queueID == 0 && len(cw.Topics) > 0 {
		queueID = cw.Topics[0].QueueID
	}
	if !s.chat.starts.Allow("ip:"+clientIP(r)) || !s.chat.starts.Allow("v:"+v.VisitorID) {
		return rateLimited(w, "too many chats started; try again in a minute")
	}
	if s.routing == nil || !s.widgetOnline(r.Context(), cw) {
		return agentdesk.Errorf(agentdesk.Unavailable, "chat is offline right now; leave a message instead")
	}
	ctx := r.Context()
	acct := cw.AccountID
	if open, err := s.chatViewOf(ctx, acct, v.VisitorID); err != nil {
		return err
	} else if open != nil && open.Status != "ended" {
		return agentdesk.Errorf(agentdesk.Conflict, "you already have an open chat (ticket %d)", open.TicketID)
	}
	in := agentdesk.Inbound{
		// The visitor id finds a returning customer. The email is added to
		// the visitor's customer only when nobody else holds it: typed,
		// not verified, it never joins the visitor to another customer
		// (widget_identity.go says why).
		Identity: agentdesk.Identity{Kind: agentdesk.IdentityVisitor, Value: v.VisitorID},
		Name:     name, Channel: agentdesk.ChannelChat, Kind: agentdesk.KindChat, Body: body,
		// What the visitor typed, for its next pre-chat form (VisitorProfile)
		// and its transcript (chatStartEmail).
		Meta: map[string]any{"widget": cw.PublicID, "name": name, "email": email},
	}
	var res agentdesk.IngestResult
	var taskID int64
	err = postgres.InTx(ctx, s.store.DB(), func(tx pgx.Tx) error {
		link, err := emailLinkFor(ctx, tx, acct, v.VisitorID, email)
		if err != nil {
			return err
		}
		if link.link {
			in.Extra = []agentdesk.Identity{{Kind: agentdesk.IdentityEmail, Value: email}}
		} else {
			in.Meta["email_verified"], in.Meta["suggested_customer_id"] = false, link.suggested
		}
		if res, err = s.store.Ingest(ctx, tx, acct, in); err != nil {
			return err
		}
		if !link.link {
			if err := markUnverifiedEmail(ctx, tx, acct, res.CustomerID, email, link.suggested); err != nil {
				return err
			}
		}
		if err := s.ingested(ctx, tx, acct, res); err != nil {
			return err
		}
		if taskID, err = s.routing.EnqueueTx(ctx, tx, agentdesk.TaskRequest{AccountID: acct, Channel: agentdesk.ChannelChat, QueueID: queueID,
			TicketID: res.TicketID, CustomerID: res.CustomerID, Attributes: map[string]any{"widget": cw.PublicID}}); err != nil {
			return err
		}
		return postgres.CreateChatTx(ctx, tx, acct, &agentdesk.Chat{TicketID: res.TicketID, WidgetID: cw.ID, VisitorID: v.VisitorID, TaskID: taskID})
	})
	if err != nil {
		return err
	}
	out := chatStarted{TicketID: res.TicketID, MessageID: res.MessageID}
	// The position needs the committed task; it is published as the first
	// chat.queued, and routing publishes it again whenever it changes.
	if p, err := s.routing.Position(ctx, acct, taskID); err == nil {
		out.Position, out.EWT = p.Position, p.EWTSeconds
		if p.Position > 0 {
			err := postgres.InTx(ctx, s.store.DB(), func(tx pgx.Tx) error {
				return hub.Publish(ctx, tx, hub.Event{AccountID: acct, Stream: hub.VisitorStream(v.VisitorID), Type: ChatQueued,
					Data: queuedData{TicketID: res.TicketID, Position: p.Position, EWT: p.EWTSeconds}})
			})
			if err != nil {
				s.log.Warn("chat.queued not published", "ticket_id", res.TicketID, "err", err)
			}
		}
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// visitorChat is the visitor's latest chat; NotFound without one.
func (s *Server) visitorChat(ctx context.Context, v *hub.WidgetToken) (*agentdesk.Chat, error) {
	c, err := postgres.LatestChat(ctx, s.store.DB(), v.AccountID, v.VisitorID)
	if agentdesk.IsKind(err, agentdesk.NotFound) {
		return nil, agentdesk.Errorf(agentdesk.NotFound, "there is no chat; start one first")
	}
	return c, err
}

func (s *Server) endChat(w http.ResponseWriter, r *http.Request, cw *agentdesk.ChatWidget, v *hub.WidgetToken) error {
	var req struct{}
	if err := decode(w, r, &req, 1<<10); err != nil {
		return err
	}
	ctx := r.Context()
	c, err := s.visitorChat(ctx, v)
	if err != nil {
		return err
	}
	if c.EndedAt == nil && c.TaskID != 0 && s.routing != nil {
		// Still waiting: the contact leaves the queue, its wait recorded.
		err := s.routing.Abandon(ctx, v.AccountID, c.TaskID, "customer ended the chat")
		if err != nil && !agentdesk.IsKind(err, agentdesk.Conflict) {
			return err
		}
	}
	err = postgres.InTx(ctx, s.store.DB(), func(tx pgx.Tx) error {
		return endChatTx(ctx, tx, v.AccountID, c.TicketID, "visitor")
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type ratingRequest struct {
	Rating  int    `json:"rating"`
	Comment string `json:"comment"`
}

func (s *Server) rateChat(w http.ResponseWriter, r *http.Request, cw *agentdesk.ChatWidget, v *hub.WidgetToken) error {
	var req ratingRequest
	if err := decode(w, r, &req, 16<<10); err != nil {
		return err
	}
	c := &agentdesk.CSAT{Rating: req.Rating, Comment: req.Comment}
	if err := c.Validate(); err != nil {
		return err
	}
	chat, err := s.visitorChat(r.Context(), v)
	if err != nil {
		return err
	}
	if err := s.store.RateTicket(r.Context(), v.AccountID, chat.TicketID, c); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type transcriptRequest struct {
	Email string `json:"email"`
}

// TranscriptSender emails a chat's transcript. The server's email reply
// sender (WithReplySender for email, which queues through the outbox) is
// used when there is one; without it the transcript is recorded on the
// ticket as an outbound email marked not sent.
func (s *Server) chatTranscript(w http.ResponseWriter, r *http.Request, cw *agentdesk.ChatWidget, v *hub.WidgetToken) error {
	var req transcriptRequest
	if err := decode(w, r, &req, 4<<10); err != nil {
		return err
	}
	_, email, err := contactOf("", req.Email)
	if err != nil {
		return err
	}
	ctx := r.Context()
	c, err := s.visitorChat(ctx, v)
	if err != nil {
		return err
	}
	if !s.chat.starts.Allow("transcript:" + v.VisitorID) {
		return rateLimited(w, "too many transcripts; try again in a minute")
	}
	acct := v.AccountID
	t, err := s.store.Ticket(ctx, system(acct), c.TicketID)
	if err != nil {
		return err
	}
	// Only to the address this visitor started the chat with: the
	// endpoint must not mail anyone a visitor names, and the customer's
	// other addresses may have been linked by someone else.
	started, err := chatStartEmail(ctx, s.store.DB(), acct, c.TicketID)
	if err != nil {
		return err
	}
	if started == "" || started != email {
		return agentdesk.FieldError("email", "transcripts go only to the address the chat was started with")
	}
	msgs, err := postgres.ChatTranscript(ctx, s.store.DB(), acct, c.TicketID)
	if err != nil {
		return err
	}
	// Files by name only: a link would need the widget's token to open.
	ids := make([]int64, len(msgs))
	for i := range msgs {
		ids[i] = msgs[i].ID
	}
	files, err := s.store.MessageAttachments(ctx, acct, ids)
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Transcript of your chat (%s)\n\n", t.Subject)
	for _, m := range msgs {
		who := "You"
		if m.Direction == string(agentdesk.DirOut) {
			who = m.AuthorName
			if who == "" {
				who = "Agent"
			}
		}
		fmt.Fprintf(&b, "[%s] %s: %s\n", m.CreatedAt.UTC().Format("2006-01-02 15:04"), who, m.Body)
		for _, f := range files[m.ID] {
			fmt.Fprintf(&b, "    Attached: %s\n", f.Filename)
		}
	}
	body := b.String()
	if len(body) > agentdesk.MaxMessageBody {
		body = body[:agentdesk.MaxMessageBody-3] + "…"
	}
	m := &agentdesk.Message{TicketID: t.ID, CustomerID: t.CustomerID, Kind: agentdesk.KindEmail, Direction: agentdesk.DirOut,
		Subject: "Transcript: " + t.Subject, Body: body, Meta: map[string]any{"transcript_to": email}}
	if rs := s.replies[agentdesk.KindEmail]; rs != nil {
		if _, err := rs.SendReply(ctx, system(acct), t, m); err != nil {
			return err
		}
	} else {
		m.Meta["delivery"] = "not_sent"
		m.Meta["delivery_reason"] = "no email sender configured"
		if err := s.store.AddMessage(ctx, system(acct), m); err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

type leaveMessageRequest struct {
	Name  string `json:"name"`
	Email string `json:"email"`
	Body  string `json:"body"`
}

type messageLeft struct {
	TicketID int64 `json:"ticket_id"`
}

// leaveMessage: outside chat hours the widget takes a message, which
// becomes an email ticket answered by email.
func (s *Server) leaveMessage(w http.ResponseWriter, r *http.Request, cw *agentdesk.ChatWidget, v *hub.WidgetToken) error {
	var req leaveMessageRequest
	if err := decode(w, r, &req, maxWidgetInput); err != nil {
		return err
	}
	name, email, err := contactOf(req.Name, req.Email)
	if err != nil {
		return err
	}
	body, err := chatBody("body", req.Body)
	if err != nil {
		return err
	}
	if !s.chat.offline.Allow("ip:" + clientIP(r)) {
		return rateLimited(w, "too many messages from this address; try again in a minute")
	}
	ctx := r.Context()
	acct := cw.AccountID
	in := agentdesk.Inbound{
		// An email ticket: it belongs to whoever holds the address (the
		// answer goes there). The visitor is linked to that customer only
		// when the address was free or already its own (widget_identity.go).
		Identity: agentdesk.Identity{Kind: agentdesk.IdentityEmail, Value: email},
		Name:     name, Channel: agentdesk.ChannelEmail, Kind: agentdesk.KindEmail, Body: body,
		Meta: map[string]any{"widget": cw.PublicID, "left_while_offline": true},
	}
	var res agentdesk.IngestResult
	err = postgres.InTx(ctx, s.store.DB(), func(tx pgx.Tx) error {
		link, err := emailLinkFor(ctx, tx, acct, v.VisitorID, email)
		if err != nil {
			return err
		}
		if link.link {
			in.Extra = []agentdesk.Identity{{Kind: agentdesk.IdentityVisitor, Value: v.VisitorID}}
		}
		if res, err = s.store.Ingest(ctx, tx, acct, in); err != nil {
			return err
		}
		if err := s.ingested(ctx, tx, acct, res); err != nil {
			return err
		}
		if s.inbound.enq == nil || !res.Routable(in) {
			return nil
		}
		_, err = s.inbound.enq.EnqueueTx(ctx, tx, agentdesk.TaskRequest{AccountID: acct, Channel: agentdesk.ChannelEmail,
			TicketID: res.TicketID, CustomerID: res.CustomerID})
		return err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, messageLeft{TicketID: res.TicketID})
	return nil
}
