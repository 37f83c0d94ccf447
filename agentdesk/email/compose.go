package email

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"html"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"
)

// OutAttachment is a file an agent attaches to a reply.
type OutAttachment struct {
	Filename    string
	ContentType string
	Data        []byte
}

// outMail is everything an outbound mail's bytes are made of.
type outMail struct {
	From          Address
	To            Address
	ReplyTo       string
	Subject       string
	MessageID     string
	InReplyTo     string
	References    []string
	ThreadIndex   string
	ThreadTopic   string
	Text, HTML    string
	Attachments   []OutAttachment
	AutoSubmitted bool
	Date          time.Time
}

// compose writes m as multipart/mixed around a multipart/alternative (text
// and HTML), followed by the attachments.
func compose(m outMail) ([]byte, error) {
	var h mail.Header
	h.SetDate(m.Date)
	h.SetAddressList("From", []*mail.Address{{Name: m.From.Name, Address: m.From.Address}})
	h.SetAddressList("To", []*mail.Address{{Name: m.To.Name, Address: m.To.Address}})
	if m.ReplyTo != "" {
		h.SetAddressList("Reply-To", []*mail.Address{{Name: m.From.Name, Address: m.ReplyTo}})
	}
	h.SetSubject(m.Subject)
	h.SetMessageID(m.MessageID)
	if m.InReplyTo != "" {
		h.SetMsgIDList("In-Reply-To", []string{m.InReplyTo})
	}
	if len(m.References) > 0 {
		h.SetMsgIDList("References", m.References)
	}
	if m.ThreadIndex != "" {
		h.Set("Thread-Index", m.ThreadIndex)
		h.SetText("Thread-Topic", m.ThreadTopic)
	}
	if m.AutoSubmitted {
		// RFC 3834: an automatic answer says so, and asks Exchange not to
		// answer it automatically in turn.
		h.Set("Auto-Submitted", "auto-replied")
		h.Set("X-Auto-Response-Suppress", "All")
	}
	htmlBody := m.HTML
	if htmlBody == "" {
		htmlBody = "<div>" + strings.ReplaceAll(html.EscapeString(m.Text), "\n", "<br>\n") + "</div>"
	}
	var buf bytes.Buffer
	mw, err := mail.CreateWriter(&buf, h)
	if err != nil {
		return nil, err
	}
	iw, err := mw.CreateInline()
	if err != nil {
		return nil, err
	}
	for _, part := range []struct{ ct, body string }{{"text/plain", m.Text}, {"text/html", htmlBody}} {
		var ph mail.InlineHeader
		ph.SetContentType(part.ct, map[string]string{"charset": "utf-8"})
		ph.Set("Content-Transfer-Encoding", "quoted-printable")
		w, err := iw.CreatePart(ph)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write([]byte(part.body)); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
	}
	if err := iw.Close(); err != nil {
		return nil, err
	}
	for _, a := range m.Attachments {
		var ah mail.AttachmentHeader
		ct := a.ContentType
		if ct == "" {
			ct = "application/octet-stream"
		}
		ah.SetContentType(ct, nil)
		ah.SetFilename(a.Filename)
		w, err := mw.CreateAttachment(ah)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(a.Data); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// newMessageID makes the Message-ID of an outbound mail: it carries the
// ticket token, so a reply threads even when the client drops References.
func newMessageID(token, hostname string) string {
	var b [8]byte
	rand.Read(b[:])
	return fmt.Sprintf("adk.%s.%s@%s", token, hex.EncodeToString(b[:]), hostname)
}

// childThreadIndex continues an Outlook conversation: the 22-byte header of
// the conversation plus one 5-byte child block.
func childThreadIndex(root string) string {
	head, err := hex.DecodeString(root)
	if err != nil || len(head) != 22 {
		return ""
	}
	var child [5]byte
	rand.Read(child[:])
	return base64.StdEncoding.EncodeToString(append(head, child[:]...))
}

func sumOf(data []byte) [32]byte { return sha256.Sum256(data) }
