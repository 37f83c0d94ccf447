package postgres

import (
	"encoding/base64"
	"strconv"

	"agentdesk/agentdesk"
)

// Lists ordered by id alone (agents, reasons) page with a plain id cursor.

func encodeIDCursor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(id, 10)))
}

func idCursor(c string) (int64, error) {
	if c == "" {
		return 0, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		if id, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
			return id, nil
		}
	}
	return 0, agentdesk.FieldError("cursor", "malformed cursor")
}
