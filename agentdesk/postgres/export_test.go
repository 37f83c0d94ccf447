package postgres

// TicketListQuery lets the external tests EXPLAIN the list query exactly as
// the store builds it.
var TicketListQuery = ticketListQuery
