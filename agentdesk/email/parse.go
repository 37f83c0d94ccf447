package email

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"io"
	"net/textproto"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // registers UTF-8, ISO-8859-x, Windows-125x, ISO-2022-JP, …
	"github.com/emersion/go-message/mail"
	"github.com/microcosm-cc/bluemonday"
	"golang.org/x/text/encoding/charmap"

	"agentdesk/agentdesk"
)

// Parsed is one mail taken apart for the desk. Raw keeps every byte that
// arrived, so whatever the parser could not understand is never lost.
type Parsed struct {
	Raw       []byte
	RawSHA256 [32]byte
	Envelope
	Content
	Outlook
	Automated
	Warnings []string // what was malformed; the mail was still accepted
}

// Envelope is who wrote to whom about what, and what the mail answers.
type Envelope struct {
	// ReturnPath is the envelope sender the final MTA recorded; "" for the
	// null sender of bounces, or when the header is absent (then From).
	ReturnPath  string
	MessageID   string // without angle brackets; synthesised from the content when missing
	SyntheticID bool
	InReplyTo   []string
	References  []string
	From        Address
	ReplyTo     []Address
	To, Cc      []Address
	Subject     string
	Date        time.Time
}

// Content is what the desk shows.
type Content struct {
	Text        string // the plain text (derived from HTML when there is no text part)
	HTML        string // sanitised HTML, safe to show in the desk
	HTMLVisible string // HTML without the quoted history ("" when there was none to fold)
	Folds       []Fold // quoted history and signatures inside Text, folded for display
	Visible     string // Text without its folds
	Attachments []Attachment
}

// Outlook is Outlook's own conversation tracking.
type Outlook struct {
	ThreadIndex string // Thread-Index, as sent
	ThreadRoot  string // hex of its first 22 bytes: the same for a whole conversation
	ThreadReply bool   // the Thread-Index has child blocks: Outlook made this mail as a reply
	ThreadTopic string
}

// Automated says whether a machine wrote the mail.
type Automated struct {
	AutoReply bool    // an automatic answer: never acknowledged, never reopens a ticket
	Bulk      bool    // list or bulk mail: never acknowledged
	Bounce    *Bounce // a delivery failure report
}

// Address is a mailbox with an optional display name.
type Address struct {
	Name    string `json:"name,omitempty"`
	Address string `json:"address"`
}

// Attachment is one attachment or inline image, identified by content.
type Attachment struct {
	Filename    string
	ContentType string
	ContentID   string
	Inline      bool
	Data        []byte
	SHA256      [32]byte
}

// Bounce is what a delivery status notification reports.
type Bounce struct {
	Recipients        []BounceRecipient
	OriginalMessageID string
}

// BounceRecipient is one failed recipient of a DSN.
type BounceRecipient struct {
	Address    string
	Action     string
	Status     string
	Diagnostic string
}

// ErrUnparseable is returned for mail whose header cannot be read at all.
var ErrUnparseable = errors.New("message header cannot be parsed")

// sanitizer is bluemonday's policy for user-generated content: formatting
// and links stay, scripts, styles, forms and event handlers go.
var sanitizer = func() *bluemonday.Policy {
	p := bluemonday.UGCPolicy()
	p.AllowURLSchemes("cid") // inline images refer to their part by Content-ID
	p.RequireNoReferrerOnLinks(true)
	p.AddTargetBlankToFullyQualifiedLinks(true)
	return p
}()

var textOfHTML = bluemonday.StrictPolicy()

// Parse takes a raw RFC 5322 message apart. Only a header that cannot be read
// at all is an error; broken bodies, unknown charsets and bad encodings become
// warnings and the best text that could be recovered.
func Parse(raw []byte) (*Parsed, error) {
	p := &Parsed{Raw: raw, RawSHA256: sha256.Sum256(raw)}
	ent, err := message.Read(bytes.NewReader(raw))
	if ent == nil {
		return nil, fmt.Errorf("%w: %v", ErrUnparseable, err)
	}
	if err != nil {
		p.Warnings = append(p.Warnings, err.Error())
	}
	if len(ent.Header.Map()) == 0 {
		return nil, fmt.Errorf("%w: no header fields", ErrUnparseable)
	}
	h := mail.Header{Header: ent.Header}
	p.parseHeader(h)
	p.walk(ent, 0)
	if p.Text == "" && p.HTML != "" {
		p.Text = htmlToText(p.HTML)
	}
	p.Text = strings.TrimSpace(strings.ReplaceAll(p.Text, "\r\n", "\n"))
	p.Folds, p.Visible = fold(p.Text)
	p.detectAutomated(h)
	return p, nil
}

