package web

import (
	"net/http"
	"strings"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/email"
)

func init() { registerAPI(mountEmailAdmin) }

// Admin settings of the email channel: the support addresses mail is
// accepted for (and the queue and team it is routed to), and the IMAP
// accounts polled for more. Changes take effect without a restart
// (agentdesk/email.Admin). IMAP passwords are write-only: sealed with the
// server's email secret and never returned.
func mountEmailAdmin(s *Server, a *apiRouter) {
	a.route("GET", "/email/mailboxes", agentdesk.RoleSupervisor, "List the account's support addresses (supervisor+)",
		s.listMailboxes, doc{Response: List[email.Mailbox]{}})
	a.route("POST", "/email/mailboxes", agentdesk.RoleAdmin, "Add a support address, routed to a queue (0: the email default) and optionally a team (admin); mail for it is accepted at once; 409 on address when this account has it already, or when it is not available (addresses are unique across the install; whose it is is never said)",
		s.createMailbox, doc{Body: mailboxRequest{}, Response: email.Mailbox{}, Status: 201, Idempotent: true})
	a.route("GET", "/email/mailboxes/{id}", agentdesk.RoleSupervisor, "One support address (supervisor+)",
		s.getMailbox, doc{Response: email.Mailbox{}})
	a.route("PATCH", "/email/mailboxes/{id}", agentdesk.RoleAdmin, "Change a support address (admin); only the fields given change, team_id null removes the team",
		s.patchMailbox, doc{Body: mailboxPatch{}, Response: email.Mailbox{}})
	a.route("DELETE", "/email/mailboxes/{id}", agentdesk.RoleAdmin, "Remove a support address and its IMAP accounts (admin); mail for it is refused at once, stored mail and tickets stay",
		s.deleteMailbox, doc{Status: 204})

	a.route("GET", "/email/imap-accounts", agentdesk.RoleSupervisor, "List the IMAP accounts polled for mail, with their last error (supervisor+); passwords are never returned",
		s.listIMAPAccounts, doc{Response: List[email.IMAPAccountView]{}})
	a.route("POST", "/email/imap-accounts", agentdesk.RoleAdmin, "Add an IMAP account to poll for a support address (admin): host, port, security (tls, starttls, insecure), credentials, folders, optional PEM CA bundle; 422 when the server has no email secret to seal the password",
		s.createIMAPAccount, doc{Body: imapRequest{}, Response: email.IMAPAccountView{}, Status: 201, Idempotent: true})
	a.route("GET", "/email/imap-accounts/{id}", agentdesk.RoleSupervisor, "One IMAP account (supervisor+); never its password",
		s.getIMAPAccount, doc{Response: email.IMAPAccountView{}})
	a.route("PATCH", "/email/imap-accounts/{id}", agentdesk.RoleAdmin, "Change an IMAP account (admin); only the fields given change; a password given replaces the stored one, and is required (422 on password) when host, port, security or username change, so the stored one never goes to another server; the poller reconnects with the new settings",
		s.patchIMAPAccount, doc{Body: imapPatch{}, Response: email.IMAPAccountView{}})
	a.route("DELETE", "/email/imap-accounts/{id}", agentdesk.RoleAdmin, "Stop polling an IMAP account and forget it (admin)",
		s.deleteIMAPAccount, doc{Status: 204})
}

// WithEmailAdmin gives the email admin endpoints the email channel's
// Admin: its secret seals IMAP passwords and its change signal reloads the
// poller. Without it the endpoints still work on the database, but refuse
// IMAP passwords (422: nothing to seal them with).
func WithEmailAdmin(a *email.Admin) Option {
	return func(s *Server) { s.emailAdmin = a }
}

func (s *Server) mailAdmin() *email.Admin {
	if s.emailAdmin != nil {
		return s.emailAdmin
	}
	return email.NewAdmin(s.store.DB(), email.AdminConfig{})
}

// mailboxRequest adds a support address.
type mailboxRequest struct {
	Address     string             `json:"address"`
	DisplayName string             `json:"display_name"`
	QueueID     int64              `json:"queue_id"`
	TeamID      *int64             `json:"team_id"`
	Priority    agentdesk.Priority `json:"priority"`
	AutoAck     bool               `json:"auto_ack"`
	ClosedReply string             `json:"closed_reply"`
}

// mailboxPatch changes only the fields present.
type mailboxPatch struct {
	Address     *string             `json:"address"`
	DisplayName *string             `json:"display_name"`
	QueueID     *int64              `json:"queue_id"`
	TeamID      nullableID          `json:"team_id"`
	Priority    *agentdesk.Priority `json:"priority"`
	AutoAck     *bool               `json:"auto_ack"`
	ClosedReply *string             `json:"closed_reply"`
}

func (p *mailboxPatch) apply(m *email.Mailbox) error {
	if p.Address != nil {
		m.Address = *p.Address
	}
	if p.DisplayName != nil {
		m.DisplayName = *p.DisplayName
	}
	if p.QueueID != nil {
		m.QueueID = *p.QueueID
	}
	if p.TeamID.Set {
		m.TeamID = p.TeamID.Value
	}
	if p.Priority != nil {
		m.Priority = *p.Priority
	}
	if p.AutoAck != nil {
		m.AutoAck = *p.AutoAck
	}
	if p.ClosedReply != nil {
		m.ClosedReply = *p.ClosedReply
	}
	return nil
}

