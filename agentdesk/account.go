package agentdesk

import "time"

// Account is one tenant. An on-premises deployment has one; the cloud has many.
// Every business row carries its AccountID and no query crosses accounts.
type Account struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}
