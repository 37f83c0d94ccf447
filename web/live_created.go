package web

import (
	"context"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
)

// PublishTicketCreated publishes ticket.created for t in tx to the lists that
// show it (see createdStreams), for channels outside this package that open
// tickets in their own transactions (email).
func PublishTicketCreated(ctx context.Context, tx pgx.Tx, t *agentdesk.Ticket) error {
	return publishTicketCreated(ctx, tx, t)
}
