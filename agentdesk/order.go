package agentdesk

import (
	"context"
	"strings"
	"time"
)

// OrderStatus is a shop order's state. Refunded and cancelled orders do not
// count towards lifetime value.
type OrderStatus string

const (
	OrderPlaced    OrderStatus = "placed"
	OrderPaid      OrderStatus = "paid"
	OrderShipped   OrderStatus = "shipped"
	OrderDelivered OrderStatus = "delivered"
	OrderCancelled OrderStatus = "cancelled"
	OrderRefunded  OrderStatus = "refunded"
)

// Valid reports whether s is a known order status.
func (s OrderStatus) Valid() bool {
	switch s {
	case OrderPlaced, OrderPaid, OrderShipped, OrderDelivered, OrderCancelled, OrderRefunded:
		return true
	}
	return false
}

// OrderItem is one line of an order.
type OrderItem struct {
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	Quantity   int    `json:"quantity"`
	PriceCents int64  `json:"price_cents"`
}

// Order is an ingested shop order. Money is integer cents with a currency.
type Order struct {
	ID          int64       `json:"id"`
	AccountID   int64       `json:"-"`
	ExternalID  string      `json:"external_id"`
	CustomerID  int64       `json:"customer_id"`
	AmountCents int64       `json:"amount_cents"`
	Currency    string      `json:"currency"`
	Items       []OrderItem `json:"items"`
	Status      OrderStatus `json:"status"`
	PlacedAt    time.Time   `json:"placed_at"`
	CreatedAt   time.Time   `json:"created_at"`
}

// Validate checks an order's fields.
func (o *Order) Validate() error {
	o.ExternalID = strings.TrimSpace(o.ExternalID)
	if o.ExternalID == "" || len(o.ExternalID) > 100 {
		return FieldError("external_id", "must be 1-100 characters")
	}
	o.Currency = strings.ToUpper(strings.TrimSpace(o.Currency))
	if len(o.Currency) != 3 {
		return FieldError("currency", "must be a 3-letter ISO 4217 code")
	}
	for _, r := range o.Currency {
		if r < 'A' || r > 'Z' {
			return FieldError("currency", "must be a 3-letter ISO 4217 code")
		}
	}
	if o.AmountCents < 0 {
		return FieldError("amount_cents", "must not be negative")
	}
	if o.Status == "" {
		o.Status = OrderPlaced
	}
	if !o.Status.Valid() {
		return FieldError("status", "unknown order status %q", o.Status)
	}
	if o.PlacedAt.IsZero() {
		return FieldError("placed_at", "is required")
	}
	if len(o.Items) > 500 {
		return FieldError("items", "at most 500 items")
	}
	for _, it := range o.Items {
		if it.Quantity <= 0 || it.PriceCents < 0 {
			return FieldError("items", "quantity must be positive and price not negative")
		}
	}
	return nil
}

// OrderStore keeps orders.
type OrderStore interface {
	// UpsertOrder inserts or updates by (account, external id); created
	// reports which.
	UpsertOrder(ctx context.Context, accountID int64, o *Order) (created bool, err error)
	Order(ctx context.Context, accountID, id int64) (*Order, error)
	Orders(ctx context.Context, accountID, customerID int64, p Page) ([]Order, string, error)
	// LifetimeValue is the sum of non-refunded, non-cancelled orders per currency.
	LifetimeValue(ctx context.Context, accountID, customerID int64) (map[string]int64, error)
}
