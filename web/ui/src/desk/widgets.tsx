import { useEffect, useState } from "preact/hooks";
import { ApiError, createWidget, queues, widgets, type ChatWidget } from "./api";

/** Admins: the account's chat widgets, their embed snippets, a new one. */
export function Widgets() {
  const [list, setList] = useState<ChatWidget[]>([]);
  const [qs, setQs] = useState<Map<number, string>>(new Map());
  const [error, setError] = useState("");
  const [field, setField] = useState("");
  const [busy, setBusy] = useState(false);
  const [form, setForm] = useState({ public_id: "", name: "", origins: "", title: "", greeting: "", topics: new Set<number>() });

  const load = () => widgets().then((l) => setList(l.items), (e) => setError(e.message));
  useEffect(() => {
    load();
    queues().then(setQs);
  }, []);

  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError("");
    setField("");
    try {
      await createWidget({
        public_id: form.public_id.trim(), name: form.name.trim(),
        allowed_origins: form.origins.split(/[\s,]+/).filter(Boolean),
        default_queue_id: null,
        topics: [...form.topics].map((id) => ({ name: qs.get(id) ?? String(id), queue_id: id })),
        title: form.title, greeting: form.greeting, offline_behaviour: "message",
      });
      setForm({ public_id: "", name: "", origins: "", title: "", greeting: "", topics: new Set() });
      load();
    } catch (err) {
      setError((err as Error).message);
      if (err instanceof ApiError) setField(err.field ?? "");
    } finally {
      setBusy(false);
    }
  }

  const set = (k: keyof typeof form) => (e: Event) => {
    const v = (e.currentTarget as HTMLInputElement).value;
    setForm((f) => ({ ...f, [k]: v }));
  };
  return (
    <section class="widgets" aria-labelledby="widgets-title">
      <h2 id="widgets-title">Chat widgets</h2>
      {list.map((w) => (
        <article class="card widget-card" aria-label={w.name}>
          <h3>{w.name} <span class="muted">({w.public_id})</span></h3>
          <p class="muted">
            Sites: {w.allowed_origins.join(", ") || "none yet"} · Topics: {w.topics.map((t) => t.name).join(", ") || "default queue"}
          </p>
          <label>Embed on the site
            <textarea readonly rows={2} value={w.embed} onFocus={(e) => e.currentTarget.select()} />
          </label>
        </article>
      ))}
      {!list.length && !error && <p class="muted">No chat widget yet.</p>}
      <form class="card widget-form" onSubmit={submit} aria-label="New chat widget">
        <h3>New chat widget</h3>
        <label>Public id (in the embed snippet)
          <input required value={form.public_id} onInput={set("public_id")} aria-invalid={field === "public_id"} pattern="[A-Za-z0-9_-]{1,64}" />
        </label>
        <label>Name<input required value={form.name} onInput={set("name")} aria-invalid={field === "name"} /></label>
        <label>Sites that may embed it (origins, one per line, or *)
          <textarea rows={2} value={form.origins} onInput={set("origins")} aria-invalid={field === "allowed_origins"}
            placeholder="https://shop.example.com" />
        </label>
        <label>Title<input value={form.title} onInput={set("title")} /></label>
        <label>Greeting<input value={form.greeting} onInput={set("greeting")} /></label>
        <fieldset class="inline">
          <legend>Topics (queues visitors choose from)</legend>
          {[...qs].map(([id, name]) => (
            <label><input type="checkbox" checked={form.topics.has(id)} onChange={(e) => {
              const on = e.currentTarget.checked;
              setForm((f) => {
                const t = new Set(f.topics);
                if (on) t.add(id);
                else t.delete(id);
                return { ...f, topics: t };
              });
            }} /> {name}</label>
          ))}
        </fieldset>
        {error && <p class="error" role="alert">{error}</p>}
        <button type="submit" class="primary" disabled={busy}>Create widget</button>
      </form>
    </section>
  );
}
