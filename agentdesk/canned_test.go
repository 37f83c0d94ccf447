package agentdesk

import (
	"strings"
	"testing"
)

func TestRenderCanned(t *testing.T) {
	t.Parallel()
	values := map[string]string{"customer.first_name": "Carla", "ticket.id": "7", "agent.name": "Alex {{ticket.id}}"}
	for _, c := range []struct{ body, want string }{
		{"Hi {{customer.first_name}}!", "Hi Carla!"},
		{"Hi {{ customer.first_name }}, #{{ticket.id}}", "Hi Carla, #7"},
		{"{{customer.email}}|", "|"},                 // known, no value
		{"{{order.total}} {{", "{{order.total}} {{"}, // unknown and unclosed stay
		{"— {{agent.name}}", "— Alex {{ticket.id}}"}, // values are not rendered again
		{"{{{customer.first_name}}}", "{Carla}"},
	} {
		if got := RenderCanned(c.body, values); got != c.want {
			t.Errorf("RenderCanned(%q) = %q, want %q", c.body, got, c.want)
		}
	}
}

func TestCannedValidate(t *testing.T) {
	t.Parallel()
	team, agent := int64(1), int64(2)
	for _, c := range []struct {
		c     CannedResponse
		field string
	}{
		{CannedResponse{Title: " T ", Body: "b", Shortcut: " /Refund "}, ""},
		{CannedResponse{Title: "T", Body: "b {{ticket.subject}}"}, ""},
		{CannedResponse{Title: "", Body: "b"}, "title"},
		{CannedResponse{Title: "T", Body: " "}, "body"},
		{CannedResponse{Title: "T", Body: strings.Repeat("ü", MaxCannedBody+1)}, "body"},
		{CannedResponse{Title: "T", Body: "{{customer.phone}}"}, "body"},
		{CannedResponse{Title: "T", Body: "b", Shortcut: "a b"}, "shortcut"},
		{CannedResponse{Title: "T", Body: "b", TeamID: &team, AgentID: &agent}, "team_id"},
	} {
		err := c.c.Validate()
		field := ""
		if err != nil {
			field = err.(*Error).Field
		}
		if field != c.field || (err == nil) != (c.field == "") {
			t.Errorf("%+v: %v, want field %q", c.c, err, c.field)
		}
	}
	c := CannedResponse{Title: " T ", Body: "b", Shortcut: " /Refund "}
	c.Validate()
	if c.Title != "T" || c.Shortcut != "refund" {
		t.Errorf("normalised to %q %q", c.Title, c.Shortcut)
	}
}
