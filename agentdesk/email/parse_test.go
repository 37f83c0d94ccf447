package email

import (
	"encoding/base64"
	"strings"
	"testing"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
)

func TestParseCharsets(t *testing.T) {
	t.Parallel()
	latin1, _ := charmap.ISO8859_1.NewEncoder().String("Grüße aus Köln")
	cp1252, _ := charmap.Windows1252.NewEncoder().String("“Smart quotes” — and €5")
	cp1251, _ := charmap.Windows1251.NewEncoder().String("Привет, поддержка")
	latin2, _ := charmap.ISO8859_2.NewEncoder().String("Dzień dobry, zażółć")
	jis, _ := japanese.ISO2022JP.NewEncoder().String("こんにちは、サポートさん")
	tests := []struct {
		name, header, body, wantText, wantSubject string
	}{
		{"utf-8 quoted-printable", "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable",
			"Caf=C3=A9 cr=C3=A8me =\nbr=C3=BBl=C3=A9e", "Café crème brûlée", "plain"},
		{"iso-8859-1 8bit", "Content-Type: text/plain; charset=ISO-8859-1\nContent-Transfer-Encoding: 8bit",
			latin1, "Grüße aus Köln", "plain"},
		{"windows-1252 base64", "Content-Type: text/plain; charset=windows-1252\nContent-Transfer-Encoding: base64",
			base64.StdEncoding.EncodeToString([]byte(cp1252)), "“Smart quotes” — and €5", "plain"},
		{"windows-1251", "Content-Type: text/plain; charset=windows-1251\nContent-Transfer-Encoding: 8bit",
			cp1251, "Привет, поддержка", "plain"},
		{"iso-8859-2", "Content-Type: text/plain; charset=iso-8859-2\nContent-Transfer-Encoding: 8bit",
			latin2, "Dzień dobry, zażółć", "plain"},
		{"iso-2022-jp", "Content-Type: text/plain; charset=ISO-2022-JP\nContent-Transfer-Encoding: 7bit",
			jis, "こんにちは、サポートさん", "plain"},
		{"unknown charset kept as text", "Content-Type: text/plain; charset=x-nonsense",
			"hello anyway", "hello anyway", "plain"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := "From: a@example.net\nTo: support@example.com\nSubject: plain\nMessage-ID: <x@y>\nMIME-Version: 1.0\n" + tc.header + "\n\n" + tc.body + "\n"
			p, err := Parse([]byte(crlf(raw)))
			if err != nil {
				t.Fatal(err)
			}
			if p.Text != tc.wantText {
				t.Errorf("text = %q, want %q", p.Text, tc.wantText)
			}
			if p.Subject != tc.wantSubject {
				t.Errorf("subject = %q", p.Subject)
			}
		})
	}
}

func TestParseEncodedAnd8bitHeaders(t *testing.T) {
	t.Parallel()
	latin1Subject, _ := charmap.ISO8859_1.NewEncoder().String("Rückfrage zur Bestellung")
	tests := []struct{ subject, from, want, wantName string }{
		{"=?UTF-8?B?w4RuZGVydW5nIG1laW5lciBBZHJlc3Nl?=", "=?ISO-8859-1?Q?J=FCrgen_M=FCller?= <j@example.net>", "Änderung meiner Adresse", "Jürgen Müller"},
		{"=?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg==?=", "a@example.net", "こんにちは", ""},
		{"Überweisung fehlgeschlagen", "Zoë Ångström <z@example.net>", "Überweisung fehlgeschlagen", "Zoë Ångström"}, // raw UTF-8 (SMTPUTF8 style)
		{latin1Subject, "a@example.net", "Rückfrage zur Bestellung", ""},                                             // raw Latin-1 bytes
	}
	for _, tc := range tests {
		raw := "From: " + tc.from + "\nSubject: " + tc.subject + "\nMessage-ID: <h@y>\n\nbody\n"
		p, err := Parse([]byte(crlf(raw)))
		if err != nil {
			t.Fatal(err)
		}
		if p.Subject != tc.want {
			t.Errorf("subject %q decoded to %q, want %q", tc.subject, p.Subject, tc.want)
		}
		if p.From.Name != tc.wantName {
			t.Errorf("from name = %q, want %q", p.From.Name, tc.wantName)
		}
	}
}

