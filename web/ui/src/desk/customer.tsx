import { useEffect, useRef, useState } from "preact/hooks";
import { company, customer, customerTimeline, lifetimeValue, tickets, type Company, type Customer, type Message, type Ticket } from "./api";
import { CHANNEL_ICON, label, money, when } from "./format";

/** History pages in as the agent scrolls; newest first, without end. */
function History({ customerId }: { customerId: number }) {
  const [items, setItems] = useState<Message[]>([]);
  const [next, setNext] = useState<string | undefined>(undefined);
  const [done, setDone] = useState(false);
  const [error, setError] = useState("");
  const loading = useRef(false);
  const sentinel = useRef<HTMLLIElement>(null);

  async function more(cursor?: string) {
    if (loading.current) return;
    loading.current = true;
    try {
      const p = await customerTimeline(customerId, cursor);
      setItems((old) => (cursor ? [...old, ...p.items] : p.items));
      setNext(p.next_cursor || undefined);
      setDone(!p.next_cursor);
    } catch (e) {
      setError((e as Error).message);
      setDone(true);
    } finally {
      loading.current = false;
    }
  }
  useEffect(() => {
    setItems([]);
    setDone(false);
    more();
  }, [customerId]);
  useEffect(() => {
    if (done || !sentinel.current) return;
    const io = new IntersectionObserver((es) => {
      if (es.some((e) => e.isIntersecting) && next) more(next);
    });
    io.observe(sentinel.current);
    return () => io.disconnect();
  }, [next, done]);

  return (
    <section aria-labelledby="hist-title">
      <h3 id="hist-title">History</h3>
      {error && <p class="error" role="alert">{error}</p>}
      <ul class="history" aria-label="Customer history, newest first">
        {items.map((m) => (
          <li key={m.id} class={`hist kind-${m.kind}`}>
            <span aria-hidden="true">{CHANNEL_ICON[m.kind] ?? "•"}</span>{" "}
            <span class="hist-kind">{m.kind === "note" ? "Note" : label(m.kind)}</span>{" "}
            <time class="muted" dateTime={m.created_at}>{when(m.created_at)}</time>
            <span class="muted"> · #{m.ticket_id}</span>
            <p>{m.subject || m.body.slice(0, 140)}</p>
          </li>
        ))}
        {!done && <li ref={sentinel} class="muted" aria-busy="true">Loading…</li>}
        {done && !items.length && !error && <li class="muted">No history yet.</li>}
      </ul>
    </section>
  );
}

export function CustomerPanel({ customerId, refresh, onOpenTicket, onLoaded }: {
  customerId: number;
  /** Changes when tickets changed: the open-ticket list is read again. */
  refresh?: number;
  onOpenTicket: (id: number) => void;
  onLoaded?: (c: Customer) => void;
}) {
  const [c, setC] = useState<Customer | null>(null);
  const [co, setCo] = useState<Company | null>(null);
  const [open, setOpen] = useState<Ticket[]>([]);
  const [ltv, setLtv] = useState<Record<string, number> | null | undefined>(undefined);
  const [error, setError] = useState("");

  useEffect(() => {
    let live = true;
    setC(null);
    setCo(null);
    setError("");
    customer(customerId).then(
      (x) => {
        if (!live) return;
        setC(x);
        onLoaded?.(x);
        if (x.company_id) company(x.company_id).then((y) => live && setCo(y), () => {});
      },
      (e) => live && setError(e.message),
    );
    lifetimeValue(customerId).then((v) => live && setLtv(v.totals ?? {}), () => live && setLtv(null));
    return () => { live = false; };
  }, [customerId]);

  useEffect(() => {
    let live = true;
    tickets({ customer: customerId, status: ["new", "open", "pending", "on_hold"], limit: 20 })
      .then((p) => live && setOpen(p.items), () => {});
    return () => { live = false; };
  }, [customerId, refresh]);

  return (
    <aside class="customer-panel" aria-labelledby="cust-title">
      {error && <p class="error" role="alert">{error}</p>}
      <h2 id="cust-title" data-testid="customer-name">{c ? c.name || "Unnamed customer" : "Customer"}</h2>
      {c && (
        <>
          <p class="muted">{label(c.lifecycle_stage)}{co ? ` · ${co.name}` : ""}</p>
          <dl class="facts">
            <dt>Lifetime value</dt>
            <dd data-testid="ltv">{ltv === undefined ? "…" : ltv === null ? "—"
              : Object.keys(ltv).length === 0 ? money(0)
              : Object.entries(ltv).map(([cur, cents]) => money(cents, cur)).join(" · ")}</dd>
            <dt>Customer since</dt>
            <dd>{new Date(c.created_at).toLocaleDateString()}</dd>
            {co?.domain && (<><dt>Company</dt><dd>{co.name} ({co.domain})</dd></>)}
          </dl>
          <h3>Identities</h3>
          <ul class="identities">
            {c.identities.map((i) => (
              <li><span class="muted">{label(i.kind)}{i.network ? ` (${i.network})` : ""}:</span> {i.value}</li>
            ))}
          </ul>
          {c.attributes?.unverified_email && (
            <p role="note" data-testid="unverified-email" style={{ color: "var(--warn)" }}>
              Typed {c.attributes.unverified_email} in a chat, not verified
              {c.attributes.suggested_customer_id ? ` (held by customer #${c.attributes.suggested_customer_id})` : ""}: verify who this is before sharing details or merging.
            </p>
          )}
          <h3>Open tickets</h3>
          <ul class="open-tickets">
            {open.map((t) => (
              <li><button class="link" onClick={() => onOpenTicket(t.id)}>#{t.id} {t.subject}</button> <span class="muted">{label(t.status)}</span></li>
            ))}
            {!open.length && <li class="muted">None</li>}
          </ul>
          <History customerId={customerId} />
        </>
      )}
    </aside>
  );
}
