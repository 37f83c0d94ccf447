package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
)

var _ agentdesk.OrderStore = (*Store)(nil)

const orderColumns = `id, external_id, customer_id, amount_cents, currency, items, status, placed_at, created_at`

func scanOrder(row pgx.Row, accountID int64) (*agentdesk.Order, error) {
	o := &agentdesk.Order{AccountID: accountID}
	var items []byte
	if err := row.Scan(&o.ID, &o.ExternalID, &o.CustomerID, &o.AmountCents, &o.Currency, &items, &o.Status, &o.PlacedAt, &o.CreatedAt); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(items, &o.Items); err != nil {
		return nil, fmt.Errorf("order %d items: %w", o.ID, err)
	}
	if o.Items == nil {
		o.Items = []agentdesk.OrderItem{}
	}
	return o, nil
}

// UpsertOrder inserts an order or updates it by (account, external id): a
// shop sends the same order again when it changes, and retries when unsure.
// An existing order keeps its customer (it may have moved in a merge).
func (s *Store) UpsertOrder(ctx context.Context, accountID int64, o *agentdesk.Order) (bool, error) {
	if err := o.Validate(); err != nil {
		return false, err
	}
	var created bool
	err := InTx(ctx, s.db, func(tx pgx.Tx) error {
		if err := liveCustomer(ctx, tx, accountID, o.CustomerID); err != nil {
			if agentdesk.IsKind(err, agentdesk.NotFound) {
				return agentdesk.FieldError("customer_id", "no such customer")
			}
			return err
		}
		var err error
		created, _, err = upsertOrder(ctx, tx, accountID, o)
		return err
	})
	return created, err
}

// upsertOrder writes o and reports whether it was new and whether anything
// changed; o is filled with the stored row.
func upsertOrder(ctx context.Context, tx pgx.Tx, accountID int64, o *agentdesk.Order) (created, changed bool, err error) {
	items, _ := json.Marshal(o.Items)
	if o.Items == nil {
		items = []byte("[]")
	}
	cur, err := scanOrder(tx.QueryRow(ctx, `SELECT `+orderColumns+` FROM orders WHERE account_id = $1 AND external_id = $2 FOR UPDATE`, accountID, o.ExternalID), accountID)
	if errors.Is(err, pgx.ErrNoRows) {
		// A concurrent first delivery of the same order makes this insert
		// wait and then do nothing; the select after it sees that row.
		got, err := scanOrder(tx.QueryRow(ctx, `INSERT INTO orders (account_id, external_id, customer_id, amount_cents, currency, items, status, placed_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (account_id, external_id) DO NOTHING RETURNING `+orderColumns,
			accountID, o.ExternalID, o.CustomerID, o.AmountCents, o.Currency, items, o.Status, o.PlacedAt), accountID)
		if err == nil {
			*o = *got
			return true, true, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return false, false, translate(err, "order")
		}
		cur, err = scanOrder(tx.QueryRow(ctx, `SELECT `+orderColumns+` FROM orders WHERE account_id = $1 AND external_id = $2 FOR UPDATE`, accountID, o.ExternalID), accountID)
	}
	if err != nil {
		return false, false, translate(err, "order")
	}
	same := cur.AmountCents == o.AmountCents && cur.Currency == o.Currency && cur.Status == o.Status &&
		cur.PlacedAt.Equal(o.PlacedAt) && slices.Equal(cur.Items, o.Items)
	if same {
		*o = *cur
		return false, false, nil
	}
	got, err := scanOrder(tx.QueryRow(ctx, `UPDATE orders SET amount_cents = $3, currency = $4, items = $5, status = $6, placed_at = $7, updated_at = now()
		WHERE account_id = $1 AND id = $2 RETURNING `+orderColumns, accountID, cur.ID, o.AmountCents, o.Currency, items, o.Status, o.PlacedAt), accountID)
	if err != nil {
		return false, false, translate(err, "order")
	}
	*o = *got
	return false, true, nil
}

// Order returns one order.
func (s *Store) Order(ctx context.Context, accountID, id int64) (*agentdesk.Order, error) {
	o, err := scanOrder(s.db.QueryRow(ctx, `SELECT `+orderColumns+` FROM orders WHERE account_id = $1 AND id = $2`, accountID, id), accountID)
	if err != nil {
		return nil, translate(err, "order")
	}
	return o, nil
}

// OrderByExternalID returns the order the shop knows by externalID.
func (s *Store) OrderByExternalID(ctx context.Context, accountID int64, externalID string) (*agentdesk.Order, error) {
	o, err := scanOrder(s.db.QueryRow(ctx, `SELECT `+orderColumns+` FROM orders WHERE account_id = $1 AND external_id = $2`, accountID, externalID), accountID)
	if err != nil {
		return nil, translate(err, "order")
	}
	return o, nil
}