func TestParseHTMLAttachmentsInline(t *testing.T) {
	t.Parallel()
	png := base64.StdEncoding.EncodeToString([]byte("\x89PNG fake image bytes"))
	raw := `From: "Ann" <ann@example.net>
To: support@example.com
Subject: Screenshot
Message-ID: <html1@example.net>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/related; boundary="rel"

--rel
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=utf-8

See the screenshot.
--alt
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

<p onclick=3D"steal()">See the <b>screenshot</b>.<script>alert(1)</script><img src=3D"cid:img1@x"></p>
--alt--
--rel
Content-Type: image/png
Content-ID: <img1@x>
Content-Transfer-Encoding: base64

` + png + `
--rel--
--outer
Content-Type: application/pdf; name="invoice.pdf"
Content-Disposition: attachment; filename="invoice.pdf"
Content-Transfer-Encoding: base64

` + base64.StdEncoding.EncodeToString([]byte("%PDF-1.4 fake")) + `
--outer--
`
	p, err := Parse([]byte(crlf(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if p.Text != "See the screenshot." {
		t.Errorf("text = %q", p.Text)
	}
	if strings.Contains(p.HTML, "script") || strings.Contains(p.HTML, "onclick") || !strings.Contains(p.HTML, "<b>screenshot</b>") || !strings.Contains(p.HTML, `src="cid:img1@x"`) {
		t.Errorf("html not sanitised as expected: %s", p.HTML)
	}
	if len(p.Attachments) != 2 {
		t.Fatalf("attachments = %+v", p.Attachments)
	}
	img, pdf := p.Attachments[0], p.Attachments[1]
	if !img.Inline || img.ContentID != "img1@x" || img.ContentType != "image/png" || string(img.Data) != "\x89PNG fake image bytes" {
		t.Errorf("inline image = %+v", img)
	}
	if pdf.Inline || pdf.Filename != "invoice.pdf" || string(pdf.Data) != "%PDF-1.4 fake" || pdf.SHA256 != sumOf([]byte("%PDF-1.4 fake")) {
		t.Errorf("pdf = %+v", pdf)
	}
}

func TestParseHTMLOnlyGivesText(t *testing.T) {
	t.Parallel()
	raw := "From: a@example.net\nSubject: x\nMessage-ID: <h2@y>\nContent-Type: text/html\n\n<div>Hello&nbsp;there</div><div>Second &amp; last</div>\n"
	p, err := Parse([]byte(crlf(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if p.Text != "Hello\u00a0there\nSecond & last" {
		t.Errorf("text = %q", p.Text)
	}
}

func TestFoldQuotesAndSignatures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, text, visible string
		kinds               []string
	}{
		{"gmail quote", "Thanks, that worked.\n\nOn Mon, 3 Mar 2025 at 10:00, Acme Support <support@example.com> wrote:\n> Please restart the router.\n> \n> Best, Acme", "Thanks, that worked.", []string{"quote"}},
		{"signature and quote", "It still fails.\n\n-- \nJane Doe\nACME Corp, +1 555 0100\n\nAm 03.03.2025 um 10:00 schrieb Support:\n> Try again", "It still fails.", []string{"quote", "signature"}},
		{"outlook original message", "See below.\n\n-----Original Message-----\nFrom: Support\nSent: Monday\nSubject: Re: x\n\nold text", "See below.", []string{"quote"}},
		{"outlook from block", "Yes please.\n\nFrom: Acme Support <support@example.com>\nSent: Monday, March 3, 2025 10:00 AM\nTo: Jane\nSubject: RE: order\n\nold", "Yes please.", []string{"quote"}},
		{"mobile footer", "On my way.\n\nSent from my iPhone", "On my way.", []string{"signature"}},
		{"interleaved reply keeps answers", "> Which model?\nThe X200.\n> Since when?\nSince Monday.", "The X200.\n\nSince Monday.", []string{"quote", "quote"}},
		{"only a quote stays visible", "> just a quote", "> just a quote", []string{"quote"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			folds, visible := fold(tc.text)
			var kinds []string
			for _, f := range folds {
				kinds = append(kinds, f.Kind)
				if f.Start < 0 || f.End > len(tc.text) || f.Start >= f.End {
					t.Errorf("bad fold %+v", f)
				}
			}
			if strings.Join(kinds, ",") != strings.Join(tc.kinds, ",") {
				t.Errorf("folds = %v, want %v", kinds, tc.kinds)
			}
			if strings.ReplaceAll(visible, "\n\n", "\n") != strings.ReplaceAll(tc.visible, "\n\n", "\n") {
				t.Errorf("visible = %q, want %q", visible, tc.visible)
			}
		})
	}
}

func TestDetectAutomated(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, headers      string
		auto, bulk, bounce bool
	}{
		{"plain", "Subject: Help", false, false, false},
		{"auto-submitted", "Subject: Re: Help\nAuto-Submitted: auto-replied", true, false, false},
		{"auto-submitted no", "Subject: Help\nAuto-Submitted: no", false, false, false},
		{"x-autoreply", "Subject: Re: Help\nX-Autoreply: yes", true, false, false},
		{"precedence bulk", "Subject: Newsletter\nPrecedence: bulk", false, true, false},
		{"precedence auto_reply", "Subject: Re: Help\nPrecedence: auto_reply", true, false, false},
		{"out of office subject", "Subject: Out of Office: Help", true, false, false},
		{"automatic reply subject", "Subject: Automatic reply: Help", true, false, false},
		{"german ooo", "Subject: Abwesenheitsnotiz: Hilfe", true, false, false},
		{"list mail", "Subject: Digest\nList-Id: <users.lists.example.org>", false, true, false},
		{"daemon bounce without DSN", "From: MAILER-DAEMON@mx.example.net\nSubject: Undelivered Mail Returned to Sender", true, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.headers
			if !strings.Contains(h, "From:") {
				h = "From: a@example.net\n" + h
			}
			p, err := Parse([]byte(crlf(h + "\nMessage-ID: <d@y>\n\nbody\n")))
			if err != nil {
				t.Fatal(err)
			}
			if p.AutoReply != tc.auto || p.Bulk != tc.bulk || (p.Bounce != nil) != tc.bounce {
				t.Errorf("auto=%v bulk=%v bounce=%v, want %v %v %v", p.AutoReply, p.Bulk, p.Bounce != nil, tc.auto, tc.bulk, tc.bounce)
			}
		})
	}
}

const dsn = `From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
To: support@example.com
Subject: Undelivered Mail Returned to Sender
Message-ID: <bounce1@mx.example.net>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain

Your message could not be delivered.
--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; gone@example.net
Original-Recipient: rfc822;gone@example.net
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown

--b1
Content-Type: text/rfc822-headers

From: Acme Support <support@example.com>
To: gone@example.net
Subject: Re: Help
Message-ID: <%s>

--b1--
`

func TestParseDSN(t *testing.T) {
	t.Parallel()
	p, err := Parse([]byte(crlf(strings.Replace(dsn, "%s", "orig@desk.example.com", 1))))
	if err != nil {
		t.Fatal(err)
	}
	if p.Bounce == nil || !p.AutoReply {
		t.Fatalf("bounce not detected: %+v", p)
	}
	f := p.Bounce.FailedRecipients()
	if len(f) != 1 || f[0].Address != "gone@example.net" || f[0].Status != "5.1.1" || !strings.Contains(f[0].Diagnostic, "User unknown") {
		t.Errorf("failed recipients = %+v", f)
	}
	if p.Bounce.OriginalMessageID != "orig@desk.example.com" {
		t.Errorf("original message id = %q", p.Bounce.OriginalMessageID)
	}
}

func TestParseMalformed(t *testing.T) {
	t.Parallel()
	// An unterminated multipart, a part with bad base64 and no Message-ID:
	// the text that can be read is kept, with warnings.
	raw := "From: a@example.net\nSubject: broken\nContent-Type: multipart/mixed; boundary=zz\n\n--zz\nContent-Type: text/plain\n\nreadable part\n--zz\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n!!!not base64!!!\n"
	p, err := Parse([]byte(crlf(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if p.Text != "readable part" {
		t.Errorf("text = %q", p.Text)
	}
	if !p.SyntheticID || !strings.HasSuffix(p.MessageID, "@no-message-id.invalid") {
		t.Errorf("message id = %q", p.MessageID)
	}
	if len(p.Warnings) == 0 {
		t.Errorf("no warnings for a broken message")
	}
	if _, err := Parse([]byte("this is not a mail at all")); err == nil {
		t.Errorf("a header-less blob parsed")
	}
}

func TestSubjectKey(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Re: Help":                 "help",
		"RE: AW: Fwd:  Help  me":   "help me",
		"Re: [#123] Help":          "help",
		"[#123] Re: Help":          "help",
		"Re[2]: Help":              "help",
		"SV: Hjälp":                "hjälp",
		"Order 42 arrived damaged": "order 42 arrived damaged",
	} {
		if got := subjectKey(in); got != want {
			t.Errorf("subjectKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTicketToken(t *testing.T) {
	t.Parallel()
	k := deriveKeys(testSecret)
	tok := k.ticketToken(1, 42)
	if id, ok := k.findToken(1, "adk."+tok+".abc@desk"); !ok || id != 42 {
		t.Errorf("token %s not found: %d %v", tok, id, ok)
	}
	if _, ok := k.findToken(2, tok); ok {
		t.Errorf("token of account 1 accepted for account 2")
	}
	if _, ok := k.findToken(1, "T43-"+tok[len("T42-"):]); ok {
		t.Errorf("forged ticket number accepted")
	}
	sealed, err := k.seal("imap-password")
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := k.open(sealed); err != nil || plain != "imap-password" {
		t.Errorf("open = %q, %v", plain, err)
	}
	if _, err := deriveKeys([]byte("another secret of at least 32 bytes!")).open(sealed); err == nil {
		t.Errorf("opened with the wrong key")
	}
}

func TestFoldHTMLQuotes(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, html, keep, gone string }{
		{"gmail", `<div dir="ltr">Thanks!</div><br><div class="gmail_quote"><div class="gmail_attr">On Mon, Support wrote:</div><blockquote class="gmail_quote">old text</blockquote></div>`, "Thanks!", "old text"},
		{"apple mail", `<div>Yes.</div><div><br><blockquote type="cite"><div>old text</div></blockquote></div>`, "Yes.", "old text"},
		{"thunderbird", `<p>Works now.</p><div class="moz-cite-prefix">On 03.03.25 Support wrote:<br></div><blockquote type="cite">old text</blockquote>`, "Works now.", "wrote"},
		{"outlook", `<div>See below.</div><hr><div id="divRplyFwdMsg"><b>From:</b> Support</div><div>old text</div>`, "See below.", "old text"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := "From: a@example.net\nSubject: x\nMessage-ID: <fh@y>\nContent-Type: text/html; charset=utf-8\n\n" + tc.html + "\n"
			p, err := Parse([]byte(crlf(raw)))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(p.HTMLVisible, tc.keep) || strings.Contains(p.HTMLVisible, tc.gone) {
				t.Errorf("visible html = %q", p.HTMLVisible)
			}
			if !strings.Contains(p.HTML, tc.gone) {
				t.Errorf("full html lost the quote: %q", p.HTML)
			}
		})
	}
}
