package email

import (
	"regexp"
	"strings"
)

// Fold marks a region of a message's text that the desk shows collapsed:
// the quoted history of earlier mails, or a signature. The text itself is
// kept whole; folds are byte offsets into it.
type Fold struct {
	Kind  string `json:"kind"` // "quote" or "signature"
	Start int    `json:"start"`
	End   int    `json:"end"`
}

var (
	// Attribution lines clients put above quoted history, in the languages
	// our customers write in.
	attribution = regexp.MustCompile(`(?i)^(on\s.+wrote:|am\s.+schrieb.*:|le\s.+a écrit\s?:|el\s.+escribió:|op\s.+schreef.*:|il\s.+ha scritto:)\s*$`)
	// Outlook and other clients that do not prefix quotes with ">".
	historyStart = regexp.MustCompile(`(?i)^(-{2,}\s*(original message|ursprüngliche nachricht|message d'origine|forwarded message|weitergeleitete nachricht)\s*-{2,}|_{20,})\s*$`)
	outlookFrom  = regexp.MustCompile(`(?i)^(from|von|de):\s.+`)
	mobileSig    = regexp.MustCompile(`(?i)^(sent from my |get outlook for |von meinem .+ gesendet|envoyé de mon )`)
)

// fold finds quoted history and signatures in text and returns them with the
// text that remains visible.
func fold(text string) ([]Fold, string) {
	if text == "" {
		return nil, ""
	}
	lines := strings.SplitAfter(text, "\n")
	offs := make([]int, len(lines)+1)
	for i, l := range lines {
		offs[i+1] = offs[i] + len(l)
	}
	trim := func(i int) string { return strings.TrimRight(lines[i], "\r\n") }
	var folds []Fold
	add := func(kind string, from, to int) {
		if from < to {
			folds = append(folds, Fold{Kind: kind, Start: offs[from], End: offs[to]})
		}
	}
	// Everything from a "-----Original Message-----" line, or an Outlook
	// "From:" header block after a blank line, to the end is history.
	end := len(lines)
	for i := range lines {
		l := strings.TrimSpace(trim(i))
		if historyStart.MatchString(l) || (outlookFrom.MatchString(l) && i > 0 && strings.TrimSpace(trim(i-1)) == "" && i+1 < len(lines) && strings.Contains(strings.ToLower(trim(i+1)), ":")) {
			end = i
			add("quote", i, len(lines))
			break
		}
	}
	// Blocks of ">" lines, with the attribution line just above them.
	for i := 0; i < end; i++ {
		if !strings.HasPrefix(trim(i), ">") {
			continue
		}
		start := i
		if start > 0 && attribution.MatchString(strings.TrimSpace(trim(start-1))) {
			start--
		} else if start > 1 && strings.TrimSpace(trim(start-1)) == "" && attribution.MatchString(strings.TrimSpace(trim(start-2))) {
			start -= 2
		}
		j := i
		for j < end && (strings.HasPrefix(trim(j), ">") || strings.TrimSpace(trim(j)) == "") {
			j++
		}
		add("quote", start, j)
		i = j
	}
	// An attribution line with no ">" block under it (Gmail-style HTML turned
	// into text) starts the history too.
	if len(folds) == 0 {
		for i := 0; i < end; i++ {
			if attribution.MatchString(strings.TrimSpace(trim(i))) {
				add("quote", i, end)
				end = i
				break
			}
		}
	}
	// The signature: from the RFC 3676 delimiter "-- " or a mobile footer to
	// the first quote that follows (or the end).
	for i := 0; i < end; i++ {
		l := trim(i)
		if l == "-- " || l == "--" || mobileSig.MatchString(strings.TrimSpace(l)) {
			stop := end
			for _, f := range folds {
				if f.Start >= offs[i] && f.Start < offs[stop] {
					for k := range offs {
						if offs[k] == f.Start {
							stop = k
							break
						}
					}
				}
			}
			add("signature", i, stop)
			break
		}
	}
	return folds, visibleText(text, folds)
}

func visibleText(text string, folds []Fold) string {
	hidden := make([]bool, len(text))
	for _, f := range folds {
		for k := f.Start; k < f.End && k < len(text); k++ {
			hidden[k] = true
		}
	}
	var b strings.Builder
	for k := 0; k < len(text); k++ {
		if !hidden[k] {
			b.WriteByte(text[k])
		}
	}
	v := strings.TrimSpace(b.String())
	if v == "" {
		// A mail that is nothing but a quote: show it rather than nothing.
		return strings.TrimSpace(text)
	}
	return v
}