// Orders lists a customer's orders, most recently placed first.
func (s *Store) Orders(ctx context.Context, accountID, customerID int64, p agentdesk.Page) ([]agentdesk.Order, string, error) {
	p = p.Normalize()
	k, err := agentdesk.DecodeCursor(p.Cursor)
	if err != nil {
		return nil, "", err
	}
	if err := customerExists(ctx, s.db, accountID, customerID); err != nil {
		return nil, "", err
	}
	args := []any{accountID, customerID, p.Limit + 1}
	where := ""
	if k != nil {
		where = ` AND (placed_at, id) < ($4, $5)`
		args = append(args, k.At, k.ID)
	}
	rows, err := s.db.Query(ctx, `SELECT `+orderColumns+` FROM orders WHERE account_id = $1 AND customer_id = $2`+where+
		` ORDER BY placed_at DESC, id DESC LIMIT $3`, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list orders: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (agentdesk.Order, error) {
		o, err := scanOrder(r, accountID)
		if err != nil {
			return agentdesk.Order{}, err
		}
		return *o, nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("list orders: %w", err)
	}
	keys := make([]agentdesk.Keyset, len(out))
	for i, o := range out {
		keys[i] = agentdesk.Keyset{At: o.PlacedAt, ID: o.ID}
	}
	out, next := trimPage(out, keys, p.Limit)
	return out, next, nil
}

func customerExists(ctx context.Context, q querier, accountID, id int64) error {
	var one int
	return translate(q.QueryRow(ctx, `SELECT 1 FROM customers WHERE account_id = $1 AND id = $2`, accountID, id).Scan(&one), "customer")
}

// LifetimeValue sums a customer's orders that were not refunded or
// cancelled, per currency (amounts in different currencies are never added).
func (s *Store) LifetimeValue(ctx context.Context, accountID, customerID int64) (map[string]int64, error) {
	if err := customerExists(ctx, s.db, accountID, customerID); err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `SELECT currency, sum(amount_cents)::bigint FROM orders
		WHERE account_id = $1 AND customer_id = $2 AND status NOT IN ('refunded', 'cancelled') GROUP BY currency`, accountID, customerID)
	if err != nil {
		return nil, fmt.Errorf("lifetime value: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var cur string
		var sum int64
		if err := rows.Scan(&cur, &sum); err != nil {
			return nil, err
		}
		out[cur] = sum
	}
	return out, rows.Err()
}

// ReceiveOrder stores a shop's order event in one transaction: it finds or
// creates the customer (shop account id first, then email), upserts the
// order by external id, and, when the order is new or changed, adds an
// order event to the customer's timeline on the order's record ticket. An
// identical replay changes nothing. Order tickets are closed at birth: they
// are history, not work, and are never routed.
func (s *Store) ReceiveOrder(ctx context.Context, accountID int64, in agentdesk.InboundOrder) (agentdesk.OrderReceipt, error) {
	var r agentdesk.OrderReceipt
	o := in.Order
	o.CustomerID = 1 // set below; Validate checks the rest
	if err := o.Validate(); err != nil {
		return r, err
	}
	var ids []agentdesk.Identity
	if in.ShopAccountID != "" {
		ids = append(ids, agentdesk.Identity{Kind: agentdesk.IdentityShop, Value: in.ShopAccountID})
	}
	if in.Email != "" {
		ids = append(ids, agentdesk.Identity{Kind: agentdesk.IdentityEmail, Value: in.Email})
	}
	if len(ids) == 0 {
		return r, agentdesk.FieldError("customer", "needs a shop_account_id or an email")
	}
	for i := range ids {
		if err := ids[i].Validate(); err != nil {
			if ids[i].Kind == agentdesk.IdentityEmail {
				return r, agentdesk.FieldError("customer.email", "%q is not a valid email address", in.Email)
			}
			return r, agentdesk.FieldError("customer.shop_account_id", "must be 1-320 characters")
		}
	}
	err := InTx(ctx, s.db, func(tx pgx.Tx) error {
		customerID, created, err := resolveCustomer(ctx, tx, accountID, ids, in.Name)
		if err != nil {
			return err
		}
		r.CustomerCreated = created
		o.CustomerID = customerID
		r.Created, r.Changed, err = upsertOrder(ctx, tx, accountID, &o)
		if err != nil {
			return err
		}
		r.Order = o
		if !r.Changed {
			return nil
		}
		if r.Created && o.Status != agentdesk.OrderCancelled && o.Status != agentdesk.OrderRefunded {
			// A lead who buys is a customer now.
			if _, err := tx.Exec(ctx, `UPDATE customers SET lifecycle_stage = 'customer', updated_at = now()
				WHERE account_id = $1 AND id = $2 AND lifecycle_stage IN ('lead', 'prospect')`, accountID, o.CustomerID); err != nil {
				return fmt.Errorf("promote customer: %w", err)
			}
		}
		var ticketID int64
		err = tx.QueryRow(ctx, `SELECT ticket_id FROM messages WHERE account_id = $1 AND customer_id = $2 AND kind = 'order_event'
			AND meta->>'order_id' = $3 ORDER BY id DESC LIMIT 1`, accountID, o.CustomerID, strconv.FormatInt(o.ID, 10)).Scan(&ticketID)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("find order ticket: %w", err)
		}
		body := fmt.Sprintf("Order %s is now %s: %s %s", o.ExternalID, o.Status, money(o.AmountCents), o.Currency)
		if r.Created {
			body = fmt.Sprintf("Order %s %s: %s %s, %d item(s)", o.ExternalID, o.Status, money(o.AmountCents), o.Currency, len(o.Items))
		}
		w, err := writeContact(ctx, tx, accountID, o.CustomerID, &agentdesk.Inbound{
			Channel: agentdesk.ChannelOrder, Kind: agentdesk.KindOrder, Status: agentdesk.StatusClosed, Priority: agentdesk.PriorityNormal,
			TicketID: ticketID, Subject: "Order " + o.ExternalID, Body: body,
			Meta: map[string]any{"order_id": o.ID, "external_id": o.ExternalID, "status": o.Status, "amount_cents": o.AmountCents, "currency": o.Currency},
		})
		if err != nil {
			return err
		}
		r.TicketID, r.MessageID = w.TicketID, w.MessageID
		return nil
	})
	return r, err
}

// money formats cents as units with two decimals.
func money(cents int64) string {
	return fmt.Sprintf("%d.%02d", cents/100, cents%100)
}
