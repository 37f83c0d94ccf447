package email

import (
	"regexp"
	"strings"

	"github.com/emersion/go-message/mail"
)

// autoSubject matches subjects of out-of-office and automatic answers from
// the common clients and servers, in the languages we see most.
var autoSubject = regexp.MustCompile(`(?i)^(auto(matic)?[ -]?(reply|response|antwort)|out of (the )?office|abwesenheitsnotiz|automatische antwort|réponse automatique|respuesta automática|risposta automatica|auto:|autoreply|absence|fuera de la oficina)`)

// bounceSubject matches non-DSN bounces (old MTAs send plain text).
var bounceSubject = regexp.MustCompile(`(?i)^(undeliver(ed|able)|delivery (status notification|failure)|mail delivery (failed|system)|returned mail|failure notice|unzustellbar)`)

// detectAutomated sets AutoReply, Bulk and Bounce from the headers. These
// decide that we never answer the mail automatically: answering an
// auto-reply or a bounce is how mail loops start.
func (p *Parsed) detectAutomated(h mail.Header) {
	if v := strings.ToLower(strings.TrimSpace(h.Get("Auto-Submitted"))); v != "" && v != "no" {
		p.AutoReply = true
	}
	if h.Get("X-Autoreply") != "" || h.Get("X-Autorespond") != "" || h.Get("X-Autoresponder") != "" {
		p.AutoReply = true
	}
	switch strings.ToLower(strings.TrimSpace(h.Get("Precedence"))) {
	case "bulk", "junk", "list":
		p.Bulk = true
	case "auto_reply":
		p.AutoReply = true
	}
	if h.Get("List-Id") != "" || h.Get("List-Unsubscribe") != "" {
		p.Bulk = true
	}
	subj := strings.TrimSpace(p.Subject)
	if autoSubject.MatchString(subj) {
		p.AutoReply = true
	}
	from := strings.ToLower(p.From.Address)
	daemon := strings.HasPrefix(from, "mailer-daemon@") || strings.HasPrefix(from, "postmaster@")
	if p.Bounce == nil && daemon && bounceSubject.MatchString(subj) {
		p.Bounce = &Bounce{}
	}
	if p.Bounce != nil {
		p.AutoReply = true
	}
}

// FailedRecipients lists the addresses a bounce reports as undeliverable.
func (b *Bounce) FailedRecipients() []BounceRecipient {
	if b == nil {
		return nil
	}
	var out []BounceRecipient
	for _, r := range b.Recipients {
		if r.Action == "failed" || strings.HasPrefix(r.Status, "5") {
			out = append(out, r)
		}
	}
	return out
}
