package web

import (
	"fmt"
	"net/http"
	"testing"

	"agentdesk/agentdesk"
)

// The first message of a new ticket takes files like any message: linked in
// the ticket's transaction; a file that is unknown, another's or already on
// a message, or more than ten, refuses the whole ticket (422 on
// message.attachment_ids) and stores nothing.
func TestCreateTicketWithAttachments(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	agent, agent2 := e.clients["agent"], e.clients["agent2"]
	up := func(c *client, name string, data []byte) agentdesk.Attachment {
		t.Helper()
		res := c.upload(t, "/api/v1/attachments", name, "", data)
		wantStatus(t, "upload "+name, res, http.StatusCreated)
		var a agentdesk.Attachment
		res.json(t, &a)
		return a
	}
	customer := e.deskCustomer("First files")
	a, b := up(agent, "a.pdf", pdfBytes), up(agent, "b.png", pngBytes)
	res := agent.do(t, "POST", "/api/v1/tickets", map[string]any{"subject": "Damaged parcel", "customer_id": customer,
		"message": map[string]any{"kind": "note", "body": "photos from the call", "attachment_ids": []int64{b.ID, a.ID}}})
	wantStatus(t, "ticket with files", res, http.StatusCreated)
	var created ticketCreated
	res.json(t, &created)
	if created.Message == nil || len(created.Message.Attachments) != 2 || created.Message.Attachments[0].ID != b.ID || created.Message.Attachments[1].Filename != "a.pdf" {
		t.Fatalf("created message %+v", created.Message)
	}
	var list List[agentdesk.Message]
	agent.do(t, "GET", fmt.Sprintf("/api/v1/tickets/%d/messages", created.ID), nil).json(t, &list)
	if len(list.Items) != 1 || len(list.Items[0].Attachments) != 2 {
		t.Errorf("listed %+v", list.Items)
	}
	// A file alone opens a ticket too.
	c := up(agent, "c.pdf", []byte("%PDF-1.4 c"))
	res = agent.do(t, "POST", "/api/v1/tickets", map[string]any{"subject": "Receipt", "customer_id": customer,
		"message": map[string]any{"direction": "in", "body": "", "attachment_ids": []int64{c.ID}}})
	wantStatus(t, "ticket with a file only", res, http.StatusCreated)

	d := up(agent, "d.pdf", []byte("%PDF-1.4 d"))
	theirs := up(agent2, "theirs.pdf", []byte("%PDF-1.4 theirs"))
	eleven := make([]int64, 11)
	for i := range eleven {
		eleven[i] = d.ID + int64(i)
	}
	count := func() string {
		return fmt.Sprint(e.deskCount(`SELECT count(*) FROM tickets`), e.deskCount(`SELECT count(*) FROM messages`),
			e.deskCount(`SELECT count(*) FROM uploads WHERE message_id IS NULL`))
	}
	before := count()
	for _, bad := range []struct {
		name string
		ids  []int64
	}{
		{"already linked", []int64{a.ID}},
		{"new and linked", []int64{d.ID, c.ID}},
		{"another agent's", []int64{theirs.ID}},
		{"unknown", []int64{999999}},
		{"twice", []int64{d.ID, d.ID}},
		{"eleven", eleven},
	} {
		t.Run(bad.name, func(t *testing.T) {
			res := agent.do(t, "POST", "/api/v1/tickets", map[string]any{"subject": bad.name, "customer_id": customer,
				"message": map[string]any{"kind": "note", "body": "x", "attachment_ids": bad.ids}})
			if kind, field := res.errorKind(t); res.status != http.StatusUnprocessableEntity || kind != agentdesk.Invalid || field != "message.attachment_ids" {
				t.Errorf("%d %s %q: %s", res.status, kind, field, res.body)
			}
		})
	}
	if after := count(); after != before {
		t.Errorf("tickets, messages, unlinked files %s → %s after refused tickets", before, after)
	}
	if n := e.deskCount(`SELECT count(*) FROM uploads WHERE id = $1 AND message_id IS NULL`, d.ID); n != 1 {
		t.Error("a refused ticket linked a file")
	}
}
