package web

import (
	"strings"

	"github.com/nyaruka/phonenumbers"

	"agentdesk/agentdesk"
)

// Phone numbers arrive as people type them ("+49 30 1234567",
// "(415) 555-0132"); the domain stores E.164 only. Parsing belongs here, at
// the edge, with nyaruka/phonenumbers, so the domain stays standard-library
// only.
//
// A number written with its country code (+…) is always understood. A
// national number ("030 1234567") is only understood when the server has a
// default region (WithPhoneRegion, serve --phone-region): one deployment can
// serve tenants in many countries, and guessing the country would silently
// file a customer under a stranger's number. Without a region, a national
// number is refused with a message asking for the country code.

// WithPhoneRegion sets the region (ISO 3166 alpha-2, e.g. "US", "DE") used
// to read phone numbers written without a country code.
func WithPhoneRegion(region string) Option {
	return func(s *Server) { s.inbound.phoneRegion = strings.ToUpper(strings.TrimSpace(region)) }
}

// normalizePhone returns raw as E.164, or an Invalid error naming field.
func (s *Server) normalizePhone(raw, field string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", agentdesk.FieldError(field, "must not be empty")
	}
	region := s.inbound.phoneRegion
	if strings.HasPrefix(raw, "+") || strings.HasPrefix(raw, "00") {
		region = ""
		if strings.HasPrefix(raw, "00") {
			raw = "+" + raw[2:]
		}
	} else if region == "" {
		return "", agentdesk.FieldError(field, "phone %q needs its country code, e.g. +1 415 555 0132", raw)
	}
	num, err := phonenumbers.Parse(raw, region)
	if err != nil || !phonenumbers.IsValidNumber(num) {
		return "", agentdesk.FieldError(field, "%q is not a valid phone number", raw)
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}

// normalizeIdentity parses phone identities to E.164; the domain checks the
// rest.
func (s *Server) normalizeIdentity(id *agentdesk.Identity, field string) error {
	if id.Kind != agentdesk.IdentityPhone {
		return nil
	}
	e164, err := s.normalizePhone(id.Value, field)
	if err != nil {
		return err
	}
	id.Value = e164
	return nil
}
