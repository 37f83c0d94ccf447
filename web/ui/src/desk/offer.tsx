import { useEffect, useRef, useState } from "preact/hooks";
import type { Offer } from "./api";
import { CHANNEL_ICON, duration, label } from "./format";

/** Seconds left before an offer moves on to the next agent. */
function remaining(o: Offer, receivedAt: number, now: number): number | undefined {
  if (o.expires_at) return Math.max(0, (Date.parse(o.expires_at) - now) / 1000);
  if (o.timeout_seconds) return Math.max(0, o.timeout_seconds - (now - receivedAt) / 1000);
  return undefined;
}

let audio: AudioContext | undefined;
/** A short two-tone chime, synthesised so no audio file or inline data is needed. */
export function chime() {
  try {
    audio ??= new AudioContext();
    const t = audio.currentTime;
    [880, 1320].forEach((f, i) => {
      const o = audio!.createOscillator();
      const g = audio!.createGain();
      o.frequency.value = f;
      g.gain.setValueAtTime(0.0001, t + i * 0.18);
      g.gain.exponentialRampToValueAtTime(0.2, t + i * 0.18 + 0.02);
      g.gain.exponentialRampToValueAtTime(0.0001, t + i * 0.18 + 0.3);
      o.connect(g).connect(audio!.destination);
      o.start(t + i * 0.18);
      o.stop(t + i * 0.18 + 0.32);
    });
  } catch {
    /* no audio device: the card and the notification still show */
  }
}

export function notify(o: Offer) {
  if (!("Notification" in window) || Notification.permission !== "granted" || document.hasFocus()) return;
  const n = new Notification(`New ${o.channel} for you`, {
    body: [o.customer_name, o.queue_name, o.subject].filter(Boolean).join(" · "),
    tag: `offer-${o.offer_id}`,
  });
  n.onclick = () => {
    window.focus();
    n.close();
  };
}

export function OfferCard(props: {
  offer: Offer;
  receivedAt: number;
  busy: boolean;
  error?: string;
  onAccept: () => void;
  onReject: () => void;
}) {
  const { offer, receivedAt } = props;
  const [now, setNow] = useState(Date.now());
  const accept = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 250);
    return () => clearInterval(t);
  }, []);
  useEffect(() => {
    accept.current?.focus();
  }, [offer.offer_id]);
  const left = remaining(offer, receivedAt, now);
  const waited = (offer.waited_seconds ?? 0) + (now - receivedAt) / 1000;
  const total = offer.timeout_seconds ?? (offer.expires_at ? (Date.parse(offer.expires_at) - receivedAt) / 1000 : 0);
  const pct = left !== undefined && total > 0 ? Math.round((left / total) * 100) : 100;

  return (
    <section class="offer" role="alertdialog" aria-labelledby="offer-title" aria-describedby="offer-details">
      <h2 id="offer-title">
        <span aria-hidden="true">{CHANNEL_ICON[offer.channel] ?? "•"} </span>
        Incoming {label(offer.channel)}
      </h2>
      <dl id="offer-details" class="offer-details">
        <dt>Customer</dt>
        <dd data-testid="offer-customer">{offer.customer_name || "Unknown visitor"}</dd>
        <dt>Queue</dt>
        <dd>{offer.queue_name || "—"}</dd>
        {offer.subject && (
          <>
            <dt>Topic</dt>
            <dd>{offer.subject}</dd>
          </>
        )}
        <dt>Waiting</dt>
        <dd>{duration(waited)}</dd>
      </dl>
      {left !== undefined && (
        <div class="countdown" aria-label={`${Math.ceil(left)} seconds to answer`}>
          <progress max={100} value={pct} aria-hidden="true" />
          <span aria-live="off">{Math.ceil(left)}s</span>
        </div>
      )}
      {props.error && <p class="error" role="alert">{props.error}</p>}
      <div class="offer-actions">
        <button ref={accept} class="primary" disabled={props.busy} onClick={props.onAccept} aria-keyshortcuts="Alt+A">
          Accept <kbd>Alt+A</kbd>
        </button>
        <button disabled={props.busy} onClick={props.onReject} aria-keyshortcuts="Alt+R">
          Reject <kbd>Alt+R</kbd>
        </button>
      </div>
    </section>
  );
}
