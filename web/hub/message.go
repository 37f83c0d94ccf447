package hub

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"agentdesk/agentdesk"
)

// MaxChatRunes is the longest chat message, in characters.
const MaxChatRunes = 10000

// clientMessage is every client→server frame: {type, id, data}. The id is
// the client's; the reply (ack or error) carries it back.
type clientMessage struct {
	Type string          `json:"type"`
	ID   string          `json:"id"`
	Data json.RawMessage `json:"data"`
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

type resumeData struct {
	Streams []struct {
		Stream  string `json:"stream"`
		LastSeq *int64 `json:"last_seq"`
	} `json:"streams"`
}

// resumeAck is the ack of a resume.
type resumeAck struct {
	AccountID int64 `json:"account_id"`
}

type unsubscribeData struct {
	Stream string `json:"stream"`
}

type typingData struct {
	TicketID int64 `json:"ticket_id"`
	Typing   bool  `json:"typing"`
}

type chatSendData struct {
	TicketID    int64  `json:"ticket_id"`
	Body        string `json:"body"`
	ClientMsgID string `json:"client_msg_id"`
	// AttachmentIDs are files uploaded before (web/attachments.go); a
	// message may be only files.
	AttachmentIDs []int64 `json:"attachment_ids"`
}

type presenceData struct {
	State  string `json:"state"`
	Reason string `json:"reason"`
}

type offerData struct {
	OfferID int64  `json:"offer_id"`
	Reason  string `json:"reason"`
}

// MessageTypes lists every client message type; each passes authorize.
var MessageTypes = []string{"resume", "unsubscribe", "ping", "typing", "chat.send", "presence.set", "offer.accept", "offer.reject"}

// request is a decoded client message.
type request struct {
	typ  string
	id   string
	data any // one of the *Data types above
}

func (c *conn) handle(ctx context.Context, raw []byte) {
	var m clientMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&m); err != nil || dec.More() {
		c.sendError("", errorBody{Code: "invalid", Message: "a message is one JSON object {type, id, data}"})
		return
	}
	if len(m.ID) > 100 {
		c.sendError("", errorBody{Code: "invalid", Field: "id", Message: "id must be at most 100 characters"})
		return
	}
	req, err := decodeRequest(m)
	if err != nil {
		c.replyErr(m.ID, err)
		return
	}
	if err := c.h.authorize(ctx, c.p, req); err != nil {
		c.replyErr(req.id, err)
		return
	}
	reply, err := c.do(ctx, req)
	if err != nil {
		c.replyErr(req.id, err)
		return
	}
	c.ack(req.id, reply)
}

func decodeRequest(m clientMessage) (request, error) {
	req := request{typ: m.Type, id: m.ID}
	switch m.Type {
	case "resume":
		req.data = &resumeData{}
	case "unsubscribe":
		req.data = &unsubscribeData{}
	case "ping":
		return req, nil
	case "typing":
		req.data = &typingData{}
	case "chat.send":
		req.data = &chatSendData{}
	case "presence.set":
		req.data = &presenceData{}
	case "offer.accept", "offer.reject":
		req.data = &offerData{}
	case "":
		return req, agentdesk.FieldError("type", "missing")
	default:
		return req, &agentdesk.Error{Kind: "unknown_type", Field: "type", Message: fmt.Sprintf("unknown message type %q", m.Type)}
	}
	if len(m.Data) > 0 && !bytes.Equal(m.Data, []byte("null")) {
		dec := json.NewDecoder(bytes.NewReader(m.Data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(req.data); err != nil {
			return req, dataError(err)
		}
	}
	return req, nil
}

// dataError names the field a JSON decoding error is about.
func dataError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return agentdesk.FieldError(te.Field, "must be a %s", te.Type.Kind())
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return agentdesk.FieldError(strings.Trim(f, `"`), "unknown field")
	}
	return agentdesk.FieldError("data", "not valid JSON for this message type")
}

