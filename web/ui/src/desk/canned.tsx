// canned.tsx: canned responses in the composer — the "/shortcut" menu and
// the Canned picker (both keyboard driven), and the dialog where agents keep
// their own responses and supervisors the shared ones. The server keeps
// them (GET /canned-responses) and fills in their placeholders for the
// ticket (POST /canned-responses/{id}/render).
import type { JSX } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import {
  ApiError, PLACEHOLDERS, createCanned, deleteCanned, teams as listTeams, updateCanned,
  type Agent, type Canned, type CannedScope, type NewCanned, type Team,
} from "./api";

/** The "/query" being typed at the caret: where its "/" is and the query
 * after it, or null. A "/" counts at the start or after white space, so
 * "and/or" and URLs do not open the menu. */
export function slashToken(text: string, caret: number): { start: number; query: string } | null {
  const m = /(^|\s)\/([a-z0-9_-]{0,32})$/i.exec(text.slice(0, caret));
  if (!m) return null;
  return { start: caret - m[2].length - 1, query: m[2].toLowerCase() };
}

/** The responses matching query, best first: shortcut exactly, shortcut
 * prefix, title prefix, title words, then (unless shortcutsOnly) title or
 * body anywhere. */
export function matchCanned(list: Canned[], query: string, shortcutsOnly = false): Canned[] {
  const q = query.trim().toLowerCase().replace(/^\//, "");
  if (!q) return list;
  const rank = (c: Canned): number => {
    const title = c.title.toLowerCase();
    if (c.shortcut === q) return 0;
    if (c.shortcut.startsWith(q)) return 1;
    if (title.startsWith(q)) return 2;
    if (title.split(/\s+/).some((w) => w.startsWith(q))) return 3;
    if (shortcutsOnly) return -1;
    if (title.includes(q) || c.shortcut.includes(q)) return 4;
    if (c.body.toLowerCase().includes(q)) return 5;
    return -1;
  };
  return list
    .map((c) => ({ c, r: rank(c) }))
    .filter((x) => x.r >= 0)
    .sort((a, b) => a.r - b.r)
    .map((x) => x.c);
}

/** Who shares a response, in words. */
export function scopeLabel(c: Canned, teamNames: Map<number, string>): string {
  if (c.scope === "personal") return "Yours";
  if (c.scope === "team") return `Team ${teamNames.get(c.team_id ?? 0) ?? c.team_id}`;
  return "Everyone";
}

/** Whether me may change c: the owner a personal one, supervisors and
 * admins a shared one (the server checks the same). */
export function canChange(c: Canned, me: Agent): boolean {
  return c.scope === "personal" ? c.agent_id === me.id : me.role !== "agent";
}

/** Moves the active option with the keyboard. It returns the new index, or
 * "pick"/"close", or null for a key the menu does not use. */
export function menuKey(key: string, active: number, count: number): number | "pick" | "close" | null {
  switch (key) {
    case "ArrowDown":
      return count ? (active + 1) % count : 0;
    case "ArrowUp":
      return count ? (active - 1 + count) % count : 0;
    case "Home":
      return 0;
    case "End":
      return Math.max(0, count - 1);
    case "Enter":
    case "Tab":
      return count ? "pick" : null;
    case "Escape":
      return "close";
  }
  return null;
}

/** The options of a canned menu: a listbox whose active option the
 * textarea or the search field points at with aria-activedescendant. */
export function CannedOptions(props: { id: string; items: Canned[]; active: number; teamNames: Map<number, string>; onPick: (c: Canned) => void; onHover: (i: number) => void }) {
  const list = useRef<HTMLUListElement>(null);
  useEffect(() => {
    list.current?.querySelector(`[aria-selected="true"]`)?.scrollIntoView?.({ block: "nearest" });
  }, [props.active]);
  if (!props.items.length) return <p class="muted canned-empty">No canned response matches.</p>;
  return (
    <ul ref={list} id={props.id} class="canned-options" role="listbox" aria-label="Canned responses">
      {props.items.map((c, i) => (
        <li key={c.id} id={`${props.id}-${c.id}`} role="option" aria-selected={i === props.active} class={i === props.active ? "active" : ""}
          data-testid="canned-option"
          onMouseDown={(e) => { e.preventDefault(); props.onPick(c); }} onMouseEnter={() => props.onHover(i)}>
          <span class="canned-title">{c.title}</span>
          {c.shortcut && <kbd>/{c.shortcut}</kbd>}
          <span class="canned-scope muted">{scopeLabel(c, props.teamNames)}</span>
          <span class="canned-preview muted">{c.body.length > 90 ? c.body.slice(0, 90) + "…" : c.body}</span>
        </li>
      ))}
    </ul>
  );
}

/** The Canned picker: a search field over the responses; ↑/↓ choose,
 * Enter inserts, Escape closes (focus goes back to the composer). */
export function CannedPicker(props: {
  list: Canned[];
  teamNames: Map<number, string>;
  onPick: (c: Canned) => void;
  onClose: () => void;
  onManage: () => void;
}) {
  const [q, setQ] = useState("");
  const [active, setActive] = useState(0);
  const input = useRef<HTMLInputElement>(null);
  const items = matchCanned(props.list, q);
  useEffect(() => input.current?.focus(), []);
  useEffect(() => setActive(0), [q]);
  const id = "canned-picker-options";
  return (
    <div class="canned-picker" role="dialog" aria-label="Insert a canned response"
      onFocusOut={(e) => {
        // Closing when focus leaves, but not when it moves inside.
        const to = (e as FocusEvent).relatedTarget as Node | null;
        if (to && !(e.currentTarget as HTMLElement).contains(to)) props.onClose();
      }}>
      <input ref={input} type="search" placeholder="Search canned responses…" aria-label="Search canned responses" value={q}
        aria-controls={id} aria-autocomplete="list"
        aria-activedescendant={items[active] ? `${id}-${items[active].id}` : undefined}
        onInput={(e) => setQ(e.currentTarget.value)}
        onKeyDown={(e) => {
          const r = menuKey(e.key, active, items.length);
          if (r === null || (e.key === "Tab" && !q)) return;
          e.preventDefault();
          if (r === "pick") props.onPick(items[active]);
          else if (r === "close") props.onClose();
          else setActive(r);
        }} />
      <CannedOptions id={id} items={items} active={active} teamNames={props.teamNames} onPick={props.onPick} onHover={setActive} />
      <div class="canned-picker-foot">
        <span class="muted">↑↓ choose · Enter insert · Esc close · type <kbd>/</kbd> in the reply for shortcuts</span>
        <button type="button" class="link" onClick={props.onManage}>Manage…</button>
      </div>
    </div>
  );
}

interface Draft {
  id?: number;
  title: string;
  shortcut: string;
  body: string;
  scope: CannedScope;
  team_id: number | null;
}

const EMPTY: Draft = { title: "", shortcut: "", body: "", scope: "personal", team_id: null };

/** The management dialog: the agent's own responses, and the shared ones
 * (which supervisors and admins create, edit and delete). draftBody, when
 * given, opens a new response with that text ("Save as canned"). */
export function CannedManager(props: { me: Agent; list: Canned[]; draftBody?: string; onChanged: () => void; onClose: () => void }) {
  const dlg = useRef<HTMLDialogElement>(null);
  const [teamList, setTeamList] = useState<Team[]>([]);
  const [draft, setDraft] = useState<Draft | null>(props.draftBody ? { ...EMPTY, body: props.draftBody } : null);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const shares = props.me.role !== "agent";
  const teamNames = new Map(teamList.map((t) => [t.id, t.name]));

  useEffect(() => {
    dlg.current?.showModal();
    listTeams().then((l) => setTeamList(l.items), () => {});
  }, []);
  useEffect(() => {
    if (draft) (dlg.current?.querySelector("#canned-title") as HTMLElement | null)?.focus();
  }, [draft?.id, !!draft]);

  async function save(e: Event) {
    e.preventDefault();
    if (!draft) return;
    const errs: Record<string, string> = {};
    if (!draft.title.trim()) errs.title = "Give it a title.";
    if (!draft.body.trim()) errs.body = "Write the text.";
    if (draft.shortcut && !/^\/?[a-z0-9_-]{1,32}$/.test(draft.shortcut)) errs.shortcut = "Use up to 32 of a-z, 0-9, _ and -.";
    if (draft.scope === "team" && !draft.team_id) errs.team_id = "Choose the team.";
    setErrors(errs);
    if (Object.keys(errs).length) return;
    setBusy(true);
    try {
      const fields = { title: draft.title, body: draft.body, shortcut: draft.shortcut.replace(/^\//, "") };
      if (draft.id) await updateCanned(draft.id, fields);
      else {
        const c: NewCanned = { ...fields, scope: draft.scope };
        if (draft.scope === "team") c.team_id = draft.team_id;
        await createCanned(c);
      }
      setDraft(null);
      props.onChanged();
    } catch (err) {
      const field = err instanceof ApiError && err.field ? err.field : "form";
      setErrors({ [field === "scope" ? "form" : field]: (err as Error).message });
    } finally {
      setBusy(false);
    }
  }

  async function remove(c: Canned) {
    if (!confirm(`Delete the canned response "${c.title}"?`)) return;
    try {
      await deleteCanned(c.id);
      props.onChanged();
    } catch (err) {
      setErrors({ form: (err as Error).message });
    }
  }

  const field = (name: keyof Draft, labelText: string, input: JSX.Element, hint?: string) => (
    <div class="canned-field">
      <label for={`canned-${name}`}>{labelText}</label>
      {input}
      {hint && <p class="muted hint">{hint}</p>}
      {errors[name] && <p id={`canned-${name}-err`} class="error" role="alert">{errors[name]}</p>}
    </div>
  );
  const set = (patch: Partial<Draft>) => setDraft((d) => (d ? { ...d, ...patch } : d));

  const mine = props.list.filter((c) => c.scope === "personal");
  const shared = props.list.filter((c) => c.scope !== "personal");
  const row = (c: Canned) => (
    <li key={c.id} data-testid="canned-row">
      <span class="canned-title">{c.title}</span> {c.shortcut && <kbd>/{c.shortcut}</kbd>}{" "}
      <span class="muted">{scopeLabel(c, teamNames)}</span>
      {canChange(c, props.me) && (
        <span class="canned-row-actions">
          <button type="button" class="link" onClick={() => { setErrors({}); setDraft({ id: c.id, title: c.title, shortcut: c.shortcut, body: c.body, scope: c.scope, team_id: c.team_id }); }}>Edit</button>{" "}
          <button type="button" class="link" aria-label={`Delete ${c.title}`} onClick={() => remove(c)}>Delete</button>
        </span>
      )}
    </li>
  );

  return (
    <dialog ref={dlg} class="canned-manager" aria-labelledby="canned-manager-title"
      onCancel={(e) => { e.preventDefault(); props.onClose(); }}>
      <h2 id="canned-manager-title">Canned responses</h2>
      {draft ? (
        <form onSubmit={save} noValidate class="canned-form">
          <h3>{draft.id ? "Edit canned response" : "New canned response"}</h3>
          {field("title", "Title", <input id="canned-title" value={draft.title} aria-invalid={!!errors.title} onInput={(e) => set({ title: e.currentTarget.value })} />)}
          {field("shortcut", "Shortcut (optional)", <input id="canned-shortcut" value={draft.shortcut} placeholder="refund" aria-invalid={!!errors.shortcut}
            onInput={(e) => set({ shortcut: e.currentTarget.value.toLowerCase() })} />, "Type / and the shortcut in a reply to insert it.")}
          {field("body", "Text", <textarea id="canned-body" rows={6} value={draft.body} maxLength={10000} aria-invalid={!!errors.body} onInput={(e) => set({ body: e.currentTarget.value })} />,
            "Placeholders: " + PLACEHOLDERS.map((p) => `{{${p}}}`).join(" "))}
          {!draft.id && shares && (
            <div class="canned-field">
              <label for="canned-scope">Shared with</label>
              <select id="canned-scope" value={draft.scope === "team" ? `team:${draft.team_id ?? ""}` : draft.scope}
                onChange={(e) => {
                  const v = e.currentTarget.value;
                  if (v.startsWith("team:")) set({ scope: "team", team_id: Number(v.slice(5)) || null });
                  else set({ scope: v as CannedScope, team_id: null });
                }}>
                <option value="personal">Only me</option>
                <option value="account">Everyone</option>
                {teamList.map((t) => <option value={`team:${t.id}`}>Team {t.name}</option>)}
              </select>
              {errors.team_id && <p class="error" role="alert">{errors.team_id}</p>}
            </div>
          )}
          {errors.form && <p class="error" role="alert">{errors.form}</p>}
          <div class="dialog-actions">
            <button type="button" onClick={() => { setDraft(null); setErrors({}); }}>Cancel</button>
            <button type="submit" class="primary" disabled={busy}>{busy ? "Saving…" : "Save"}</button>
          </div>
        </form>
      ) : (
        <>
          <h3>Yours</h3>
          {mine.length ? <ul class="canned-list">{mine.map(row)}</ul> : <p class="muted">None yet.</p>}
          <h3>Shared</h3>
          {shared.length ? <ul class="canned-list">{shared.map(row)}</ul> : <p class="muted">None.</p>}
          {!shares && <p class="muted hint">Shared responses are kept by supervisors.</p>}
          {errors.form && <p class="error" role="alert">{errors.form}</p>}
          <div class="dialog-actions">
            <button type="button" onClick={() => { dlg.current?.close(); props.onClose(); }}>Close</button>
            <button type="button" class="primary" onClick={() => { setErrors({}); setDraft({ ...EMPTY }); }}>New canned response</button>
          </div>
        </>
      )}
    </dialog>
  );
}
