// Package agentdesk is the domain of AgentDesk: the types every other package
// speaks in (customers and their identities, companies, agents, teams, tickets,
// timeline messages, reasons, orders), the service interfaces the adapters
// implement, and the one error type.
//
// It imports the standard library only (deps_test.go enforces this), and it
// never knows about HTTP, SQL or any transport: validation rules that need a
// third-party library (phone numbers) live in the adapters and hand the domain
// an already-normalised value.
package agentdesk