// authorize decides whether p may send req. Every client message passes
// here before anything is done with it; the rules are in PROTOCOL.md.
func (h *Hub) authorize(ctx context.Context, p Principal, req request) error {
	switch d := req.data.(type) {
	case nil: // ping
		return nil
	case *resumeData:
		if len(d.Streams) > maxSubscriptions {
			return agentdesk.FieldError("streams", "at most %d streams per connection", maxSubscriptions)
		}
		for i, s := range d.Streams {
			if err := h.canSubscribe(ctx, p, s.Stream); err != nil {
				return withField(err, fmt.Sprintf("streams[%d].stream", i))
			}
		}
		return nil
	case *unsubscribeData:
		return nil // only ever touches the connection's own subscriptions
	case *typingData:
		_, err := h.canWriteTicket(ctx, p, d.TicketID)
		return err
	case *chatSendData:
		if p.IsCustomer() && d.TicketID == 0 {
			return nil // the visitor's own open chat, found by the store
		}
		_, err := h.canWriteTicket(ctx, p, d.TicketID)
		return err
	case *presenceData, *offerData:
		if p.IsCustomer() || !p.Actor.IsAgent() {
			return agentdesk.Errorf(agentdesk.Forbidden, "only signed-in agents can %s", req.typ)
		}
		return nil
	}
	return agentdesk.Errorf(agentdesk.Forbidden, "not allowed")
}

func withField(err error, field string) error {
	var e *agentdesk.Error
	if errors.As(err, &e) && e.Field == "" {
		c := *e
		c.Field = field
		return &c
	}
	return err
}

// canSubscribe: visitors follow their own visitor stream and the task
// streams of their own waits only (ticket streams carry internal notes);
// agents their own stream and tickets they can see; supervisors anything in
// their account.
func (h *Hub) canSubscribe(ctx context.Context, p Principal, name string) error {
	if !ValidStream(name) {
		return agentdesk.FieldError("stream", "%q is not a stream name", name)
	}
	kind, id, _ := strings.Cut(name, ":")
	forbidden := agentdesk.Errorf(agentdesk.Forbidden, "you cannot follow %s", name)
	if kind == "access" { // the hubs' own (access.go)
		return forbidden
	}
	if p.IsCustomer() {
		if name == VisitorStream(p.Visitor.VisitorID) {
			return nil
		}
		if kind == "task" && h.actions != nil {
			// the visitor's own wait in the queue (position, estimated wait)
			tid, err := strconv.ParseInt(id, 10, 64)
			if err != nil {
				return forbidden
			}
			t, err := h.actions.Task(ctx, p.AccountID(), tid)
			if err == nil && t.HasVisitor(p.Visitor.VisitorID) {
				return nil
			}
		}
		return forbidden
	}
	a := p.Actor
	if a.Role.AtLeast(agentdesk.RoleSupervisor) {
		if (kind == "supervisor" || kind == "account") && id != strconv.FormatInt(a.AccountID, 10) {
			return forbidden
		}
		return nil
	}
	switch kind {
	case "agent":
		if a.IsAgent() && name == AgentStream(a.AgentID) {
			return nil
		}
	case "account":
		// New tickets outside private teams: every agent may list them.
		if a.IsAgent() && name == AccountStream(a.AccountID) {
			return nil
		}
	case "team":
		// A team's new tickets, private teams' included: members only.
		tid, err := strconv.ParseInt(id, 10, 64)
		if err == nil && a.IsAgent() && containsID(a.TeamIDs, tid) {
			return nil
		}
	case "ticket":
		tid, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			return forbidden
		}
		t, err := h.ticket(ctx, p, tid)
		if err != nil {
			return err
		}
		if t.AssigneeID == a.AgentID || !t.Private || (t.TeamID != 0 && containsID(a.TeamIDs, t.TeamID)) {
			return nil
		}
	}
	return forbidden
}

