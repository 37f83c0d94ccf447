package agentdesk

// Channel is how a customer reached us, and how routing counts agent capacity.
type Channel string

const (
	ChannelEmail    Channel = "email"
	ChannelChat     Channel = "chat"
	ChannelVoice    Channel = "voice"
	ChannelForm     Channel = "form"
	ChannelOrder    Channel = "order"
	ChannelSocial   Channel = "social"
	ChannelInPerson Channel = "in_person"
)

// Channels lists every channel, in the order the UI shows them.
var Channels = []Channel{ChannelEmail, ChannelChat, ChannelVoice, ChannelForm, ChannelOrder, ChannelSocial, ChannelInPerson}

// Valid reports whether c is a known channel.
func (c Channel) Valid() bool {
	for _, k := range Channels {
		if c == k {
			return true
		}
	}
	return false
}

// Routed reports whether contacts on c are queued to agents with a capacity of
// their own. Forms, orders and social messages are routed as email-like work.
func (c Channel) CapacityChannel() Channel {
	switch c {
	case ChannelVoice, ChannelChat:
		return c
	default:
		return ChannelEmail
	}
}