func (p *Parsed) parseHeader(h mail.Header) {
	if id, err := h.MessageID(); err == nil && id != "" {
		p.MessageID = id
	} else if v := strings.Trim(strings.TrimSpace(h.Get("Message-Id")), "<>"); v != "" && !strings.ContainsAny(v, " \t<>") {
		p.MessageID = v
	}
	if p.MessageID == "" {
		// Identical redeliveries of a mail without Message-ID still collapse
		// into one message because the id derives from the content.
		p.MessageID = hex.EncodeToString(p.RawSHA256[:16]) + "@no-message-id.invalid"
		p.SyntheticID = true
	}
	p.InReplyTo = msgIDs(h, "In-Reply-To")
	if h.Has("Return-Path") {
		p.ReturnPath = strings.ToLower(strings.Trim(strings.TrimSpace(h.Get("Return-Path")), "<>"))
	}
	p.References = msgIDs(h, "References")
	p.From = firstAddress(h, "From")
	if p.From.Address == "" {
		p.From = firstAddress(h, "Sender")
	}
	if !h.Has("Return-Path") {
		p.ReturnPath = p.From.Address
	}
	p.ReplyTo = addresses(h, "Reply-To")
	p.To = addresses(h, "To")
	p.Cc = addresses(h, "Cc")
	p.Subject = headerText(h, "Subject")
	if d, err := h.Date(); err == nil {
		p.Date = d
	}
	p.ThreadTopic = headerText(h, "Thread-Topic")
	p.ThreadIndex = strings.TrimSpace(h.Get("Thread-Index"))
	if b, err := base64.StdEncoding.DecodeString(p.ThreadIndex); err == nil && len(b) >= 22 {
		p.ThreadRoot = hex.EncodeToString(b[:22])
		p.ThreadReply = len(b) > 22
	}
}

// headerText decodes an RFC 2047 header. 8-bit bytes sent raw (against the
// RFC, but common) are taken as UTF-8 when valid and as Windows-1252
// otherwise, which is what mail clients do.
func headerText(h mail.Header, key string) string {
	v, err := h.Text(key)
	if err != nil {
		v = h.Get(key)
	}
	return strings.TrimSpace(to8bitUTF8(v))
}

func to8bitUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	if d, err := charmap.Windows1252.NewDecoder().String(s); err == nil {
		return d
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

var msgIDPattern = regexp.MustCompile(`<([^<>\s]+)>`)

func msgIDs(h mail.Header, key string) []string {
	if ids, err := h.MsgIDList(key); err == nil && len(ids) > 0 {
		return ids
	}
	// Fall back to anything in angle brackets: some clients fold References
	// badly or add comments the strict parser refuses.
	var out []string
	for _, m := range msgIDPattern.FindAllStringSubmatch(h.Get(key), -1) {
		out = append(out, m[1])
	}
	return out
}

var addrPattern = regexp.MustCompile(`[A-Za-z0-9._%+\-=/!#$&'*?^{|}~]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}`)

func addresses(h mail.Header, key string) []Address {
	list, err := h.AddressList(key)
	if err == nil {
		out := make([]Address, 0, len(list))
		for _, a := range list {
			out = append(out, Address{Name: to8bitUTF8(a.Name), Address: strings.ToLower(a.Address)})
		}
		return out
	}
	var out []Address
	for _, m := range addrPattern.FindAllString(h.Get(key), -1) {
		out = append(out, Address{Address: strings.ToLower(m)})
	}
	return out
}

func firstAddress(h mail.Header, key string) Address {
	if l := addresses(h, key); len(l) > 0 {
		return l[0]
	}
	return Address{}
}

// maxDepth bounds MIME nesting, so a hostile message cannot recurse forever.
const maxDepth = 20

func (p *Parsed) walk(e *message.Entity, depth int) {
	if depth > maxDepth {
		p.Warnings = append(p.Warnings, "MIME nesting too deep; rest kept only in the raw message")
		return
	}
	ct, params, err := e.Header.ContentType()
	if err != nil || ct == "" {
		ct = "text/plain"
	}
	if mr := e.MultipartReader(); mr != nil {
		if ct == "multipart/report" && strings.EqualFold(params["report-type"], "delivery-status") && p.Bounce == nil {
			p.Bounce = &Bounce{}
		}
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				if part == nil {
					p.Warnings = append(p.Warnings, "broken multipart: "+err.Error())
					break
				}
				p.Warnings = append(p.Warnings, err.Error())
			}
			p.walk(part, depth+1)
		}
		return
	}
	body, err := io.ReadAll(e.Body)
	if err != nil {
		p.Warnings = append(p.Warnings, fmt.Sprintf("%s part: %v", ct, err))
	}
	disp, dparams, _ := e.Header.ContentDisposition()
	filename := dparams["filename"]
	if filename == "" {
		filename = params["name"]
	}
	if f, err := (&mail.AttachmentHeader{Header: e.Header}).Filename(); err == nil && f != "" {
		filename = f
	}
	cid := strings.Trim(e.Header.Get("Content-Id"), "<> ")
	switch {
	case ct == "message/delivery-status":
		p.parseDSN(body)
		return
	case (ct == "message/rfc822" || ct == "text/rfc822-headers" || ct == "message/rfc822-headers") && p.Bounce != nil:
		if id := originalMessageID(body); id != "" {
			p.Bounce.OriginalMessageID = id
		}
		return
	case disp != "attachment" && filename == "" && ct == "text/plain":
		p.Text = joinText(p.Text, to8bitUTF8(string(body)))
		return
	case disp != "attachment" && filename == "" && ct == "text/html":
		if p.HTML == "" {
			raw := to8bitUTF8(string(body))
			p.HTML = sanitizer.Sanitize(raw)
			if v, ok := foldHTML(raw); ok {
				p.HTMLVisible = sanitizer.Sanitize(v)
			}
		}
		return
	}
	inline := disp == "inline" || (disp == "" && cid != "")
	if filename == "" {
		filename = "attachment"
		if cid != "" {
			filename = cid
		}
	}
	p.Attachments = append(p.Attachments, Attachment{
		Filename: filename, ContentType: ct, ContentID: cid, Inline: inline,
		Data: body, SHA256: sha256.Sum256(body),
	})
}

