package main

import (
	"context"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/email"
	"agentdesk/agentdesk/postgres"
	"agentdesk/web"
)

// queueEmailReply queues an agent's email reply with the files the agent
// uploaded for it (m.AttachmentIDs): they go into the mail, and the email
// sender's transaction, which stores the reply, links them to it
// (postgres.WithAttachments), so a file is never sent without being linked
// or linked without being sent. maxMail is the relay's mail size limit (0:
// the email package's default); base64 makes the files a third larger.
func queueEmailReply(ctx context.Context, store *postgres.Store, sender *email.Sender, maxMail int64, actor agentdesk.Actor, t *agentdesk.Ticket, m *agentdesk.Message, html string) (int64, error) {
	if len(m.AttachmentIDs) == 0 {
		return sender.QueueReply(ctx, actor, t.ID, m.Body, html)
	}
	if maxMail <= 0 {
		maxMail = web.DefaultAttachmentMaxBytes
	}
	by := m.AttachBy
	if by.IsZero() {
		by = agentdesk.UploaderOf(actor)
	}
	ups, datas, err := store.UploadFiles(ctx, actor.AccountID, m.AttachmentIDs, by, maxMail*3/4)
	if err != nil {
		return 0, err
	}
	atts := make([]email.OutAttachment, len(ups))
	for i, u := range ups {
		atts[i] = email.OutAttachment{Filename: u.Filename, ContentType: u.ContentType, Data: datas[i]}
	}
	return sender.QueueReply(postgres.WithAttachments(ctx, m.AttachmentIDs, by), actor, t.ID, m.Body, html, atts...)
}

// emailEventsWithFiles adds a message's files to the email channel's
// message events before they are published: the email package builds those
// messages itself (a customer's mail, a delivery's new state), and a desk
// replacing its copy on message.updated must not lose the files.
type emailEventsWithFiles struct{ next email.Publisher }

func (p emailEventsWithFiles) Publish(ctx context.Context, tx pgx.Tx, e email.Event) error {
	if e.Type == email.MessageCreated || e.Type == email.MessageUpdated {
		var m *agentdesk.Message
		switch d := e.Data.(type) {
		case *agentdesk.Message:
			m = d
		case agentdesk.Message:
			m = &d
		}
		if m != nil && len(m.Attachments) == 0 {
			one := []agentdesk.Message{*m}
			if err := postgres.FillAttachments(ctx, tx, e.AccountID, one); err != nil {
				return err
			}
			if len(one[0].Attachments) > 0 {
				e.Data = &one[0]
			}
		}
	}
	return p.next.Publish(ctx, tx, e)
}
