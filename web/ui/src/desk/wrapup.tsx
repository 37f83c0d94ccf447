import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, RESOLUTIONS, reasons, wrapUp, type CustomStatus, type Reason, type Resolution, type Ticket } from "./api";
import { label } from "./format";

/** Options grouped by category: categories are reasons without a parent. */
function ReasonOptions({ list }: { list: Reason[] }) {
  const live = list.filter((r) => !r.archived_at);
  const cats = live.filter((r) => r.parent_id === null);
  const children = (id: number) => live.filter((r) => r.parent_id === id);
  const loose = cats.filter((c) => children(c.id).length === 0);
  return (
    <>
      {cats.filter((c) => children(c.id).length > 0).map((c) => (
        <optgroup label={c.name}>
          {children(c.id).map((r) => <option value={r.id}>{r.name}</option>)}
        </optgroup>
      ))}
      {loose.map((r) => <option value={r.id}>{r.name}</option>)}
    </>
  );
}

/** customStatus, when given, is a solved or closed custom status the
 * ticket gets with its outcome (chosen in the status picker). */
export function WrapUpDialog(props: { ticket: Ticket; customStatus?: CustomStatus; onDone: (t: Ticket) => void; onCancel: () => void }) {
  const dlg = useRef<HTMLDialogElement>(null);
  const [contact, setContact] = useState<Reason[]>([]);
  const [cancellation, setCancellation] = useState<Reason[]>([]);
  const [contactId, setContactId] = useState(props.ticket.outcome?.contact_reason_id ? String(props.ticket.outcome.contact_reason_id) : "");
  const [resolution, setResolution] = useState<Resolution>("solved");
  const [cancelId, setCancelId] = useState("");
  const custom = props.customStatus;
  const [status, setStatus] = useState<"solved" | "closed">(custom?.maps_to === "closed" ? "closed" : "solved");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const needsCancel = resolution === "cancellation" || resolution === "retained";

  useEffect(() => {
    dlg.current?.showModal();
    reasons("contact").then((r) => setContact(r.items), (e) => setErrors({ form: e.message }));
    reasons("cancellation").then((r) => setCancellation(r.items), () => {});
  }, []);

  async function submit(e: Event) {
    e.preventDefault();
    const errs: Record<string, string> = {};
    if (!contactId) errs.contact = "Choose the contact reason.";
    if (needsCancel && !cancelId) errs.cancel = "Choose why the customer cancels.";
    setErrors(errs);
    if (Object.keys(errs).length) {
      (dlg.current?.querySelector(errs.contact ? "#wrap-contact" : "#wrap-cancel") as HTMLElement | null)?.focus();
      return;
    }
    setBusy(true);
    try {
      const t = await wrapUp(props.ticket.id, {
        status,
        custom_status: custom?.name,
        contact_reason_id: Number(contactId),
        resolution_code: resolution,
        cancellation_reason_id: needsCancel ? Number(cancelId) : null,
      });
      dlg.current?.close();
      props.onDone(t);
    } catch (err) {
      const f = err instanceof ApiError ? err.field ?? "" : "";
      const msg = (err as Error).message;
      setErrors(f.includes("cancellation") ? { cancel: msg } : f.includes("contact") ? { contact: msg } : { form: msg });
      setBusy(false);
    }
  }

  return (
    <dialog ref={dlg} class="wrapup" aria-labelledby="wrap-title" onCancel={(e) => { e.preventDefault(); props.onCancel(); }}>
      <form onSubmit={submit} noValidate>
        <h2 id="wrap-title">Wrap up #{props.ticket.id}</h2>
        <p class="muted">{props.ticket.subject}</p>
        <label for="wrap-contact">Contact reason <span aria-hidden="true">*</span></label>
        <select id="wrap-contact" required value={contactId} aria-invalid={!!errors.contact}
          aria-describedby={errors.contact ? "wrap-contact-err" : undefined}
          onChange={(e) => setContactId(e.currentTarget.value)}>
          <option value="">Choose…</option>
          <ReasonOptions list={contact} />
        </select>
        {errors.contact && <p id="wrap-contact-err" class="error" role="alert">{errors.contact}</p>}

        <label for="wrap-outcome">Outcome</label>
        <select id="wrap-outcome" value={resolution} onChange={(e) => setResolution(e.currentTarget.value as Resolution)}>
          {RESOLUTIONS.map((r) => <option value={r}>{label(r)}</option>)}
        </select>

        {needsCancel && (
          <>
            <label for="wrap-cancel">Cancellation reason <span aria-hidden="true">*</span></label>
            <select id="wrap-cancel" required value={cancelId} aria-invalid={!!errors.cancel}
              aria-describedby={errors.cancel ? "wrap-cancel-err" : undefined}
              onChange={(e) => setCancelId(e.currentTarget.value)}>
              <option value="">Choose…</option>
              <ReasonOptions list={cancellation} />
            </select>
            {errors.cancel && <p id="wrap-cancel-err" class="error" role="alert">{errors.cancel}</p>}
          </>
        )}

        {custom ? (
          <p data-testid="wrap-custom-status">Set ticket to <strong>{label(custom.name)}</strong> <span class="muted">({label(custom.maps_to)})</span></p>
        ) : (
          <fieldset class="inline">
            <legend>Set ticket to</legend>
            <label><input type="radio" name="wrap-status" checked={status === "solved"} onChange={() => setStatus("solved")} /> Solved</label>
            <label><input type="radio" name="wrap-status" checked={status === "closed"} onChange={() => setStatus("closed")} /> Closed</label>
          </fieldset>
        )}
        {errors.form && <p class="error" role="alert">{errors.form}</p>}
        <div class="dialog-actions">
          <button type="button" onClick={() => { dlg.current?.close(); props.onCancel(); }}>Cancel</button>
          <button type="submit" class="primary" disabled={busy}>{busy ? "Saving…" : "Finish wrap-up"}</button>
        </div>
      </form>
    </dialog>
  );
}
