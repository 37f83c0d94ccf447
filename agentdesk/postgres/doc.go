// Package postgres is AgentDesk's store on PostgreSQL: the connection pool,
// the embedded numbered migrations (applied under an advisory lock), and the
// queries behind the domain's store interfaces.
//
// Every query is scoped by account_id; nothing here ever reads or writes
// another account's rows. It must never hold business rules that belong in
// the domain (validation lives on the domain types), and never know about
// HTTP.
package postgres
