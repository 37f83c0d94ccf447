package email

import (
	"bytes"
	"strings"

	"golang.org/x/net/html"
)

// foldHTML returns the HTML without the quoted history the common clients
// mark up: Gmail's div.gmail_quote, Apple Mail's and Thunderbird's
// blockquote type=cite (with Thunderbird's moz-cite-prefix line), and
// everything from Outlook's divRplyFwdMsg / appendonsend on. It runs before
// sanitising, which strips the classes and ids it looks for; the full HTML
// is kept beside it. ok is false when nothing was folded.
func foldHTML(src string) (out string, ok bool) {
	doc, err := html.Parse(strings.NewReader(src))
	if err != nil {
		return "", false
	}
	folded := false
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		for c := n.FirstChild; c != nil; {
			next := c.NextSibling
			switch {
			case isQuoteNode(c):
				n.RemoveChild(c)
				folded = true
			case isOutlookHistory(c):
				// Outlook puts the history after a marker, as siblings.
				for s := c; s != nil; {
					ns := s.NextSibling
					n.RemoveChild(s)
					s = ns
				}
				folded = true
				return
			default:
				walk(c)
			}
			c = next
		}
	}
	walk(doc)
	if !folded {
		return "", false
	}
	var b bytes.Buffer
	if err := html.Render(&b, doc); err != nil {
		return "", false
	}
	return b.String(), true
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if strings.EqualFold(a.Key, key) {
			return a.Val
		}
	}
	return ""
}

func hasClass(n *html.Node, class string) bool {
	for _, c := range strings.Fields(attr(n, "class")) {
		if c == class {
			return true
		}
	}
	return false
}

func isQuoteNode(n *html.Node) bool {
	if n.Type != html.ElementNode {
		return false
	}
	switch n.Data {
	case "div":
		return hasClass(n, "gmail_quote") || hasClass(n, "moz-cite-prefix") || hasClass(n, "yahoo_quoted")
	case "blockquote":
		return strings.EqualFold(attr(n, "type"), "cite") || hasClass(n, "gmail_quote")
	}
	return false
}

func isOutlookHistory(n *html.Node) bool {
	if n.Type != html.ElementNode {
		return false
	}
	id := attr(n, "id")
	return id == "divRplyFwdMsg" || id == "appendonsend" || id == "mail-editor-reference-message-container"
}
