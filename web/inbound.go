package web

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
)

func init() { registerAPI(mountInbound) }

// Enqueuer queues a stored contact to agents inside the transaction that
// stored it (the routing engine implements it), so a committed contact is
// always routed and a failed enqueue stores nothing.
type Enqueuer interface {
	EnqueueTx(ctx context.Context, tx pgx.Tx, req agentdesk.TaskRequest) (int64, error)
}

// WithEnqueuer makes channel adapters (web forms) route what they store.
// Without one, contacts are stored and wait unrouted.
func WithEnqueuer(e Enqueuer) Option { return func(s *Server) { s.inbound.enq = e } }

// WithFormRate sets how many contact-form posts one client address may make
// per minute (default 10).
func WithFormRate(perMinute int) Option { return func(s *Server) { s.inbound.formRate = perMinute } }

// inboundConfig holds the settings of the channel adapters served here.
type inboundConfig struct {
	enq         Enqueuer
	phoneRegion string
	formRate    int
	forms       *keyedLimiter
}

// Public endpoints name their account with ?account=ID or this header.
const accountHeader = "X-AgentDesk-Account"

// SignatureHeader carries a shop webhook's "sha256=<hex>" HMAC of the raw
// body, keyed with the account's order webhook secret.
const SignatureHeader = "X-AgentDesk-Signature"

func mountInbound(s *Server, a *apiRouter) {
	if s.inbound.forms == nil {
		rate := s.inbound.formRate
		if rate <= 0 {
			rate = 10
		}
		s.inbound.forms = newKeyedLimiter(rate, 10*time.Minute)
	}
	a.route("POST", "/inbound/form", "", "A website contact form (public; JSON or form-encoded; rate limited per client address): creates or updates the customer by email/phone, opens a form ticket and routes it",
		s.inboundForm, doc{Body: formRequest{}, Response: formAccepted{}, Status: 202, Query: []string{"account"},
			Auth: "none: public, rate limited per client address; ?account=ID or " + accountHeader + " names the account; a filled 'website' field (honeypot) is accepted and dropped"})
	a.route("POST", "/inbound/order", "", "A shop's order webhook (public, HMAC signed): upserts the order by external_id, finds or creates the customer, adds an order event to the timeline; 201 new, 200 update or replay",
		s.inboundOrder, doc{Body: orderWebhook{}, Response: orderReceived{}, Status: 201, Query: []string{"account"},
			Auth: SignatureHeader + ": sha256=<hex HMAC-SHA256 of the raw body with the account's order webhook secret>; ?account=ID or " + accountHeader + " names the account"})
}

// accountParam reads the account a public endpoint is called for.
func accountParam(r *http.Request) (int64, error) {
	v := r.URL.Query().Get("account")
	if v == "" {
		v = r.Header.Get(accountHeader)
	}
	if v == "" {
		return 0, agentdesk.FieldError("account", "name the account with ?account=ID or the %s header", accountHeader)
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, agentdesk.FieldError("account", "must be a positive integer")
	}
	return id, nil
}

type formRequest struct {
	Name    string `json:"name"`
	Email   string `json:"email"`
	Phone   string `json:"phone"`
	Subject string `json:"subject"`
	Message string `json:"message"`
	// Website is a honeypot: hidden from people, filled in by bots.
	Website string `json:"website"`
}

type formAccepted struct {
	Status string `json:"status"`
}

