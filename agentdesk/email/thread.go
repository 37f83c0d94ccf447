package email

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// Threading rules, in the order they are tried. The first that finds a
// ticket wins; later rules are weaker evidence.
const (
	ByReference   = "references"   // In-Reply-To / References name a mail we stored or sent
	ByToken       = "token"        // our ticket token in a Message-ID or plus-address
	BySubjectTag  = "subject_tag"  // "[#1234]" in the subject, from the ticket's customer
	ByThreadIndex = "thread_index" // Outlook's Thread-Index names a known conversation
	ByThreadTopic = "thread_topic" // Outlook's Thread-Topic of a reply, same customer, recent
	BySubject     = "subject"      // "Re:" + same subject + same sender, recent
)

type threadMatch struct {
	ticketID int64
	by       string
}

const byMessageIDs = `
SELECT ticket_id FROM email_messages
WHERE account_id = $1 AND rfc_message_id = ANY($2) AND ticket_id IS NOT NULL
ORDER BY array_position($2, rfc_message_id) LIMIT 1`

const ticketOfCustomer = `SELECT id FROM tickets WHERE account_id = $1 AND id = $2 AND ($3::bigint = 0 OR customer_id = $3::bigint)`

const byThreadRoot = `
SELECT ticket_id FROM email_messages
WHERE account_id = $1 AND thread_root = $2 AND ticket_id IS NOT NULL
ORDER BY created_at DESC LIMIT 1`

const bySubjectKey = `
SELECT ticket_id FROM email_messages
WHERE account_id = $1 AND peer_addr = $2 AND subject_key = $3 AND ticket_id IS NOT NULL
  AND created_at > now() - $4::interval
ORDER BY created_at DESC LIMIT 1`

// thread finds the ticket a mail belongs to, or none.
func (in *Ingester) thread(ctx context.Context, tx pgx.Tx, acct, customerID int64, sender string, tags []string, p *Parsed) (threadMatch, error) {
	one := func(sql string, args ...any) (int64, error) {
		var id int64
		err := tx.QueryRow(ctx, sql, args...).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, nil
		}
		if err != nil {
			return 0, fmt.Errorf("thread: %w", err)
		}
		return id, nil
	}
	// In-Reply-To first, then References newest first: the newest is the
	// mail actually answered.
	ids := append([]string{}, p.InReplyTo...)
	for i := len(p.References) - 1; i >= 0; i-- {
		ids = append(ids, p.References[i])
	}
	if p.Bounce != nil && p.Bounce.OriginalMessageID != "" {
		ids = append([]string{p.Bounce.OriginalMessageID}, ids...)
	}
	if len(ids) > 0 {
		if id, err := one(byMessageIDs, acct, ids); id != 0 || err != nil {
			return threadMatch{id, ByReference}, err
		}
	}
	// Our token, in a Message-ID we sent (the row may be gone or never
	// stored, e.g. sent by another installation) or in the plus-address.
	if id, ok := in.keys.findToken(acct, append(ids, tags...)...); ok {
		if id, err := one(ticketOfCustomer, acct, id, 0); id != 0 || err != nil {
			return threadMatch{id, ByToken}, err
		}
	}
	if p.Bounce != nil {
		return threadMatch{}, nil // weaker rules would guess; a bounce is not worth a guess
	}
	if m := subjectToken.FindStringSubmatch(p.Subject); m != nil && customerID != 0 {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		if id, err := one(ticketOfCustomer, acct, n, customerID); id != 0 || err != nil {
			return threadMatch{id, BySubjectTag}, err
		}
	}
	if p.ThreadRoot != "" {
		if id, err := one(byThreadRoot, acct, p.ThreadRoot); id != 0 || err != nil {
			return threadMatch{id, ByThreadIndex}, err
		}
	}
	window := fmt.Sprintf("%d seconds", int64(in.cfg.ThreadWindow.Seconds()))
	// A Thread-Index longer than its 22-byte header is a reply in an Outlook
	// conversation; its Thread-Topic is the conversation's subject.
	if p.ThreadTopic != "" && p.ThreadReply && sender != "" {
		if key := subjectKey(p.ThreadTopic); len(key) >= 4 {
			if id, err := one(bySubjectKey, acct, sender, key, window); id != 0 || err != nil {
				return threadMatch{id, ByThreadTopic}, err
			}
		}
	}
	if isReplySubject(p.Subject) && sender != "" {
		if key := subjectKey(p.Subject); len(key) >= 4 {
			if id, err := one(bySubjectKey, acct, sender, key, window); id != 0 || err != nil {
				return threadMatch{id, BySubject}, err
			}
		}
	}
	return threadMatch{}, nil
}
