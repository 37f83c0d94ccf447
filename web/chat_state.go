package web

import (
	"context"
	"strings"

	"agentdesk/web/hub"
)

// ChatState is the event that rebuilds a chat widget after a resync of its
// visitor stream: the visitor's chat as session's "chat" shows it (status,
// queue position and estimated wait while waiting, the agent's name once
// joined, the last 200 messages), or null when there is none to show.
const ChatState = "chat.state"

var _ hub.Snapshots = (*HubActions)(nil)

// Snapshot describes a visitor stream's chat for a client the hub told to
// resync (hub.Snapshots). Other streams have no snapshot: desks reload
// what they show over REST.
func (a *HubActions) Snapshot(ctx context.Context, accountID int64, stream string) (string, any, error) {
	visitor, ok := strings.CutPrefix(stream, "visitor:")
	if !ok {
		return "", nil, nil
	}
	s, err := a.server()
	if err != nil {
		return "", nil, err
	}
	v, err := s.chatViewOf(ctx, accountID, visitor)
	if err != nil {
		return "", nil, err
	}
	return ChatState, v, nil
}
