// Package postgres is AgentDesk's store on PostgreSQL: the connection pool,
// the embedded numbered migrations (applied under an advisory lock), and the
// queries behind the domain's store interfaces.
//
// Transactions that InTx runs are pipelined (tx.go): BEGIN travels with the
// first statement and the statements queued with AtCommit (event rows) with
// the COMMIT, so a change and what it announces cost two round trips; what
// the server executes is what a plain transaction would have it execute.
//
// Every query is scoped by account_id; nothing here ever reads or writes
// another account's rows. It must never hold business rules that belong in
// the domain (validation lives on the domain types), and never know about
// HTTP.
package postgres
