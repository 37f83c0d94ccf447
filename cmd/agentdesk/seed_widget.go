package main

import (
	"context"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
)

// seedWidget gives the demo account its chat widget; createDemoOrg calls it
// after the queues exist.
var seedWidget = createDemoWidget

// demoWidgetID is the demo's chat widget, embedded by GET /demo/widget.
const demoWidgetID = "demo"

// createDemoWidget creates the chat widget "demo" for the server's own
// origin as `make run` serves it, so the demo page (GET /demo/widget) can
// chat with the desk. Support is the first topic: the demo agents who
// sign in first (agent@…) take support chats.
func createDemoWidget(ctx context.Context, store *postgres.Store, accountID int64, queues map[string]int64) error {
	w := &agentdesk.ChatWidget{
		PublicID: demoWidgetID, Name: "Demo shop",
		AllowedOrigins: []string{"http://localhost:8080", "http://127.0.0.1:8080"},
		Title:          "AgentDesk Demo support",
		Greeting:       "Hello! Tell us who you are and how we can help.",
	}
	for _, name := range []string{"Support", "Sales"} {
		if id, ok := queues[name]; ok {
			w.Topics = append(w.Topics, agentdesk.ChatTopic{Name: name, QueueID: id})
		}
	}
	return store.CreateWidget(ctx, agentdesk.Actor{AccountID: accountID, Role: agentdesk.RoleAdmin}, w)
}
