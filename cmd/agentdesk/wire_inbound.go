package main

import "agentdesk/web"

// wireForms configures the web contact form and the shop order webhook,
// which are part of the API. Form tickets are routed by the same engine as
// email.
func wireForms(c channelConfig, enq enqueuer) []web.Option {
	opts := []web.Option{web.WithEnqueuer(enq)}
	if c.phoneRegion != "" {
		opts = append(opts, web.WithPhoneRegion(c.phoneRegion))
	}
	if c.formRate > 0 {
		opts = append(opts, web.WithFormRate(c.formRate))
	}
	return opts
}
