package web

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
)

// How an email typed into the widget joins the visitor's customer.
//
// Nobody verified that address: anyone can type anyone's email into a
// pre-chat form. A contact center treats it the way it treats a caller who
// only says their name: as a claim. The chat (and the visitor) therefore
// stays on the visitor's own customer record, and an address that already
// belongs to another customer is kept on that record only as an unverified
// attribute with the other customer as a *suggested* match. The agent sees
// the suggestion, verifies the person (an order number, a code sent to the
// address) and merges the two records if it is them; until then the chat
// shows none of the other customer's history, the visitor cannot read,
// write or end the other customer's chats (those are bound to the visitor
// that started them), and nothing the agent writes reaches the other
// customer's visitors. An address nobody holds yet is added to the
// visitor's customer as before: it takes nobody's history with it.

// visitorEmailLink says what to do with email for visitor: link it (the
// address is free, or already the visitor's customer's) or, when another
// customer holds it, leave it unlinked and suggest that customer.
type visitorEmailLink struct {
	link      bool  // add the email to (or find the customer by) it
	suggested int64 // the customer holding the address, when not linked
}

const identityHolder = `SELECT customer_id FROM identities WHERE account_id = $1 AND kind = $2 AND network = '' AND value = $3`

func holderOf(ctx context.Context, tx pgx.Tx, accountID int64, kind agentdesk.IdentityKind, value string) (int64, error) {
	var id int64
	err := tx.QueryRow(ctx, identityHolder, accountID, kind, value).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return id, err
}

func emailLinkFor(ctx context.Context, tx pgx.Tx, accountID int64, visitorID, email string) (visitorEmailLink, error) {
	byEmail, err := holderOf(ctx, tx, accountID, agentdesk.IdentityEmail, email)
	if err != nil || byEmail == 0 {
		return visitorEmailLink{link: true}, err
	}
	byVisitor, err := holderOf(ctx, tx, accountID, agentdesk.IdentityVisitor, visitorID)
	if err != nil {
		return visitorEmailLink{}, err
	}
	if byVisitor == byEmail {
		return visitorEmailLink{link: true}, nil
	}
	return visitorEmailLink{suggested: byEmail}, nil
}

// markUnverifiedEmail records on the visitor's customer the address it
// typed and the customer who holds it, for the agent to verify and merge.
// Customer attributes are strings (agentdesk.Customer.Attributes).
func markUnverifiedEmail(ctx context.Context, tx pgx.Tx, accountID, customerID int64, email string, suggested int64) error {
	_, err := tx.Exec(ctx, `UPDATE customers SET attributes = attributes || jsonb_build_object(
		'unverified_email', $3::text, 'email_verified', 'false', 'suggested_customer_id', $4::bigint::text), updated_at = now()
		WHERE account_id = $1 AND id = $2`, accountID, customerID, email, suggested)
	return err
}

// chatStartEmail is the address a chat was started with (the pre-chat
// form's, on its first message); "" when unknown.
func chatStartEmail(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, accountID, ticketID int64) (string, error) {
	var email string
	err := q.QueryRow(ctx, `SELECT coalesce(meta->>'email', '') FROM messages
		WHERE account_id = $1 AND ticket_id = $2 AND direction = 'in' ORDER BY created_at, id LIMIT 1`, accountID, ticketID).Scan(&email)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return email, err
}