// canWriteTicket: a visitor writes to the ticket of its own chat; an agent
// to tickets assigned to them; supervisors and admins to any.
func (h *Hub) canWriteTicket(ctx context.Context, p Principal, ticketID int64) (TicketInfo, error) {
	if ticketID <= 0 {
		return TicketInfo{}, agentdesk.FieldError("ticket_id", "required")
	}
	t, err := h.ticket(ctx, p, ticketID)
	if err != nil {
		return t, err
	}
	switch {
	case p.IsCustomer():
		if t.HasVisitor(p.Visitor.VisitorID) {
			return t, nil
		}
		// Not "forbidden": a visitor must not learn other tickets exist.
		return t, agentdesk.Errorf(agentdesk.NotFound, "ticket not found")
	case !p.Actor.IsAgent():
		return t, agentdesk.Errorf(agentdesk.Forbidden, "API tokens cannot write into tickets over the websocket")
	case p.Actor.Role.AtLeast(agentdesk.RoleSupervisor), t.AssigneeID == p.Actor.AgentID:
		return t, nil
	}
	return t, &agentdesk.Error{Kind: agentdesk.Forbidden, Field: "ticket_id", Message: "this ticket is not assigned to you"}
}

func (h *Hub) ticket(ctx context.Context, p Principal, id int64) (TicketInfo, error) {
	if h.actions == nil {
		return TicketInfo{}, agentdesk.Errorf(agentdesk.Unavailable, "not available")
	}
	return h.actions.Ticket(ctx, p.AccountID(), id)
}