func joinText(a, b string) string {
	if strings.TrimSpace(a) == "" {
		return b
	}
	return a + "\n\n" + b
}

// parseDSN reads the per-recipient blocks of a message/delivery-status part
// (RFC 3464): every block with Action: failed names an address that bounced.
func (p *Parsed) parseDSN(body []byte) {
	if p.Bounce == nil {
		p.Bounce = &Bounce{}
	}
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(append(bytes.TrimLeft(body, "\r\n"), '\n', '\n'))))
	for {
		h, err := r.ReadMIMEHeader()
		if len(h) > 0 {
			rcpt := h.Get("Final-Recipient")
			if rcpt == "" {
				rcpt = h.Get("Original-Recipient")
			}
			if _, addr, ok := strings.Cut(rcpt, ";"); ok {
				p.Bounce.Recipients = append(p.Bounce.Recipients, BounceRecipient{
					Address:    strings.ToLower(strings.Trim(strings.TrimSpace(addr), "<>")),
					Action:     strings.ToLower(strings.TrimSpace(h.Get("Action"))),
					Status:     strings.TrimSpace(h.Get("Status")),
					Diagnostic: strings.TrimSpace(h.Get("Diagnostic-Code")),
				})
			}
		}
		if err != nil {
			return
		}
	}
}

func originalMessageID(headers []byte) string {
	ent, err := message.Read(bytes.NewReader(headers))
	if ent == nil {
		_ = err
		return ""
	}
	h := mail.Header{Header: ent.Header}
	if id, err := h.MessageID(); err == nil {
		return id
	}
	return ""
}

var (
	blockEnd   = regexp.MustCompile(`(?i)</(p|div|li|tr|h[1-6]|blockquote|table)>|<br\s*/?>`)
	blankLines = regexp.MustCompile(`\n{3,}`)
)

// htmlToText is good enough for HTML-only mail: block ends become line
// breaks, tags go, entities are decoded.
func htmlToText(s string) string {
	s = blockEnd.ReplaceAllString(s, "$0\n")
	s = html.UnescapeString(textOfHTML.Sanitize(s))
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return strings.TrimSpace(blankLines.ReplaceAllString(strings.Join(lines, "\n"), "\n\n"))
}

// customerAddress is who the ticket belongs to: the From address. Reply-To is
// deliberately ignored for identity (anyone can set it); it is only where
// answers go.
func (p *Parsed) customerAddress() (string, error) {
	addr, err := agentdesk.NormalizeEmail(p.From.Address)
	if err != nil {
		return "", err
	}
	return addr, nil
}