// readForm reads a JSON body strictly, or a plain HTML form post (which a
// website can send cross-origin without a preflight); unknown form fields
// are ignored there because page builders add their own.
func readForm(w http.ResponseWriter, r *http.Request, f *formRequest) error {
	const limit = 64 << 10
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/x-www-form-urlencoded" && ct != "multipart/form-data" {
		return decode(w, r, f, limit)
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	var err error
	if ct == "multipart/form-data" {
		err = r.ParseMultipartForm(limit)
	} else {
		err = r.ParseForm()
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &agentdesk.Error{Kind: agentdesk.TooLarge, Message: "form is larger than 64 KiB"}
		}
		return &agentdesk.Error{Kind: agentdesk.Invalid, Message: "malformed form body", Err: errBadRequest}
	}
	*f = formRequest{Name: r.PostFormValue("name"), Email: r.PostFormValue("email"), Phone: r.PostFormValue("phone"),
		Subject: r.PostFormValue("subject"), Message: r.PostFormValue("message"), Website: r.PostFormValue("website")}
	return nil
}

func (s *Server) inboundForm(w http.ResponseWriter, r *http.Request) error {
	// Any site may post its contact form here and read the answer.
	w.Header().Set("Access-Control-Allow-Origin", "*")
	if !s.inbound.forms.Allow(clientIP(r)) {
		w.Header().Set("Retry-After", "60")
		return agentdesk.Errorf(agentdesk.RateLimited, "too many form posts from this address; try again in a minute")
	}
	accountID, err := accountParam(r)
	if err != nil {
		return err
	}
	var f formRequest
	if err := readForm(w, r, &f); err != nil {
		return err
	}
	if f.Website != "" {
		// A bot: answer as if stored, so it learns nothing.
		writeJSON(w, http.StatusAccepted, formAccepted{Status: "received"})
		return nil
	}
	in, err := s.formInbound(f)
	if err != nil {
		return err
	}
	if err := s.store.AccountExists(r.Context(), accountID); err != nil {
		return err
	}
	err = postgres.InTx(r.Context(), s.store.DB(), func(tx pgx.Tx) error {
		res, err := s.store.Ingest(r.Context(), tx, accountID, in)
		if err != nil {
			return err
		}
		if err := s.ingested(r.Context(), tx, accountID, res); err != nil {
			return err
		}
		if s.inbound.enq == nil || !res.Routable(in) {
			return nil
		}
		_, err = s.inbound.enq.EnqueueTx(r.Context(), tx, agentdesk.TaskRequest{
			AccountID: accountID, Channel: agentdesk.ChannelForm, Priority: in.Priority,
			TicketID: res.TicketID, CustomerID: res.CustomerID,
		})
		if err != nil {
			return fmt.Errorf("enqueue form ticket %d: %w", res.TicketID, err)
		}
		return nil
	})
	if err != nil {
		return renameField(err, "body", "message")
	}
	writeJSON(w, http.StatusAccepted, formAccepted{Status: "received"})
	return nil
}

// formInbound checks a form and turns it into an inbound contact: the email
// (or, without one, the phone) finds the customer.
func (s *Server) formInbound(f formRequest) (agentdesk.Inbound, error) {
	in := agentdesk.Inbound{Channel: agentdesk.ChannelForm, Kind: agentdesk.KindForm, Name: strings.TrimSpace(f.Name),
		Subject: strings.TrimSpace(f.Subject), Body: strings.TrimSpace(f.Message)}
	if len(in.Name) > 200 {
		return in, agentdesk.FieldError("name", "must be at most 200 characters")
	}
	if len(in.Subject) > 500 {
		return in, agentdesk.FieldError("subject", "must be at most 500 characters")
	}
	if in.Body == "" {
		return in, agentdesk.FieldError("message", "must not be empty")
	}
	var ids []agentdesk.Identity
	if strings.TrimSpace(f.Email) != "" {
		email, err := agentdesk.NormalizeEmail(f.Email)
		if err != nil {
			return in, err
		}
		ids = append(ids, agentdesk.Identity{Kind: agentdesk.IdentityEmail, Value: email})
	}
	if strings.TrimSpace(f.Phone) != "" {
		phone, err := s.normalizePhone(f.Phone, "phone")
		if err != nil {
			return in, err
		}
		ids = append(ids, agentdesk.Identity{Kind: agentdesk.IdentityPhone, Value: phone})
	}
	if len(ids) == 0 {
		return in, agentdesk.FieldError("email", "an email or a phone number is required so we can answer")
	}
	in.Identity, in.Extra = ids[0], ids[1:]
	in.Meta = map[string]any{"form": map[string]string{"name": in.Name, "email": f.Email, "phone": f.Phone}}
	// Defaults filled here too, so the routing request carries them.
	return in, renameField(in.Normalize(), "body", "message")
}

