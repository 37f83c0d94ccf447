package hub

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"agentdesk/agentdesk"
)

// WidgetToken identifies a chat visitor to /ws/customer. The server issues
// it when the widget starts and signs it with HMAC-SHA256, so a visitor can
// only ever act as the visitor id it was given.
type WidgetToken struct {
	AccountID int64     `json:"a"`
	WidgetID  string    `json:"w"`
	VisitorID string    `json:"v"`
	Expires   time.Time `json:"-"`
	Exp       int64     `json:"e"` // Expires in Unix seconds on the wire
}

// Expired reports whether the token is past its expiry at now.
func (t *WidgetToken) Expired(now time.Time) bool { return !now.Before(t.Expires) }

const tokenPrefix = "wt1."

// SignWidgetToken returns the token string for t. Secret must be at least
// 32 random bytes and stay on the server.
func SignWidgetToken(secret []byte, t WidgetToken) string {
	t.Exp = t.Expires.Unix()
	body, _ := json.Marshal(t) // cannot fail: plain fields
	payload := base64.RawURLEncoding.EncodeToString(body)
	return tokenPrefix + payload + "." + base64.RawURLEncoding.EncodeToString(mac(secret, payload))
}

// ParseWidgetToken checks the signature and expiry of s.
func ParseWidgetToken(secret []byte, s string, now time.Time) (WidgetToken, error) {
	bad := agentdesk.Errorf(agentdesk.Unauthenticated, "widget token is not valid")
	rest, ok := strings.CutPrefix(s, tokenPrefix)
	if !ok || len(secret) == 0 {
		return WidgetToken{}, bad
	}
	payload, sig, ok := strings.Cut(rest, ".")
	if !ok {
		return WidgetToken{}, bad
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, mac(secret, payload)) {
		return WidgetToken{}, bad
	}
	body, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return WidgetToken{}, bad
	}
	var t WidgetToken
	if err := json.Unmarshal(body, &t); err != nil || t.AccountID <= 0 || t.VisitorID == "" || !ValidStream(VisitorStream(t.VisitorID)) {
		return WidgetToken{}, bad
	}
	t.Expires = time.Unix(t.Exp, 0)
	if t.Expired(now) {
		return WidgetToken{}, agentdesk.Errorf(agentdesk.Unauthenticated, "widget token has expired")
	}
	return t, nil
}

func mac(secret []byte, payload string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(payload))
	return m.Sum(nil)
}
