package agentdesk

// TaskRequest asks the routing engine to queue one inbound contact to agents.
// Channel adapters (chat, email, forms, voice) build it and enqueue it in the
// same transaction that stores the contact, so a committed contact is always
// routed.
type TaskRequest struct {
	AccountID  int64
	Channel    Channel
	QueueID    int64 // 0 = the default queue of the channel
	Priority   Priority
	TicketID   int64
	CustomerID int64
	Skills     map[string]int // skill name → minimum level 1..5
	Attributes map[string]any
}
