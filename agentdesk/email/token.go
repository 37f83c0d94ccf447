package email

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// keys are derived from Config.Secret, one per purpose, so a leaked token
// key says nothing about the sealing key.
type keys struct {
	token   []byte
	sealKey []byte
}

func deriveKeys(secret []byte) keys {
	d := func(purpose string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(purpose))
		return m.Sum(nil)
	}
	return keys{token: d("agentdesk email ticket token"), sealKey: d("agentdesk email imap password")}
}

// ticketToken is what our outbound Message-ID and Reply-To carry:
// "T<ticket>-<mac>". The MAC stops a sender from steering mail into another
// ticket by writing a number.
func (k keys) ticketToken(accountID, ticketID int64) string {
	m := hmac.New(sha256.New, k.token)
	fmt.Fprintf(m, "%d:%d", accountID, ticketID)
	return fmt.Sprintf("T%d-%s", ticketID, hex.EncodeToString(m.Sum(nil))[:12])
}

var tokenPattern = regexp.MustCompile(`(?i)\bT(\d{1,18})-([0-9a-f]{12})\b`)

// findToken returns the ticket named by a valid token in any of ss.
func (k keys) findToken(accountID int64, ss ...string) (int64, bool) {
	for _, s := range ss {
		for _, m := range tokenPattern.FindAllStringSubmatch(s, -1) {
			id, err := strconv.ParseInt(m[1], 10, 64)
			if err != nil {
				continue
			}
			if hmac.Equal([]byte(strings.ToLower(k.ticketToken(accountID, id))), []byte(strings.ToLower(m[0]))) {
				return id, true
			}
		}
	}
	return 0, false
}

// seal encrypts an IMAP password with AES-256-GCM; the nonce is prepended.
func (k keys) seal(plain string) ([]byte, error) {
	block, err := aes.NewCipher(k.sealKey)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcm.NonceSize())
	rand.Read(nonce)
	return gcm.Seal(nonce, nonce, []byte(plain), []byte("imap")), nil
}

func (k keys) open(sealed []byte) (string, error) {
	block, err := aes.NewCipher(k.sealKey)
	if err != nil {
		return "", err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return "", err
	}
	if len(sealed) < gcm.NonceSize() {
		return "", errors.New("sealed password too short")
	}
	plain, err := gcm.Open(nil, sealed[:gcm.NonceSize()], sealed[gcm.NonceSize():], []byte("imap"))
	if err != nil {
		return "", errors.New("cannot open sealed IMAP password (was the secret changed?)")
	}
	return string(plain), nil
}

var (
	subjectToken  = regexp.MustCompile(`\[#(\d{1,18})\]`)
	replyPrefixes = regexp.MustCompile(`(?i)^\s*((re|fwd?|aw|wg|sv|vs|antw|r|tr|rif|enc|odp|res)\s*(\[\d+\])?\s*:\s*)+`)
	spaces        = regexp.MustCompile(`\s+`)
)

// subjectKey is a subject reduced to what stays the same along a thread:
// reply and forward prefixes, ticket tags and case are dropped.
func subjectKey(s string) string {
	s = subjectToken.ReplaceAllString(s, " ")
	for {
		t := replyPrefixes.ReplaceAllString(s, "")
		t = strings.TrimSpace(subjectToken.ReplaceAllString(t, " "))
		if t == s {
			break
		}
		s = t
	}
	return strings.ToLower(spaces.ReplaceAllString(strings.TrimSpace(s), " "))
}

// isReplySubject reports whether the subject says it answers something (a
// forward does not: it starts a new conversation).
func isReplySubject(s string) bool { return replyOnly.MatchString(s) }

var replyOnly = regexp.MustCompile(`(?i)^\s*(re|aw|sv|vs|antw|r|rif|odp|res)\s*(\[\d+\])?\s*:`)

// splitPlus splits "support+T12-abc@example.com" into the base address and
// the tag after the plus.
func splitPlus(addr string) (base, tag string) {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return addr, ""
	}
	local, domain := addr[:at], addr[at:]
	if l, t, ok := strings.Cut(local, "+"); ok {
		return l + domain, t
	}
	return addr, ""
}

// plusAddress builds the Reply-To address that carries a ticket token.
func plusAddress(addr, tag string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return addr
	}
	return addr[:at] + "+" + tag + addr[at:]
}
