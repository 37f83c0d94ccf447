package web

import (
	"fmt"
	"html"
	"net/http"
	"strings"

	"agentdesk/agentdesk"
)

func init() { registerAPI(mountWidgets) }

// Admin settings of the chat widgets companies embed on their sites. The
// public side the widget itself calls is in widget_chat.go.
func mountWidgets(s *Server, a *apiRouter) {
	a.route("GET", "/widgets", agentdesk.RoleAdmin, "List the account's chat widgets with their embed snippets (admin)",
		s.listWidgets, doc{Response: List[widgetView]{}})
	a.route("POST", "/widgets", agentdesk.RoleAdmin, "Create a chat widget: public id, allowed origins, topics → queues, greeting, offline behaviour (admin); the answer carries the embed snippet",
		s.createWidget, doc{Body: widgetRequest{}, Response: widgetView{}, Status: 201, Idempotent: true})
	a.route("GET", "/widgets/{id}", agentdesk.RoleAdmin, "One chat widget with its embed snippet (admin)",
		s.getWidget, doc{Response: widgetView{}})
	a.route("PATCH", "/widgets/{id}", agentdesk.RoleAdmin, "Change a chat widget (admin); topics and allowed_origins are replaced as a whole",
		s.patchWidget, doc{Body: widgetPatch{}, Response: widgetView{}})
}

// widgetRequest creates a widget.
type widgetRequest struct {
	PublicID       string                     `json:"public_id"`
	Name           string                     `json:"name"`
	AllowedOrigins []string                   `json:"allowed_origins"`
	DefaultQueueID *int64                     `json:"default_queue_id"`
	Topics         []agentdesk.ChatTopic      `json:"topics"`
	Title          string                     `json:"title"`
	Greeting       string                     `json:"greeting"`
	Offline        agentdesk.OfflineBehaviour `json:"offline_behaviour"`
}

// widgetPatch changes only the fields present; "default_queue_id": null
// sends untopical chats to the account's default chat queue.
type widgetPatch struct {
	PublicID       *string                     `json:"public_id"`
	Name           *string                     `json:"name"`
	AllowedOrigins *[]string                   `json:"allowed_origins"`
	DefaultQueueID nullableID                  `json:"default_queue_id"`
	Topics         *[]agentdesk.ChatTopic      `json:"topics"`
	Title          *string                     `json:"title"`
	Greeting       *string                     `json:"greeting"`
	Offline        *agentdesk.OfflineBehaviour `json:"offline_behaviour"`
}

func (p *widgetPatch) apply(w *agentdesk.ChatWidget) error {
	if p.PublicID != nil {
		w.PublicID = *p.PublicID
	}
	if p.Name != nil {
		w.Name = *p.Name
	}
	if p.AllowedOrigins != nil {
		w.AllowedOrigins = *p.AllowedOrigins
	}
	if p.DefaultQueueID.Set {
		w.DefaultQueueID = p.DefaultQueueID.Value
	}
	if p.Topics != nil {
		w.Topics = *p.Topics
	}
	if p.Title != nil {
		w.Title = *p.Title
	}
	if p.Greeting != nil {
		w.Greeting = *p.Greeting
	}
	if p.Offline != nil {
		w.Offline = *p.Offline
	}
	return nil
}

// widgetView is a widget as admins see it, with the HTML to paste into a site.
type widgetView struct {
	agentdesk.ChatWidget
	Embed string `json:"embed"`
}

// baseURL is how browsers reach this server: the configured public URL, or
// the request's own host.
func (s *Server) baseURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimSuffix(s.cfg.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Server) widgetView(r *http.Request, w *agentdesk.ChatWidget) widgetView {
	return widgetView{ChatWidget: *w, Embed: fmt.Sprintf(`<script src="%s/widget.js" data-widget="%s" async></script>`,
		html.EscapeString(s.baseURL(r)), html.EscapeString(w.PublicID))}
}

func (s *Server) listWidgets(w http.ResponseWriter, r *http.Request) error {
	actor, _ := actorOf(r.Context())
	ws, err := s.store.Widgets(r.Context(), actor.AccountID)
	if err != nil {
		return err
	}
	views := make([]widgetView, len(ws))
	for i := range ws {
		views[i] = s.widgetView(r, &ws[i])
	}
	writeJSON(w, http.StatusOK, listOf(views, ""))
	return nil
}

func (s *Server) createWidget(w http.ResponseWriter, r *http.Request) error {
	var req widgetRequest
	if err := decode(w, r, &req, 64<<10); err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	cw := &agentdesk.ChatWidget{PublicID: req.PublicID, Name: req.Name, AllowedOrigins: req.AllowedOrigins, DefaultQueueID: req.DefaultQueueID,
		Topics: req.Topics, Title: req.Title, Greeting: req.Greeting, Offline: req.Offline}
	if err := s.store.CreateWidget(r.Context(), actor, cw); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, s.widgetView(r, cw))
	return nil
}

func (s *Server) getWidget(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	cw, err := s.store.Widget(r.Context(), actor.AccountID, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.widgetView(r, cw))
	return nil
}

func (s *Server) patchWidget(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var p widgetPatch
	if err := decode(w, r, &p, 64<<10); err != nil {
		return err
	}
	actor, _ := actorOf(r.Context())
	cw, err := s.store.UpdateWidget(r.Context(), actor, id, p.apply)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.widgetView(r, cw))
	return nil
}
