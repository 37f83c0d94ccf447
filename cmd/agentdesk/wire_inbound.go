package main

import (
	"context"
	"log/slog"
	"os"
	"strconv"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
	"agentdesk/web"
)

// The web contact form and the shop order webhook are part of the API; what
// they need from the deployment comes from the environment:
//
//	AGENTDESK_PHONE_REGION   region (e.g. US, DE) for phone numbers typed without +country code;
//	                         unset: such numbers are refused with a message asking for the country code
//	AGENTDESK_FORM_RATE      contact-form posts per minute per client address (default 10)
//
// Form tickets are routed by the same engine as email (emailEnqueuer, set by
// whoever wires routing); until it is set they are stored and wait unrouted.
func init() {
	partWirers = append(partWirers, func(_ context.Context, _ serveConfig, _ *postgres.Store, log *slog.Logger, _ *lifecycle) []web.Option {
		opts := []web.Option{web.WithEnqueuer(formEnqueuer{log: log})}
		if region := os.Getenv("AGENTDESK_PHONE_REGION"); region != "" {
			opts = append(opts, web.WithPhoneRegion(region))
		}
		if v := os.Getenv("AGENTDESK_FORM_RATE"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				log.Warn("ignoring AGENTDESK_FORM_RATE: not a positive number", "value", v)
			} else {
				opts = append(opts, web.WithFormRate(n))
			}
		}
		return opts
	})
}

// formEnqueuer forwards to the routing engine once it is wired.
type formEnqueuer struct{ log *slog.Logger }

func (f formEnqueuer) EnqueueTx(ctx context.Context, tx pgx.Tx, req agentdesk.TaskRequest) (int64, error) {
	if emailEnqueuer == nil {
		f.log.Warn("routing engine not wired: form ticket stored unrouted", "ticket_id", req.TicketID)
		return 0, nil
	}
	return emailEnqueuer.EnqueueTx(ctx, tx, req)
}
