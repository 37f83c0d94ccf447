// Package web is AgentDesk's HTTP face: the chi router, the REST API under
// /api/v1, authentication (password sessions and API tokens), role checks,
// cross-origin protection, rate limits, health and metrics, and the mounts of
// the websocket hubs (package web/hub) and the embedded UI (package web/ui).
//
// Handlers return error; one adapter (Server.handle) turns an
// *agentdesk.Error into the one error body {"error":{"kind","message","field"}}
// with its HTTP status, and logs anything else with a request id, showing the
// client only "internal error (id …)". Only this package knows about HTTP
// status codes; nothing below it does. Business rules live in the domain and
// the stores, never here.
package web
