package agentdesk

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// Page asks for one page of a keyset-paginated list. Cursor is opaque to
// callers: it is what the previous page returned as its next cursor.
type Page struct {
	Limit  int
	Cursor string
}

// Page size bounds shared by every list.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

// Normalize applies the default and maximum page size.
func (p Page) Normalize() Page {
	if p.Limit <= 0 {
		p.Limit = DefaultPageSize
	}
	if p.Limit > MaxPageSize {
		p.Limit = MaxPageSize
	}
	return p
}

// Keyset is the position of a row in a list ordered by (time, id) descending.
type Keyset struct {
	At time.Time
	ID int64
}

// EncodeCursor turns a keyset into an opaque cursor.
func EncodeCursor(k Keyset) string {
	raw := strconv.FormatInt(k.At.UnixMicro(), 10) + "." + strconv.FormatInt(k.ID, 10)
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// DecodeCursor reverses EncodeCursor. An empty cursor means the first page.
func DecodeCursor(c string) (*Keyset, error) {
	if c == "" {
		return nil, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return nil, FieldError("cursor", "malformed cursor")
	}
	at, id, ok := strings.Cut(string(raw), ".")
	if !ok {
		return nil, FieldError("cursor", "malformed cursor")
	}
	us, err1 := strconv.ParseInt(at, 10, 64)
	n, err2 := strconv.ParseInt(id, 10, 64)
	if err1 != nil || err2 != nil {
		return nil, FieldError("cursor", "malformed cursor")
	}
	return &Keyset{At: time.UnixMicro(us).UTC(), ID: n}, nil
}