// maxMailboxBody and maxIMAPBody bound the requests; an IMAP account may
// carry a CA bundle of up to 64 KiB.
const (
	maxMailboxBody = 8 << 10
	maxIMAPBody    = 80 << 10
)

func (s *Server) listMailboxes(w http.ResponseWriter, r *http.Request) error {
	actor, _ := actorOf(r.Context())
	ms, err := s.mailAdmin().Mailboxes(r.Context(), actor.AccountID)
	if err != nil {
		return err
	}
	if ms == nil {
		ms = []email.Mailbox{}
	}
	writeJSON(w, http.StatusOK, listOf(ms, ""))
	return nil
}

func (s *Server) getMailbox(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	m, err := s.mailAdmin().Mailbox(r.Context(), actor.AccountID, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

func (s *Server) createMailbox(w http.ResponseWriter, r *http.Request) error {
	var req mailboxRequest
	if err := decode(w, r, &req, maxMailboxBody); err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	m := &email.Mailbox{Address: req.Address, DisplayName: req.DisplayName, QueueID: req.QueueID, TeamID: req.TeamID,
		Priority: req.Priority, AutoAck: req.AutoAck, ClosedReply: req.ClosedReply}
	if err := s.mailAdmin().CreateMailbox(r.Context(), actor, m); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, m)
	return nil
}

func (s *Server) patchMailbox(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var p mailboxPatch
	if err := decode(w, r, &p, maxMailboxBody); err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	m, err := s.mailAdmin().UpdateMailbox(r.Context(), actor, id, p.apply)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

func (s *Server) deleteMailbox(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	if err := s.mailAdmin().DeleteMailbox(r.Context(), actor, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// imapRequest adds an IMAP account. password is write-only.
type imapRequest struct {
	MailboxID       int64  `json:"mailbox_id"`
	Host            string `json:"host"`
	Port            int    `json:"port"`
	Security        string `json:"security"`
	Username        string `json:"username"`
	Password        string `json:"password"`
	Folder          string `json:"folder"`
	ProcessedFolder string `json:"processed_folder"`
	CAPEM           string `json:"ca_pem"`
	Enabled         *bool  `json:"enabled"`
}

// imapPatch changes only the fields present; a password replaces the
// stored one and must come with a change of host, port, security or
// username (email.Admin checks it).
type imapPatch struct {
	MailboxID       *int64  `json:"mailbox_id"`
	Host            *string `json:"host"`
	Port            *int    `json:"port"`
	Security        *string `json:"security"`
	Username        *string `json:"username"`
	Password        *string `json:"password"`
	Folder          *string `json:"folder"`
	ProcessedFolder *string `json:"processed_folder"`
	CAPEM           *string `json:"ca_pem"`
	Enabled         *bool   `json:"enabled"`
}

func (p *imapPatch) apply(a *email.IMAPAccount, enabled *bool) error {
	if p.Password != nil && *p.Password == "" {
		return agentdesk.FieldError("password", "must not be empty (leave it out to keep the stored one)")
	}
	for _, f := range []struct {
		v   *string
		dst *string
	}{{p.Host, &a.Host}, {p.Security, &a.Security}, {p.Username, &a.Username}, {p.Password, &a.Password},
		{p.Folder, &a.Folder}, {p.ProcessedFolder, &a.ProcessedFolder}, {p.CAPEM, &a.CAPEM}} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
	if p.MailboxID != nil {
		a.MailboxID = *p.MailboxID
	}
	if p.Port != nil {
		a.Port = *p.Port
	} else if p.Host != nil && strings.Contains(*p.Host, ":") {
		a.Port = 0 // the port comes with the host ("imap.example.com:1993")
	}
	if p.Enabled != nil {
		*enabled = *p.Enabled
	}
	return nil
}

func (s *Server) listIMAPAccounts(w http.ResponseWriter, r *http.Request) error {
	actor, _ := actorOf(r.Context())
	as, err := s.mailAdmin().IMAPAccounts(r.Context(), actor.AccountID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listOf(as, ""))
	return nil
}

func (s *Server) getIMAPAccount(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	v, err := s.mailAdmin().IMAPAccount(r.Context(), actor.AccountID, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) createIMAPAccount(w http.ResponseWriter, r *http.Request) error {
	var req imapRequest
	if err := decode(w, r, &req, maxIMAPBody); err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	enabled := req.Enabled == nil || *req.Enabled
	v, err := s.mailAdmin().CreateIMAPAccount(r.Context(), actor, &email.IMAPAccount{MailboxID: req.MailboxID, Host: req.Host, Port: req.Port,
		Security: req.Security, Username: req.Username, Password: req.Password, Folder: req.Folder, ProcessedFolder: req.ProcessedFolder, CAPEM: req.CAPEM}, enabled)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, v)
	return nil
}

func (s *Server) patchIMAPAccount(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var p imapPatch
	if err := decode(w, r, &p, maxIMAPBody); err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	v, err := s.mailAdmin().UpdateIMAPAccount(r.Context(), actor, id, p.apply)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) deleteIMAPAccount(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	if err := s.mailAdmin().DeleteIMAPAccount(r.Context(), actor, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
