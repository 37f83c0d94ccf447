package main

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Subjects and message lines of the generated history, by contact reason and
// category, so the timeline reads like a real desk's.

var subjects = map[string][]string{
	"invoice question":  {"Question about invoice %d", "Invoice %d looks wrong", "Why was I charged twice?"},
	"refund request":    {"Refund for order SO-%d", "Please refund my last payment", "Request a refund"},
	"payment failed":    {"Payment failed", "My card was declined", "Can't complete payment for order SO-%d"},
	"where is my order": {"Where is my order SO-%d?", "Order SO-%d not delivered yet", "Tracking hasn't updated"},
	"wrong item":        {"Wrong item in order SO-%d", "Received the wrong size", "Package contained someone else's item"},
	"return":            {"Return for order SO-%d", "How do I return an item?", "Return label needed"},
	"login problem":     {"Can't log in", "Password reset email not arriving", "Account locked"},
	"change details":    {"Change my delivery address", "Update my email address", "New phone number"},
	"close account":     {"Cancel my subscription", "Please close my account", "I want to cancel"},
	"how-to":            {"How do I export my data?", "How to add a second user", "Setting up notifications"},
	"defect":            {"App crashes on start", "Item arrived broken", "Sync stopped working"},
	"feature request":   {"Feature request: dark mode", "Please add CSV import", "Suggestion for the mobile app"},
	"pricing":           {"Pricing for 10 seats", "Do you offer annual billing?", "Discount for non-profits?"},
	"upgrade":           {"Upgrade to Pro", "Move us to the business plan", "Add more seats"},
	"demo request":      {"Demo request", "Can we book a walkthrough?", "Product demo for our team"},
}

var inboundLines = map[string][]string{
	"Billing": {
		"Hi, I have a question about my last invoice. The amount is higher than usual.",
		"My card was charged but the app says the payment failed. Can you check?",
		"Could you refund the duplicate charge from last week, please?",
	},
	"Orders": {
		"My order still hasn't arrived and the tracking hasn't changed in four days.",
		"I received the wrong item in my package. What should I do?",
		"I'd like to return part of my order. How does that work?",
	},
	"Account": {
		"I can't log in, the password reset email never arrives.",
		"Please update my delivery address, I moved last month.",
		"I'd like to cancel my subscription at the end of this month.",
	},
	"Product": {
		"How do I export my data to a spreadsheet?",
		"The app crashes every time I open the settings page.",
		"It would be great if you supported importing contacts from CSV.",
	},
	"Sales": {
		"What would the Pro plan cost for a team of ten?",
		"We'd like to upgrade to the business plan. What are the next steps?",
		"Could we book a demo next week? Tuesday afternoon works for us.",
	},
}

var germanInbound = []string{
	"Hallo, ich habe eine Frage zu meiner letzten Rechnung.",
	"Meine Bestellung ist immer noch nicht angekommen. Können Sie nachsehen?",
	"Ich kann mich nicht mehr anmelden. Die E-Mail zum Zurücksetzen kommt nicht an.",
	"Ich möchte mein Abo zum Monatsende kündigen.",
	"Vielen Dank, das hat geholfen!",
}

var germanOutbound = []string{
	"Hallo %s, vielen Dank für Ihre Nachricht. Ich habe mir das angesehen.",
	"Ich habe die Änderung in Ihrem Konto vorgenommen. Gibt es sonst noch etwas?",
	"Entschuldigen Sie die Unannehmlichkeiten. Ich melde mich bis morgen bei Ihnen.",
}

var outboundLines = []string{
	"Hi %s, thanks for reaching out. I've looked into this for you.",
	"I've checked your account and made the change on our side. It should show within the hour.",
	"Sorry for the trouble! I've passed this to our specialists and will update you within a day.",
	"Happy to help. Is there anything else I can do for you today?",
	"I've issued that for you; you'll see it on your statement in 3-5 business days.",
	"Here's a step-by-step guide: open Settings, choose Data, then Export.",
}

var followUpLines = []string{
	"Thanks, that worked!", "Any update on this?", "Great, thank you for the quick help.",
	"I tried that but it still doesn't work.", "Perfect, that's all I needed.", "Could you send me a confirmation by email?",
}

var chatLines = map[string][]string{
	"in":  {"Hi there!", "It's the order from last Tuesday.", "OK, thanks.", "Thanks!", "No, that's all. Bye!", "Great, that works for me."},
	"out": {"One moment please, let me check.", "Sure, what's your order number?", "OK, I see it now.", "It was shipped yesterday.", "Anything else I can help with?"},
}

var callNotes = []string{
	"Call summary: explained the invoice line items; customer satisfied.",
	"Call summary: reset the password together with the customer.",
	"Call summary: retention offer discussed (2 months at half price).",
	"Call summary: arranged a replacement shipment.",
	"Call summary: walked through the export feature.",
	"Call summary: escalated the defect to tier 2 with steps to reproduce.",
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func subjectFor(r *rand.Rand, reason string) string {
	s := pick(r, subjectsOr(reason))
	if strings.Contains(s, "%d") {
		s = fmt.Sprintf(s, 100000+r.IntN(900000))
	}
	return s
}

func subjectsOr(reason string) []string {
	if s, ok := subjects[strings.ToLower(reason)]; ok {
		return s
	}
	return []string{"Question about my account", "Need help", "Quick question"}
}

// messageBody returns the body of the i-th message of a ticket.
func messageBody(r *rand.Rand, t *genTicket, c *genCustomer, category string, i int, dir string) string {
	german := c.country == 'D' && r.Float64() < 0.6
	switch {
	case t.channel == "chat" && i > 1:
		return pick(r, chatLines[dir])
	case dir == "in" && i == 0:
		if german {
			return pick(r, germanInbound[:4])
		}
		if lines, ok := inboundLines[category]; ok {
			return pick(r, lines)
		}
		return "Hello, I need some help with my account."
	case dir == "in" && german:
		return germanInbound[4]
	case dir == "in":
		return pick(r, followUpLines)
	}
	lines := outboundLines
	if german {
		lines = germanOutbound
	}
	s := pick(r, lines)
	if strings.Contains(s, "%s") {
		s = fmt.Sprintf(s, c.first)
	}
	return s
}

// csatRating draws a rating (CSAT: ~85% are 4 or 5) and, for half of them,
// a comment.
func csatRating(r *rand.Rand) (int, string) {
	rating := 5
	switch x := r.Float64(); {
	case x < 0.04:
		rating = 1
	case x < 0.08:
		rating = 2
	case x < 0.15:
		rating = 3
	case x < 0.40:
		rating = 4
	}
	if r.Float64() < 0.5 {
		return rating, ""
	}
	comments := map[int][]string{
		1: {"Took far too long and nobody called back.", "I had to explain my problem three times."},
		2: {"Slow answer, but it got sorted eventually.", "Not really what I asked for."},
		3: {"OK in the end.", "Fine, but it took a while."},
		4: {"Good help, thanks.", "Sorted quickly."},
		5: {"Quick and friendly, thank you!", "Solved in one go, great service.", "Super helpful, thanks!"},
	}
	return rating, pick(r, comments[rating])
}
