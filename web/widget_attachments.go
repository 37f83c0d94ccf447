package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/jackc/pgx/v5"

	"agentdesk/agentdesk"
	"agentdesk/agentdesk/postgres"
	"agentdesk/web/hub"
)

func init() { registerAPI(mountWidgetAttachments) }

// A chat visitor's files (web/ui/WIDGET.md): uploaded with the widget token
// while the visitor has an open chat, sent by listing the id in chat.send's
// attachment_ids, downloaded with the token from the widget's own path —
// only files of the visitor's own chats, never of internal notes.
func mountWidgetAttachments(s *Server, a *apiRouter) {
	s.uploads.defaults()
	const auth = "widget token (Authorization: Bearer wt1.…); the page's Origin must be one the widget allows"
	a.route("POST", "/widget/{widget}/attachments", "", "A chat visitor uploads a file to send in its open chat (multipart/form-data, field file; rate limited per visitor and address); send the id in chat.send's attachment_ids",
		s.widgetCall(true, s.widgetUpload), doc{Body: uploadForm{}, BodyType: "multipart/form-data", Response: agentdesk.Attachment{}, Status: 201, Auth: auth})
	a.route("GET", "/widget/{widget}/attachments/{id}/content", "", "A file of the visitor's own chat (or its own upload not sent yet)",
		s.widgetCall(true, s.widgetAttachmentContent), doc{Auth: auth})
	for _, p := range []string{"attachments", "attachments/{id}/content"} {
		a.route("OPTIONS", "/widget/{widget}/"+p, "", "CORS preflight of the widget's call: allowed for the origins the widget allows",
			s.widgetFilePreflight, doc{Status: 204, Auth: "none"})
	}
}

// widgetFilePreflight allows GET too: the widget downloads files with its
// token in a header, which needs a preflight.
func (s *Server) widgetFilePreflight(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.widgetForOrigin(w, r); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "GET, POST")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// WidgetAttachmentURL is where a chat visitor downloads attachment id.
func WidgetAttachmentURL(widget string, id int64) string {
	return fmt.Sprintf("/api/v1/widget/%s/attachments/%d/content", url.PathEscape(widget), id)
}

func (s *Server) widgetUpload(w http.ResponseWriter, r *http.Request, cw *agentdesk.ChatWidget, v *hub.WidgetToken) error {
	by := agentdesk.Uploader{VisitorID: v.VisitorID}
	release, ok := s.uploads.inFlight.acquire(uploaderKey(v.AccountID, by))
	if !ok {
		return tooManyUploads(w)
	}
	defer release()
	if !s.uploads.perIP.Allow("ip:"+clientIP(r)) || !s.uploads.perVisitor.Allow("v:"+v.VisitorID) {
		return rateLimited(w, "too many files; try again in a minute")
	}
	ctx := r.Context()
	// Only into an open chat: the widget is not a file host.
	var ticketID int64
	err := s.store.DB().QueryRow(ctx, visitorOpenChat, v.AccountID, v.VisitorID).Scan(&ticketID)
	if errors.Is(err, pgx.ErrNoRows) {
		return agentdesk.Errorf(agentdesk.Conflict, "files can be sent only during a chat; start one first")
	}
	if err != nil {
		return err
	}
	up, err := readUpload(w, r, s.uploads.visitorMaxBytes)
	if err != nil {
		return err
	}
	up.By = by
	u, err := s.store.CreateUpload(ctx, v.AccountID, *up, s.uploads.files)
	if err != nil {
		return err
	}
	a := u.Attachment
	a.URL = WidgetAttachmentURL(cw.PublicID, a.ID)
	writeJSON(w, http.StatusCreated, a)
	return nil
}

func (s *Server) widgetAttachmentContent(w http.ResponseWriter, r *http.Request, cw *agentdesk.ChatWidget, v *hub.WidgetToken) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	ctx := r.Context()
	notFound := agentdesk.Errorf(agentdesk.NotFound, "attachment %d not found", id)
	u, err := s.store.UploadByID(ctx, v.AccountID, id)
	if err != nil {
		return err
	}
	switch {
	case u.MessageID == nil:
		if u.By.VisitorID != v.VisitorID {
			return notFound
		}
	case u.Kind != agentdesk.KindChat || (u.Direction != agentdesk.DirIn && u.Direction != agentdesk.DirOut):
		return notFound
	default:
		ok, err := postgres.ChatVisitorOf(ctx, s.store.DB(), v.AccountID, u.TicketID, v.VisitorID)
		if err != nil {
			return err
		}
		if !ok {
			return notFound
		}
	}
	return s.serveUpload(w, r, u)
}

// chatAttachments adds their files to a chat's messages as its visitor
// sees them again after a reload.
func (s *Server) chatAttachments(ctx context.Context, accountID int64, msgs []postgres.ChatMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	ids := make([]int64, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	byMsg, err := s.store.MessageAttachments(ctx, accountID, ids)
	if err != nil {
		return err
	}
	for i := range msgs {
		msgs[i].Attachments = byMsg[msgs[i].ID]
	}
	return nil
}
