package main

import (
	"context"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"agentdesk/agentdesk"
	"agentdesk/routing"
)

func init() { seedQueues = createDemoQueues }

// createDemoQueues creates DOMAIN.md's three queues through the routing
// engine: Sales (chat and voice, English), Support (every channel, English
// and German: German contacts ask for the skill themselves) and Billing
// (email and voice). They are always open, so the demo routes at any hour.
func createDemoQueues(ctx context.Context, db *pgxpool.Pool, accountID int64, teams map[string]int64) (map[string]int64, error) {
	e := routing.New(db, nil, slog.New(slog.DiscardHandler), nil, routing.Config{})
	team := func(name string) *int64 {
		if id, ok := teams[name]; ok {
			return &id
		}
		return nil
	}
	queues := []routing.Queue{
		{Name: "Sales", Channels: []agentdesk.Channel{agentdesk.ChannelChat, agentdesk.ChannelVoice},
			RequiredSkills: map[string]int{"sales": 1, "english": 3}, TeamID: team("Sales"), Priority: 20,
			ServiceLevel: routing.ServiceLevel{Seconds: 30, Percent: 80}},
		{Name: "Support", RequiredSkills: map[string]int{"support": 1}, TeamID: team("Support"), Priority: 10,
			ServiceLevel: routing.ServiceLevel{Seconds: 60, Percent: 80},
			// after two minutes anyone on the team may take it, whatever the level
			Relaxation: []routing.RelaxStep{{AfterSeconds: 120, MaxLevel: 1}}},
		{Name: "Billing", Channels: []agentdesk.Channel{agentdesk.ChannelEmail, agentdesk.ChannelVoice},
			RequiredSkills: map[string]int{"billing": 1}, TeamID: team("Billing"), Priority: 10,
			ServiceLevel: routing.ServiceLevel{Seconds: 20, Percent: 80}},
	}
	ids := map[string]int64{}
	for i := range queues {
		if err := e.CreateQueue(ctx, accountID, &queues[i]); err != nil {
			return nil, err
		}
		ids[queues[i].Name] = queues[i].ID
	}
	// Contacts that name no queue go to Support.
	for _, ch := range agentdesk.Channels {
		if err := e.SetDefaultQueue(ctx, accountID, ch, queues[1].ID); err != nil {
			return nil, err
		}
	}
	return ids, nil
}
