package agentdesk

import (
	"fmt"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Attachment is a file on a message: uploaded by an agent or a chat visitor
// and linked when the message is written, or received with an email. The
// bytes are stored once per account by their SHA-256; URL is where an agent
// downloads them (a chat visitor uses the widget's own path with the id).
type Attachment struct {
	ID          int64  `json:"id"`
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256,omitempty"` // hex; in upload answers, not in message lists
	URL         string `json:"url"`
}

// AttachmentURL is the agent-side download path of attachment id.
func AttachmentURL(id int64) string { return fmt.Sprintf("/api/v1/attachments/%d/content", id) }

// MaxMessageAttachments is how many files one message may carry.
const MaxMessageAttachments = 10

// Uploader is who uploaded a file: an agent, an API token or a chat
// visitor. Until a message holds it, only its uploader may see or link it.
type Uploader struct {
	AgentID   int64
	TokenID   int64
	VisitorID string
}

// UploaderOf is the uploader an actor is.
func UploaderOf(a Actor) Uploader { return Uploader{AgentID: a.AgentID, TokenID: a.TokenID} }

// IsZero reports whether u names nobody.
func (u Uploader) IsZero() bool { return u.AgentID == 0 && u.TokenID == 0 && u.VisitorID == "" }

// maxFilename is the longest file name kept, in bytes.
const maxFilename = 200

// CleanFilename makes a client's file name safe to store and to send back
// in a Content-Disposition header or a mail: no directories (either slash),
// no control or bidirectional-override characters, no leading dots, at most
// 200 bytes with the extension kept. An empty result is "file".
func CleanFilename(name string) string {
	name = strings.ToValidUTF8(name, "")
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '"' {
			return -1
		}
		return r
	}, name)
	name = strings.TrimLeft(strings.TrimSpace(name), ".")
	name = strings.TrimSpace(name)
	if len(name) > maxFilename {
		ext := path.Ext(name)
		if len(ext) > 20 || !utf8.ValidString(ext) {
			ext = ""
		}
		stem := name[:maxFilename-len(ext)]
		for !utf8.ValidString(stem) {
			stem = stem[:len(stem)-1]
		}
		name = stem + ext
	}
	if name == "" {
		return "file"
	}
	return name
}