// renameField maps a domain or store field name to the one the client sent
// (a missing team in team_ids is reported by the database as team_id).
func renameField(err error, from, to string) error {
	var e *agentdesk.Error
	if errors.As(err, &e) && e.Field == from {
		c := *e
		c.Field = to
		return &c
	}
	return err
}

// orderWebhook is the body a shop posts.
type orderWebhook struct {
	ExternalID  string                `json:"external_id"`
	Customer    orderCustomer         `json:"customer"`
	AmountCents int64                 `json:"amount_cents"`
	Currency    string                `json:"currency"`
	Items       []agentdesk.OrderItem `json:"items"`
	Status      agentdesk.OrderStatus `json:"status"`
	PlacedAt    time.Time             `json:"placed_at"`
}

type orderCustomer struct {
	ShopAccountID string `json:"shop_account_id"`
	Email         string `json:"email"`
	Name          string `json:"name"`
}

type orderReceived struct {
	Order           agentdesk.Order `json:"order"`
	Created         bool            `json:"created"`
	Changed         bool            `json:"changed"`
	CustomerCreated bool            `json:"customer_created"`
	TicketID        int64           `json:"ticket_id"`
}

// maxOrderBody bounds a shop webhook body (orders of hundreds of lines fit).
const maxOrderBody = 1 << 20

func (s *Server) inboundOrder(w http.ResponseWriter, r *http.Request) error {
	accountID, err := accountParam(r)
	if err != nil {
		return err
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxOrderBody))
	if err != nil {
		return decodeError(err, maxOrderBody)
	}
	if err := s.checkOrderSignature(r.Context(), accountID, raw, r.Header.Get(SignatureHeader)); err != nil {
		return err
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	var req orderWebhook
	if err := decode(w, r, &req, maxOrderBody); err != nil {
		return err
	}
	rec, err := s.store.ReceiveOrder(r.Context(), accountID, agentdesk.InboundOrder{
		Order: agentdesk.Order{ExternalID: req.ExternalID, AmountCents: req.AmountCents, Currency: req.Currency,
			Items: req.Items, Status: req.Status, PlacedAt: req.PlacedAt},
		ShopAccountID: req.Customer.ShopAccountID, Email: req.Customer.Email, Name: req.Customer.Name,
	})
	if err != nil {
		return err
	}
	status := http.StatusOK
	if rec.Created {
		status = http.StatusCreated
	}
	writeJSON(w, status, orderReceived{Order: rec.Order, Created: rec.Created, Changed: rec.Changed, CustomerCreated: rec.CustomerCreated, TicketID: rec.TicketID})
	return nil
}

// checkOrderSignature verifies "sha256=<hex>" over the raw body in constant
// time. An unknown account answers like a bad signature, so the endpoint
// does not tell which accounts exist.
func (s *Server) checkOrderSignature(ctx context.Context, accountID int64, body []byte, header string) error {
	unauth := agentdesk.Errorf(agentdesk.Unauthenticated, "missing or bad %s: expected sha256=<hex HMAC-SHA256 of the body>", SignatureHeader)
	hexSig, ok := strings.CutPrefix(strings.TrimSpace(header), "sha256=")
	if !ok {
		return unauth
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return unauth
	}
	secret, err := s.store.OrderWebhookSecret(ctx, accountID)
	if agentdesk.IsKind(err, agentdesk.NotFound) {
		return unauth
	}
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return unauth
	}
	return nil
}