func containsID(ids []int64, id int64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// do carries out an authorised request and returns the ack's data.
func (c *conn) do(ctx context.Context, req request) (any, error) {
	h, p := c.h, c.p
	switch d := req.data.(type) {
	case nil:
		return nil, nil
	case *resumeData:
		if err := c.resume(d); err != nil {
			return nil, err
		}
		if p.IsCustomer() {
			return nil, nil
		}
		// Stream names carry the account ("account:7"); the desk learns it
		// here to follow its lists' streams on demand.
		return resumeAck{AccountID: p.AccountID()}, nil
	case *unsubscribeData:
		k := streamKey{p.AccountID(), d.Stream}
		if i := c.subIndex(k); i >= 0 {
			h.unsubscribe(c, c.subs[i])
			c.subs = slices.Delete(c.subs, i, i+1)
		}
		return nil, nil
	case *typingData:
		if err := c.rateLimit(); err != nil {
			return nil, err
		}
		return nil, c.typing(ctx, d)
	case *chatSendData:
		d.Body = strings.TrimSpace(d.Body)
		if d.Body == "" && len(d.AttachmentIDs) == 0 {
			return nil, agentdesk.FieldError("body", "a message cannot be empty")
		}
		if n := utf8.RuneCountInString(d.Body); n > MaxChatRunes {
			return nil, &agentdesk.Error{Kind: agentdesk.TooLarge, Field: "body", Message: fmt.Sprintf("a message can have at most %d characters; this one has %d", MaxChatRunes, n)}
		}
		if err := c.rateLimit(); err != nil {
			return nil, err
		}
		msgID, ticketID, err := h.actions.SendChat(ctx, p, d.TicketID, ChatMessage{Body: d.Body, ClientMsgID: d.ClientMsgID, AttachmentIDs: d.AttachmentIDs})
		if err != nil {
			return nil, err
		}
		// Committed: the agents and the visitor connected here get it now.
		h.Wake(p.AccountID(), TicketStream(ticketID))
		if p.IsCustomer() {
			h.Wake(p.AccountID(), VisitorStream(p.Visitor.VisitorID))
		}
		return map[string]int64{"message_id": msgID, "ticket_id": ticketID}, nil
	case *presenceData:
		return nil, h.actions.SetPresence(ctx, p.Actor, d.State, d.Reason)
	case *offerData:
		if d.OfferID <= 0 {
			return nil, agentdesk.FieldError("offer_id", "required")
		}
		if req.typ == "offer.accept" {
			return nil, h.actions.AcceptOffer(ctx, p.Actor, d.OfferID)
		}
		return nil, h.actions.RejectOffer(ctx, p.Actor, d.OfferID, d.Reason)
	}
	return nil, agentdesk.Errorf(agentdesk.Internal, "unhandled message")
}

// resume (re)subscribes the named streams, or the connection's default
// streams when none are named. Each stream answers with "subscribed" or
// "resync", then its events.
func (c *conn) resume(d *resumeData) error {
	type want struct {
		name string
		last int64
	}
	var wants []want
	if len(d.Streams) == 0 {
		for _, name := range c.p.defaultStreams() {
			wants = append(wants, want{name, -1})
		}
	}
	for i, s := range d.Streams {
		last := int64(-1)
		if s.LastSeq != nil {
			if *s.LastSeq < 0 {
				return agentdesk.FieldError(fmt.Sprintf("streams[%d].last_seq", i), "must be 0 or more")
			}
			last = *s.LastSeq
		}
		wants = append(wants, want{s.Stream, last})
	}
	added := 0
	for _, w := range wants {
		if c.subIndex(streamKey{c.p.AccountID(), w.name}) < 0 {
			added++
		}
	}
	if len(c.subs)+added > maxSubscriptions {
		return agentdesk.FieldError("streams", "at most %d streams per connection", maxSubscriptions)
	}
	for _, w := range wants {
		k := streamKey{c.p.AccountID(), w.name}
		s := c.h.subscribe(c, k, w.last) // replaces c's position if it followed s already
		if i := c.subIndex(k); i >= 0 {
			if c.subs[i] != s { // the old stream object was dropped meanwhile
				c.h.unsubscribe(c, c.subs[i])
				c.subs[i] = s
			}
			continue
		}
		c.subs = append(c.subs, s)
	}
	return nil
}

// subIndex finds a subscription; a slice, not a map: a connection follows
// a handful of streams and an idle one should cost little memory.
func (c *conn) subIndex(k streamKey) int {
	return slices.IndexFunc(c.subs, func(s *stream) bool { return s.key == k })
}

func (c *conn) typing(ctx context.Context, d *typingData) error {
	t, err := c.h.canWriteTicket(ctx, c.p, d.TicketID) // already authorised; need the visitor
	if err != nil {
		return err
	}
	data := map[string]any{"ticket_id": d.TicketID, "typing": d.Typing}
	targets := []string{TicketStream(d.TicketID)}
	if c.p.IsCustomer() {
		data["from"] = "customer"
	} else {
		data["from"] = "agent"
		data["agent_id"] = c.p.Actor.AgentID
		if t.VisitorID != "" {
			targets = append(targets, VisitorStream(t.VisitorID))
		}
	}
	for _, s := range targets {
		if err := c.h.PublishEphemeral(ctx, Event{AccountID: c.p.AccountID(), Stream: s, Type: "typing", Data: data}); err != nil {
			return err
		}
	}
	return nil
}

func (c *conn) rateLimit() error {
	if !c.p.IsCustomer() {
		return nil
	}
	key := strconv.FormatInt(c.p.Visitor.AccountID, 10) + "/" + c.p.Visitor.VisitorID
	if !c.h.limits.allow(time.Now(), key, c.p.IP) {
		return agentdesk.Errorf(agentdesk.RateLimited, "too many messages; wait a moment and send again")
	}
	return nil
}

func (c *conn) ack(id string, data any) {
	var raw json.RawMessage
	if data != nil {
		raw, _ = json.Marshal(data)
	}
	c.send(marshalFrame(envelope{Type: "ack", ID: id, Data: raw}))
}

func (c *conn) replyErr(id string, err error) {
	kind := agentdesk.ErrorKind(err)
	body := errorBody{Code: string(kind)}
	var e *agentdesk.Error
	if kind != agentdesk.Internal && errors.As(err, &e) {
		body.Message, body.Field = e.Message, e.Field
	} else {
		ref := errorRef()
		c.h.log.Error("hub: client message failed", append(logAttrs(c.p), "error_id", ref, "err", err)...)
		body.Code, body.Message = string(agentdesk.Internal), "internal error (id "+ref+")"
	}
	c.sendErrorID(id, body)
}

func (c *conn) sendError(id string, body errorBody) { c.sendErrorID(id, body) }

func (c *conn) sendErrorID(id string, body errorBody) {
	c.h.stats.ErrorsReturned.Add(1)
	raw, _ := json.Marshal(body)
	c.send(marshalFrame(envelope{Type: "error", ID: id, Data: raw}))
}

func tooLargeMessage(limit int) string {
	return fmt.Sprintf("a message can be at most %d bytes", limit)
}

func errorRef() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
